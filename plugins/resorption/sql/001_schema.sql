-- Schema, extensions and the accent-insensitive French text search configuration.
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS unaccent;

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
