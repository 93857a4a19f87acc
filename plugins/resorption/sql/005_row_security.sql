-- Row-level security: the scopes a transaction sets and the one function that reads them.
-- Each table's policies are beside the table.
--
-- The application sets, per transaction (set_config(..., true), from the access policy):
--   resorption.sites_scope, resorption.actions_scope
--                                   what the caller may read
--   resorption.sites_write_scope    where the caller may create and update sites
--   resorption.sites_close_scope    where the caller may close them (a status other than 'open')
--   resorption.sites_delete_scope   where the caller may delete them
--   resorption.actions_write_scope  where the caller may create and update actions
--   resorption.actions_delete_scope where the caller may delete them
-- each '*' for the nation or a comma-separated list of département codes; unset or empty
-- means nowhere (fail closed). Column privileges of the reader and writer roles
-- (resorption_read[_…], resorption_write[_…], granted by resorption.privileges) decide which
-- columns may be read and written. The jobs of OGC API Processes have settings of their own
-- (100_jobs.sql).

CREATE FUNCTION resorption.in_scope(setting text, departement text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting(setting, true), '') = '*'
        OR departement = ANY (string_to_array(nullif(current_setting(setting, true), ''), ','))
$$;

-- Bounding-box searches under row-level security: PostGIS's `&&` (geometry_overlaps) as leakproof.
--
-- Row-level security evaluates the policy before any condition of the query that is not
-- leakproof, so a bbox, a spatial filter or a tile envelope (`location && box`) could not be an
-- index condition: PostgreSQL scanned every site (a zoom 14 tile: 480 ms instead of 1 ms on
-- 100,000 sites). Comparing two bounding boxes reveals nothing of a row (the columns have one
-- SRID, so it cannot fail on a hidden row), hence LEAKPROOF. Only a superuser may declare it:
-- a database owner without that right gets a notice and the slower plans, nothing breaks.
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        ALTER FUNCTION public.geometry_overlaps(geometry, geometry) LEAKPROOF;
    ELSE
        RAISE NOTICE 'geometry_overlaps non déclarée LEAKPROOF (il faut un superutilisateur) : '
                     'les recherches par emprise sous RLS ne profiteront pas de l''index spatial.';
    END IF;
END
$$;
