-- Vector tiles: what invalidates a collection's tiles.
--
-- Every statement that writes a table a tile shows adds one row here (statement-level
-- triggers), in the writer's transaction. A collection's version is the number of its rows:
-- rows are only ever inserted, so each committed write changes it, whatever the order in
-- which concurrent writers commit (a max(id) would miss a lower id committed later), and
-- no writer waits for another (an UPDATE of one counter row per collection would serialise
-- writers and could deadlock two multi-statement transactions). A rolled-back write leaves
-- no row. The version enters every tile's ETag (resorption.tiles).
CREATE TABLE resorption.collection_changes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX collection_changes_collection_idx ON resorption.collection_changes (collection);

-- The application's roles read the versions (resorption.privileges grants SELECT) but only of
-- the collections they may read: the scopes are those of 060_row_security.sql (unset or empty:
-- nowhere), so an anonymous caller never learns when sites or actions change.
ALTER TABLE resorption.collection_changes ENABLE ROW LEVEL SECURITY;
CREATE POLICY read ON resorption.collection_changes FOR SELECT
    USING (CASE collection
               WHEN 'sites' THEN coalesce(current_setting('resorption.sites_scope', true), '') <> ''
               WHEN 'actions' THEN coalesce(current_setting('resorption.actions_scope', true), '') <> ''
               ELSE true
           END);

-- Writers may not insert into the table themselves: the trigger function runs as its owner,
-- with a fixed search_path so that a caller's objects cannot stand in for ours.
CREATE FUNCTION resorption.record_collection_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
BEGIN
    INSERT INTO collection_changes (collection) VALUES (TG_ARGV[0]);
    RETURN NULL;
END $$;

-- Each table whose writes change what a collection's tiles show, with that collection:
-- an action's départements decide who sees it (row-level security).
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
            'CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON resorption.%I '
            'FOR EACH STATEMENT EXECUTE FUNCTION resorption.record_collection_change(%L)',
            t.tbl || '_tiles_version', t.tbl, t.collection);
    END LOOP;
END $$;
