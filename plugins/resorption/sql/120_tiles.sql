-- Vector tiles: what invalidates a collection's tiles, for each caller.
--
-- Every statement that writes a table a tile shows adds rows here (statement-level triggers),
-- in the writer's transaction. A collection's version is the number of its rows the caller may
-- read: rows are only ever inserted, so each committed write changes it, whatever the order in
-- which concurrent writers commit (a max(id) would miss a lower id committed later), and no
-- writer waits for another (an UPDATE of one counter row per collection would serialise
-- writers and could deadlock two multi-statement transactions). A rolled-back write leaves no
-- row. The version enters every tile's ETag (resorption.tiles).
--
-- Versions per département: a national count of writes let anyone poll a tile's ETag and learn
-- that someone, somewhere, edited a site. Each write leaves one row per département it touched
-- (old and new values, an action's every département), and row-level security counts for each
-- caller only the rows of its scope: a caller's version changes only when something it may
-- read changes. Territories are public: their rows have no département.
--
-- The purger folds the rows of each (collection, département) into one that stands for them
-- all (`changes`, resorption.fold_collection_changes): the sum, hence every ETag, stays the
-- same, and a version sums a few hundred rows instead of counting every write ever made (a
-- tile of the Gironde after 14,000 writes spent 3 ms of its 4 on its version).
CREATE TABLE resorption.collection_changes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    departement_code text,
    changes    bigint NOT NULL DEFAULT 1
);
CREATE INDEX collection_changes_collection_idx ON resorption.collection_changes (collection);
CREATE INDEX collection_changes_scope_idx
    ON resorption.collection_changes (collection, departement_code);

-- The application's roles read the versions (resorption.privileges grants SELECT) but only of
-- what they may read: the read scopes of sites and actions (005_row_security.sql; unset or
-- empty: nowhere), so an anonymous caller never learns when sites or actions change.
ALTER TABLE resorption.collection_changes ENABLE ROW LEVEL SECURITY;
-- The scopes are read once per statement (sub-selects, 005_row_security.sql), not per row.
CREATE POLICY read ON resorption.collection_changes FOR SELECT
    USING (CASE collection
               WHEN 'sites' THEN (SELECT resorption.scope_is_nation('resorption.sites_scope'))
                   OR departement_code = ANY ((SELECT resorption.scope_codes('resorption.sites_scope'))::text[])
               WHEN 'actions' THEN (SELECT resorption.scope_is_nation('resorption.actions_scope'))
                   OR departement_code = ANY ((SELECT resorption.scope_codes('resorption.actions_scope'))::text[])
               ELSE true
           END);

-- The purger's: the rows of each (collection, département) folded into one (the rows it
-- removed). What is appended meanwhile stays as it is: the DELETE sees only the rows of its
-- snapshot, and each sum is the same before and after.
CREATE FUNCTION resorption.fold_collection_changes() RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    WITH folded AS (DELETE FROM resorption.collection_changes
                    RETURNING collection, departement_code, changed_at, changes),
         kept AS (INSERT INTO resorption.collection_changes (collection, departement_code, changed_at, changes)
                  SELECT collection, departement_code, max(changed_at), sum(changes) FROM folded
                  GROUP BY collection, departement_code)
    SELECT count(*) FROM folded
$$;
REVOKE ALL ON FUNCTION resorption.fold_collection_changes FROM PUBLIC;

-- The départements a statement touched, from its transition tables (`old_rows`, `new_rows`:
-- each trigger below declares those its event has). An action is seen in each of its
-- départements. TRUNCATE (the owner's loaders only) touches everything: one row per
-- département, so that every scope sees it.
--
-- Writers may not insert into the table themselves: the trigger function runs as its owner,
-- with a fixed search_path so that a caller's objects cannot stand in for ours.
CREATE FUNCTION resorption.record_collection_change() RETURNS trigger
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

-- A trigger function runs as its owner whatever the writer's privileges: nobody needs EXECUTE.
REVOKE ALL ON FUNCTION resorption.record_collection_change FROM PUBLIC;

-- Each table whose writes change what a collection's tiles show, with that collection (an
-- action's départements decide who sees it), gets four triggers
-- <table>_tiles_version_{insert,update,delete,truncate}.
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
