-- History: every version of every site and action, written by the database itself.
--
-- `sites_history` and `actions_history` have every column of their live table, with the
-- same names and types (so the catalog's SQL expressions over the alias `t` work on them
-- unchanged), plus:
--   version_id      the version's own key (increasing with time for one row)
--   valid           [valid-from, valid-to): when this version was the current one; the
--                   current version has an open upper bound. A deletion leaves a
--                   one-instant tombstone [t, t] holding the deleted values.
--   operation       insert, update, confirm (an update that changed nothing but
--                   confirmed_at: "still accurate"), delete
--   changed_by      the application user (resorption.username), else the database user
--   changed_fields  the columns this version changed from the previous one, in table
--                   order (empty for insert and delete: the whole row is the change)
--
-- Only the AFTER triggers below write them, as the owner (SECURITY DEFINER): the
-- application's roles may read them (same column privileges as the live table, granted
-- by `privileges.py`) and nothing else, so no write path can skip the history.
-- A migration that adds a column to sites or actions must add it to the history table
-- too (tests/test_history.py checks that they match).

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TYPE resorption.history_operation AS ENUM ('insert', 'update', 'confirm', 'delete');

CREATE TABLE resorption.sites_history (
    LIKE resorption.sites,
    version_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    valid          tstzrange NOT NULL,
    operation      resorption.history_operation NOT NULL,
    changed_by     text,
    changed_fields text[] NOT NULL DEFAULT '{}',
    -- one version of a site at a time
    CONSTRAINT sites_history_no_overlap EXCLUDE USING gist (id WITH =, valid WITH &&)
);
CREATE INDEX sites_history_valid_idx ON resorption.sites_history USING gist (valid);
CREATE INDEX sites_history_location_idx ON resorption.sites_history USING gist (location);

CREATE TABLE resorption.actions_history (
    LIKE resorption.actions,
    version_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    valid          tstzrange NOT NULL,
    operation      resorption.history_operation NOT NULL,
    changed_by     text,
    changed_fields text[] NOT NULL DEFAULT '{}',
    CONSTRAINT actions_history_no_overlap EXCLUDE USING gist (id WITH =, valid WITH &&)
);
CREATE INDEX actions_history_valid_idx ON resorption.actions_history USING gist (valid);

-- The columns of `live` whose values differ between two images of a row, in table order.
-- Bookkeeping columns (search vector, creation and update stamps) are not changes.
CREATE FUNCTION resorption.changed_fields(live regclass, old jsonb, new jsonb) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}')
    FROM pg_attribute a
    WHERE a.attrelid = live AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attname NOT IN ('search', 'created_at', 'created_by', 'updated_at', 'updated_by')
      AND old -> a.attname::text IS DISTINCT FROM new -> a.attname::text
$$;

-- `names` in the column order of `live`, without duplicates.
CREATE FUNCTION resorption.in_column_order(live regclass, names text[]) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}')
    FROM pg_attribute a
    WHERE a.attrelid = live AND a.attnum > 0 AND NOT a.attisdropped AND a.attname = ANY (names)
$$;

-- The columns of `live` that `history` has too, quoted, in table order: the list for
-- copying a row of `live` into `history` by name, whatever the columns' positions.
CREATE FUNCTION resorption.history_columns(live regclass, history regclass) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
    FROM pg_attribute a
    JOIN pg_attribute h ON h.attrelid = history AND h.attname = a.attname AND NOT h.attisdropped
    WHERE a.attrelid = live AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- The trigger of sites and actions: closes the current version and writes the new one.
-- Several writes of one row in one transaction make one version (the others never were
-- visible): a version that started at now() is replaced instead of being closed empty.
CREATE FUNCTION resorption.record_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    history regclass := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME || '_history')::regclass;
    who text := coalesce(nullif(current_setting('resorption.username', true), ''), session_user::text);
    columns text := history_columns(TG_RELID, history);
    current_version record;
    replaced boolean := false;
    operation resorption.history_operation := lower(TG_OP)::resorption.history_operation;
    fields text[] := '{}';
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('SELECT version_id, lower(valid) AS since, operation, changed_fields FROM %s '
                       'WHERE id = $1 AND upper_inf(valid) FOR UPDATE', history)
            INTO current_version USING OLD.id;
        IF current_version.version_id IS NOT NULL THEN
            IF current_version.since >= now() THEN
                replaced := true;
                EXECUTE format('DELETE FROM %s WHERE version_id = $1', history)
                    USING current_version.version_id;
            ELSE
                EXECUTE format('UPDATE %s SET valid = tstzrange(lower(valid), now()) '
                               'WHERE version_id = $1', history)
                    USING current_version.version_id;
            END IF;
        END IF;
    END IF;

    IF TG_OP = 'DELETE' THEN
        -- A row inserted and deleted by the same transaction never existed for anyone else.
        IF NOT (replaced AND current_version.operation = 'insert') THEN
            EXECUTE format('INSERT INTO %s (%s, valid, operation, changed_by, changed_fields) '
                           'SELECT %s, $2, $3, $4, $5 FROM (SELECT ($1).*) r', history, columns, columns)
                USING OLD, tstzrange(now(), now(), '[]'), operation, who, '{}'::text[];
        END IF;
        RETURN NULL;
    END IF;

    IF TG_OP = 'UPDATE' THEN
        fields := changed_fields(TG_RELID, to_jsonb(OLD), to_jsonb(NEW));
        IF replaced THEN
            operation := CASE WHEN current_version.operation = 'insert' THEN 'insert' ELSE 'update' END;
            fields := CASE WHEN operation = 'insert' THEN '{}'
                           ELSE in_column_order(TG_RELID, current_version.changed_fields || fields) END;
        END IF;
        IF operation = 'update' AND fields = '{confirmed_at}' THEN
            operation := 'confirm';
        END IF;
    END IF;
    EXECUTE format('INSERT INTO %s (%s, valid, operation, changed_by, changed_fields) '
                   'SELECT %s, $2, $3, $4, $5 FROM (SELECT ($1).*) r', history, columns, columns)
        USING NEW, tstzrange(now(), NULL), operation, who, fields;
    RETURN NULL;
END $$;

CREATE TRIGGER sites_history AFTER INSERT OR UPDATE OR DELETE ON resorption.sites
    FOR EACH ROW EXECUTE FUNCTION resorption.record_version();
CREATE TRIGGER actions_history AFTER INSERT OR UPDATE OR DELETE ON resorption.actions
    FOR EACH ROW EXECUTE FUNCTION resorption.record_version();

-- Versions exist from the day the history starts: rows already there get their first one.
DO $$
DECLARE
    live text;
    columns text;
BEGIN
    FOREACH live IN ARRAY ARRAY['sites', 'actions'] LOOP
        columns := resorption.history_columns(format('resorption.%I', live)::regclass,
                                              format('resorption.%I', live || '_history')::regclass);
        EXECUTE format('INSERT INTO resorption.%I (%s, valid, operation, changed_by) '
                       'SELECT %s, tstzrange(updated_at, NULL), ''insert'', updated_by '
                       'FROM resorption.%I ORDER BY id', live || '_history', columns, columns, live);
    END LOOP;
END $$;

-- Row-level security: a version is visible under the same rule as its live row, by the
-- version's own département.
ALTER TABLE resorption.sites_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY sites_history_read ON resorption.sites_history FOR SELECT
    USING (resorption.in_scope('resorption.sites_scope', departement_code));

ALTER TABLE resorption.actions_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY actions_history_read ON resorption.actions_history FOR SELECT
    USING (resorption.in_scope('resorption.actions_scope', departement_code)
           OR resorption.action_in_scope(id));

-- The readable changelog of sites: one row per version, with what it changed as
-- [{field, old, new}] against the previous version. It runs with its owner's rights over
-- the history, so it applies the scope itself, and keeps only the changes of columns the
-- caller may read on `sites` (current_user is the caller's reader role): an owner or a
-- justice field changes for nobody without that group, old and new values alike.
CREATE VIEW resorption.site_changes AS
SELECT h.version_id AS id,
       h.id AS site_id,
       h.name AS site_name,
       h.departement_code,
       h.location,
       lower(h.valid) AS valid_from,
       CASE WHEN h.operation = 'delete' THEN NULL ELSE upper(h.valid) END AS valid_to,
       h.operation,
       h.changed_by,
       coalesce((
           SELECT jsonb_agg(jsonb_build_object('field', f, 'old', previous.data -> f,
                                               'new', to_jsonb(h) -> f) ORDER BY i)
           FROM unnest(h.changed_fields) WITH ORDINALITY AS u (f, i)
           WHERE has_column_privilege('resorption.sites', f, 'SELECT')
       ), '[]'::jsonb) AS changes
FROM resorption.sites_history h
LEFT JOIN LATERAL (
    SELECT to_jsonb(p) AS data
    FROM resorption.sites_history p
    WHERE p.id = h.id AND lower(p.valid) < lower(h.valid)
      AND resorption.in_scope('resorption.sites_scope', p.departement_code)
    ORDER BY lower(p.valid) DESC
    LIMIT 1
) previous ON true
WHERE resorption.in_scope('resorption.sites_scope', h.departement_code);
