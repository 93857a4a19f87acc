-- Side paths read only what the caller may read: the changelog of sites under row-level
-- security, versions of tiles per scope, no open-data date that tells when any site changed,
-- uniqueness that cannot reveal a hidden row, and SECURITY DEFINER functions for the
-- application's login role only.

-- 1. The changelog of sites reads as the caller (security_invoker), so the row-level security
-- of sites_history applies to it. PostgreSQL evaluates a policy before any condition of the
-- query that is not leakproof: a filter that fails on some rows (an overflow, a division by
-- zero) never meets a version the caller may not see, and its error cannot tell hidden rows
-- from absent ones. The view used to run with its owner's rights and check the scope in its
-- own WHERE, which the caller's filter could precede.
--
-- A view naming a column needs the caller's privilege on it even when the query does not
-- select it, so the view names the columns every reader has, and the old and new values of
-- the changed fields come from `site_version_changes`, which reads only the changed columns
-- the caller may read.
CREATE FUNCTION resorption.site_version_changes(p_version bigint, p_previous bigint, p_fields text[])
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = resorption, pg_temp AS $$
DECLARE
    readable text[];
    pick text;
    current_values jsonb;
    previous_values jsonb;
BEGIN
    SELECT coalesce(array_agg(f ORDER BY i), '{}') INTO readable
    FROM unnest(p_fields) WITH ORDINALITY AS u (f, i)
    WHERE has_column_privilege('resorption.sites_history', f, 'SELECT');
    IF readable = '{}' THEN
        RETURN '[]'::jsonb;
    END IF;
    -- to_jsonb of a row of named columns: no limit on how many (jsonb_build_object has one).
    pick := format('SELECT to_jsonb(v) FROM (SELECT %s FROM resorption.sites_history h '
                   'WHERE h.version_id = $1) v',
                   (SELECT string_agg(format('h.%I', f), ', ') FROM unnest(readable) AS f));
    EXECUTE pick INTO current_values USING p_version;
    IF p_previous IS NOT NULL THEN
        EXECUTE pick INTO previous_values USING p_previous;
    END IF;
    RETURN (SELECT jsonb_agg(jsonb_build_object('field', f, 'old', previous_values -> f,
                                                'new', current_values -> f) ORDER BY i)
            FROM unnest(readable) WITH ORDINALITY AS u (f, i));
END $$;

CREATE OR REPLACE VIEW resorption.site_changes WITH (security_invoker = true) AS
SELECT h.version_id AS id,
       h.id AS site_id,
       h.name AS site_name,
       h.departement_code,
       h.location,
       lower(h.valid) AS valid_from,
       CASE WHEN h.operation = 'delete' THEN NULL ELSE upper(h.valid) END AS valid_to,
       h.operation,
       h.changed_by,
       resorption.site_version_changes(h.version_id, previous.version_id, h.changed_fields) AS changes
FROM resorption.sites_history h
-- the previous version the caller may read (row-level security applies here too)
LEFT JOIN LATERAL (
    SELECT p.version_id
    FROM resorption.sites_history p
    WHERE p.id = h.id AND lower(p.valid) < lower(h.valid)
    ORDER BY lower(p.valid) DESC
    LIMIT 1
) previous ON true;

-- 2. Open data. The views read every site with their owner's rights by design (only
-- aggregates under statistical secrecy leave them): as barriers, no condition of a caller
-- is evaluated before their own rows are built. The date of the last change of any site
-- goes: it told anyone, to the second, when a site changed anywhere; `as_of` dates the
-- figures.
DROP VIEW resorption.opendata_departements;
CREATE VIEW resorption.opendata_departements WITH (security_barrier) AS
SELECT d.code, d.name, d.region_code, r.name AS region_name,
       current_date AS as_of,
       f.open_sites, f.population, f.minors, f.households,
       f.closed_resorbed, f.closed_by_justice, f.closed_by_pref_admin, f.closed_by_city_admin,
       f.closed_other, f.closed_unknown, f.secret_statistique,
       d.geom_simplified AS geom
FROM resorption.departements d
JOIN resorption.regions r ON r.code = d.region_code
JOIN resorption.opendata_figures f ON f.level = 'departement' AND f.code = d.code;

DROP VIEW resorption.opendata_regions;
CREATE VIEW resorption.opendata_regions WITH (security_barrier) AS
SELECT r.code, r.name,
       current_date AS as_of,
       f.open_sites, f.population, f.minors, f.households,
       f.closed_resorbed, f.closed_by_justice, f.closed_by_pref_admin, f.closed_by_city_admin,
       f.closed_other, f.closed_unknown, f.secret_statistique,
       r.geom_simplified AS geom
FROM resorption.regions r
JOIN resorption.opendata_figures f ON f.level = 'region' AND f.code = r.code;

ALTER VIEW resorption.opendata_figures SET (security_barrier = true);

-- 3. Versions of the vector tiles per département. A tile's ETag is built on its collection's
-- version: a national count of writes let anyone poll it and learn that someone, somewhere,
-- edited a site. Each write now leaves one row per département it touched (old and new
-- values, an action's every département), and row-level security counts for each caller only
-- the rows of its scope: a caller's version changes only when something it may read changes.
-- Territories are public: their rows have no département.
ALTER TABLE resorption.collection_changes ADD COLUMN departement_code text;
CREATE INDEX collection_changes_scope_idx
    ON resorption.collection_changes (collection, departement_code);

DROP POLICY read ON resorption.collection_changes;
CREATE POLICY read ON resorption.collection_changes FOR SELECT
    USING (CASE collection
               WHEN 'sites' THEN resorption.in_scope('resorption.sites_scope', departement_code)
               WHEN 'actions' THEN resorption.in_scope('resorption.actions_scope', departement_code)
               ELSE true
           END);

-- The départements a statement touched, from its transition tables (`old_rows`, `new_rows`:
-- each trigger below declares those its event has). An action is seen in each of its
-- départements. TRUNCATE (the owner's loaders only) touches everything: one row per
-- département, so that every scope sees it.
CREATE OR REPLACE FUNCTION resorption.record_collection_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    collection text := TG_ARGV[0];
BEGIN
    IF collection NOT IN ('sites', 'actions') THEN
        INSERT INTO collection_changes (collection) VALUES (collection);
    ELSIF TG_OP = 'TRUNCATE' THEN
        INSERT INTO collection_changes (collection, departement_code)
        SELECT collection, d.code FROM departements d;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO collection_changes (collection, departement_code)
        SELECT DISTINCT collection, departement_code FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO collection_changes (collection, departement_code)
        SELECT collection, departement_code FROM old_rows
        UNION SELECT collection, departement_code FROM new_rows;
    ELSE
        INSERT INTO collection_changes (collection, departement_code)
        SELECT DISTINCT collection, departement_code FROM old_rows;
    END IF;
    IF TG_TABLE_NAME = 'actions' AND TG_OP IN ('INSERT', 'UPDATE') THEN
        -- the other départements of the actions written, read as the owner: the caller's
        -- scope must not decide what is recorded. (A deleted action's départements go by
        -- cascade, and their own trigger records them.)
        INSERT INTO collection_changes (collection, departement_code)
        SELECT DISTINCT collection, ad.departement_code
        FROM action_departements ad
        WHERE ad.action_id IN (SELECT id FROM new_rows);
    END IF;
    RETURN NULL;
END $$;

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('sites', 'sites'),
        ('actions', 'actions'),
        ('action_departements', 'actions'),
        ('regions', 'regions'),
        ('departements', 'departements'),
        ('communes', 'communes')) AS v (tbl, collection)
    LOOP
        EXECUTE format('DROP TRIGGER %I ON resorption.%I', t.tbl || '_tiles_version', t.tbl);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT ON resorption.%I REFERENCING NEW TABLE AS new_rows '
            'FOR EACH STATEMENT EXECUTE FUNCTION resorption.record_collection_change(%L)',
            t.tbl || '_tiles_version_insert', t.tbl, t.collection);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER UPDATE ON resorption.%I '
            'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
            'FOR EACH STATEMENT EXECUTE FUNCTION resorption.record_collection_change(%L)',
            t.tbl || '_tiles_version_update', t.tbl, t.collection);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER DELETE ON resorption.%I REFERENCING OLD TABLE AS old_rows '
            'FOR EACH STATEMENT EXECUTE FUNCTION resorption.record_collection_change(%L)',
            t.tbl || '_tiles_version_delete', t.tbl, t.collection);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER TRUNCATE ON resorption.%I '
            'FOR EACH STATEMENT EXECUTE FUNCTION resorption.record_collection_change(%L)',
            t.tbl || '_tiles_version_truncate', t.tbl, t.collection);
    END LOOP;
END $$;

-- Past writes have no département: they count for national callers only, which changes
-- nothing but the value of a counter.

-- 4. Uniqueness that cannot reveal a hidden row. An external reference (sites) or a reference
-- (actions) unique in the whole country let a writer learn, from a refusal, that a site or an
-- action it may not read holds one. Unique within a département, a refusal names a row of the
-- writer's own département, which it may read (whoever may write somewhere may read there).
ALTER TABLE resorption.sites DROP CONSTRAINT sites_external_ref_key;
ALTER TABLE resorption.sites
    ADD CONSTRAINT sites_external_ref_key UNIQUE (departement_code, external_ref);
ALTER TABLE resorption.actions DROP CONSTRAINT actions_reference_key;
ALTER TABLE resorption.actions
    ADD CONSTRAINT actions_reference_key UNIQUE (departement_code, reference);

-- 5. SECURITY DEFINER functions. Dead since 160_performance.sql: the policies of actions read
-- the `actions_in_scope` view instead.
DROP FUNCTION resorption.action_in_scope(bigint);

-- None is executable by PUBLIC: the application's login role gets EXECUTE on the few it calls
-- (privileges.APP_FUNCTIONS, each justified there); the others are trigger functions, which
-- PostgreSQL runs as their owner whatever the writer's privileges.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'resorption' AND p.prosecdef LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END $$;

-- 6. Jobs of OGC API Processes: the application's login role reads them directly, and its
-- Python code used to be the only thing showing a job to its owner alone. Row-level security
-- now says it too: the job manager sets, per transaction, whose jobs it may read
-- (resorption.jobs_owner, a username) and whether all of them (resorption.jobs_all = 'on', for
-- national administrators). Unset: no job at all (fail closed).
ALTER TABLE resorption_jobs.jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_or_admin ON resorption_jobs.jobs
    USING (owner = current_setting('resorption.jobs_owner', true)
           OR coalesce(current_setting('resorption.jobs_all', true), '') = 'on')
    WITH CHECK (owner = current_setting('resorption.jobs_owner', true)
                OR coalesce(current_setting('resorption.jobs_all', true), '') = 'on');
