-- Row-level security: the scopes a transaction sets, the one function that reads them, and
-- the write guard that sites and actions share. Each table's policies are beside the table.
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

-- Two kinds of transaction role (cluster roles, created before any revision runs:
-- resorption.privileges.create_role_kinds); each reader and writer role is a member of one:
-- resorption_nationwide for the readers and writers of the nation (their sites and actions
-- scopes both '*'), resorption_scoped for the others. The read policies
-- of sites, actions and their details come in two (e.g. sites_read and nationwide on
-- resorption.sites): the scoped one tests each row (a département's codes, an action's
-- départements, a detail's site or action); the nationwide one asks once per statement whether
-- the scope is the nation. PostgreSQL applies only the policies of the current role, so a
-- national reader's statement no longer carries the sub-plans of the scoped rule (one action by
-- id: 0.9 → 0.4 ms of PostgreSQL, bench/ANALYSIS.md). A nationwide role whose settings are not
-- the nation's reads nothing: a wrong choice of role fails closed.

CREATE FUNCTION resorption.in_scope(setting text, departement text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting(setting, true), '') = '*'
        OR departement = ANY (string_to_array(nullif(current_setting(setting, true), ''), ','))
$$;

-- The read policies (sites, actions and their histories) say the same as in_scope with the
-- setting in uncorrelated sub-selects: `(SELECT scope_is_nation(s)) OR departement_code = ANY
-- ((SELECT scope_codes(s))::text[])`. PostgreSQL runs each sub-select once per statement (an
-- InitPlan) instead of reading and splitting the setting for every row it tests (~0.45 µs a
-- row: 45 ms to count 100,000 sites for a national reader, as much for every row an `offset=`
-- page skips); for a national reader `true OR …` never evaluates the rest. Unset or empty
-- still means nowhere (NULL: fail closed). The write policies keep in_scope: they test only
-- the rows a write touches.
CREATE FUNCTION resorption.scope_is_nation(setting text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting(setting, true), '') = '*'
$$;

CREATE FUNCTION resorption.scope_codes(setting text) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT string_to_array(nullif(current_setting(setting, true), ''), ',')
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

-- The write guard of sites and actions (triggers sites_write_guard, actions_write_guard):
-- who wrote, from the transaction's settings; and, for sites, closing one (leaving the 'open'
-- status) needs the close scope. Only for callers under row-level security: the owner's
-- loaders and the demo generator keep their own values.
CREATE FUNCTION resorption.write_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who text := nullif(current_setting('resorption.username', true), '');
BEGIN
    IF NOT row_security_active(TG_RELID) THEN
        RETURN NEW;
    END IF;
    -- Nested: the test of NEW.status is prepared only for a row that has one.
    IF TG_TABLE_NAME = 'sites' THEN
        IF NEW.status <> 'open' AND (TG_OP = 'INSERT' OR OLD.status = 'open')
           -- in_scope is NULL for an empty scope: IS NOT TRUE fails closed.
           AND resorption.in_scope('resorption.sites_close_scope', NEW.departement_code) IS NOT TRUE THEN
            RAISE insufficient_privilege USING
                MESSAGE = format('Vous n''avez pas le droit de fermer un site dans le département %s.',
                                 NEW.departement_code),
                COLUMN = 'status';
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.created_by := who;
        NEW.created_at := now();
    ELSE
        NEW.created_by := OLD.created_by;
        NEW.created_at := OLD.created_at;
    END IF;
    NEW.updated_by := who;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
