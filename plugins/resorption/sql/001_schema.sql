-- Schema, extensions, the accent-insensitive French text search configuration, and the
-- helpers of the check constraints.
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS unaccent;
-- `id WITH =` in the exclusion constraints of the history tables (080_history.sql)
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE SCHEMA IF NOT EXISTS resorption;

-- French stemming on unaccented words: "Sète" and "sete" match the same sites.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'fr_unaccent') THEN
        CREATE TEXT SEARCH CONFIGURATION resorption.fr_unaccent (COPY = pg_catalog.french);
        ALTER TEXT SEARCH CONFIGURATION resorption.fr_unaccent
            ALTER MAPPING FOR hword, hword_part, word WITH public.unaccent, pg_catalog.french_stem;
    END IF;
END $$;

-- For the checks of array columns (social origins, toilet types, topics, user options).
CREATE FUNCTION resorption.has_no_duplicates(a anyarray) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT count(*) = count(DISTINCT x) FROM unnest(a) AS x
$$;
