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
--   activity_id     the version's event id in the activity feed (190_activity.sql), stored
--
-- Only the AFTER triggers below write them, as the owner (SECURITY DEFINER): the
-- application's roles may read them (same column privileges as the live table, granted
-- by `privileges.py`) and nothing else, so no write path can skip the history.
-- Here `LIKE` copies the columns; a revision that adds a column to sites or actions must add
-- it to the history table too (tests/test_history.py checks that they match).

CREATE TYPE resorption.history_operation AS ENUM ('insert', 'update', 'confirm', 'delete');

-- The id of a version in the activity feed (190_activity.sql), stored with it (activity_id):
-- an event's id: microseconds before 2100-01-01 (16 digits), then the source's letter and
-- the row's key. Immutable (the epoch of an instant does not depend on the time zone), and not
-- inlined (its body is only stable), so that indexes on it match the view's expression.
CREATE FUNCTION resorption.activity_key(at timestamptz, source text, key bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lpad((4102444800000000 - floor(extract(epoch FROM at) * 1000000))::bigint::text, 16, '0')
           || source || key::text
$$;

CREATE TABLE resorption.sites_history (
    LIKE resorption.sites,
    version_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    valid          tstzrange NOT NULL,
    operation      resorption.history_operation NOT NULL,
    changed_by     text,
    changed_fields text[] NOT NULL DEFAULT '{}',
    -- its event in the activity feed (190_activity.sql); the trigger never names it
    activity_id    text GENERATED ALWAYS AS (resorption.activity_key(lower(valid), 's', version_id)) STORED,
    -- one version of a site at a time
    CONSTRAINT sites_history_no_overlap EXCLUDE USING gist (id WITH =, valid WITH &&)
);
CREATE INDEX sites_history_valid_idx ON resorption.sites_history USING gist (valid);
CREATE INDEX sites_history_location_idx ON resorption.sites_history USING gist (location);
-- A départemental page of the past (`datetime`) reads its département only, in id order
-- (as sites_departement_id_idx, 030_sites.sql); and the versions of the nation in id order:
-- `valid @> instant ORDER BY id LIMIT n` can read them in id order and stop at the page's end
-- instead of sorting every version of the instant (when the planner takes it: the row-level
-- predicate's estimate makes it prefer a sort).
CREATE INDEX sites_history_departement_id_idx ON resorption.sites_history (departement_code, id);
-- A département's page of the changelog (site_changes, ordered by version) reads its
-- département's versions only, in order (query/features.py, SCOPE_COLUMNS). By the primary key,
-- the Gironde's first page discarded the 63,270 versions of the départements before it.
CREATE INDEX sites_history_departement_version_idx ON resorption.sites_history (departement_code, version_id);
-- A site's versions in time order: the previous version of each change (site_changes, below)
-- read in order, with no sort. Without the time in the index, a plan that may not sort (a
-- national page in id order, reader._planner) walked every version of every site backwards
-- for each change.
CREATE INDEX sites_history_id_valid_idx ON resorption.sites_history (id, lower(valid));
-- A site's current version, which the history trigger closes at each change
-- (`id = $1 AND upper_inf(valid)`): one entry per site. By (id, lower(valid)), the lookup read
-- every version of the site, and a site changed 4,800 times took 6 ms to change.
CREATE INDEX sites_history_current_idx ON resorption.sites_history (id) WHERE upper_inf(valid);

COMMENT ON COLUMN resorption.sites_history.external_ref IS
    'Référence externe du site, telle qu''elle était dans cette version.';

CREATE TABLE resorption.actions_history (
    LIKE resorption.actions,
    version_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    valid          tstzrange NOT NULL,
    operation      resorption.history_operation NOT NULL,
    changed_by     text,
    changed_fields text[] NOT NULL DEFAULT '{}',
    activity_id    text GENERATED ALWAYS AS (resorption.activity_key(lower(valid), 'a', version_id)) STORED,
    CONSTRAINT actions_history_no_overlap EXCLUDE USING gist (id WITH =, valid WITH &&)
);
CREATE INDEX actions_history_valid_idx ON resorption.actions_history USING gist (valid);
-- The actions whose versions lie in a département: a département's page of the changelog of
-- actions reads their versions (query/features.py, SCOPE_VIEWS).
CREATE INDEX actions_history_departement_id_idx ON resorption.actions_history (departement_code, id);
-- An action's versions in time order (as sites_history_id_valid_idx).
CREATE INDEX actions_history_id_valid_idx ON resorption.actions_history (id, lower(valid));
-- An action's current version (as sites_history_current_idx).
CREATE INDEX actions_history_current_idx ON resorption.actions_history (id) WHERE upper_inf(valid);

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

-- The trigger of sites and actions (and of the results of actions, 170_action_results.sql):
-- closes the current version and writes the new one. The trigger's arguments name the row's
-- key columns (none: `id`). Several writes of one row in one transaction make one version (the
-- others never were visible): a version that started at now() is replaced instead of being
-- closed empty.
CREATE FUNCTION resorption.record_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    history regclass := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME || '_history')::regclass;
    who text := coalesce(nullif(current_setting('resorption.username', true), ''), session_user::text);
    columns text := history_columns(TG_RELID, history);
    same_row text := (SELECT string_agg(format('%1$I = ($1).%1$I', k), ' AND ')
                      FROM unnest(CASE WHEN TG_NARGS = 0 THEN ARRAY['id'] ELSE TG_ARGV END) AS k);
    current_version record;
    replaced boolean := false;
    operation resorption.history_operation := lower(TG_OP)::resorption.history_operation;
    fields text[] := '{}';
    -- When this version begins: now(), or just after the current version when a concurrent
    -- transaction that started later wrote it first (this one waited for its row lock).
    ts timestamptz := now();
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('SELECT version_id, lower(valid) AS since, operation, changed_fields FROM %s '
                       'WHERE %s AND upper_inf(valid) FOR UPDATE', history, same_row)
            INTO current_version USING OLD;
        IF current_version.version_id IS NOT NULL THEN
            -- A version begun at this transaction's now() is this transaction's own: replaced.
            IF current_version.since = now() THEN
                replaced := true;
                EXECUTE format('DELETE FROM %s WHERE version_id = $1', history)
                    USING current_version.version_id;
            ELSE
                ts := greatest(now(), current_version.since + interval '1 microsecond');
                EXECUTE format('UPDATE %s SET valid = tstzrange(lower(valid), $2) '
                               'WHERE version_id = $1', history)
                    USING current_version.version_id, ts;
            END IF;
        END IF;
    END IF;

    IF TG_OP = 'DELETE' THEN
        -- A row inserted and deleted by the same transaction never existed for anyone else.
        IF NOT (replaced AND current_version.operation = 'insert') THEN
            EXECUTE format('INSERT INTO %s (%s, valid, operation, changed_by, changed_fields) '
                           'SELECT %s, $2, $3, $4, $5 FROM (SELECT ($1).*) r', history, columns, columns)
                USING OLD, tstzrange(ts, ts, '[]'), operation, who, '{}'::text[];
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
        USING NEW, tstzrange(ts, NULL), operation, who, fields;
    RETURN NULL;
END $$;

-- A trigger function runs as its owner whatever the writer's privileges: nobody needs EXECUTE.
REVOKE ALL ON FUNCTION resorption.record_version FROM PUBLIC;

CREATE TRIGGER sites_history AFTER INSERT OR UPDATE OR DELETE ON resorption.sites
    FOR EACH ROW EXECUTE FUNCTION resorption.record_version();
CREATE TRIGGER actions_history AFTER INSERT OR UPDATE OR DELETE ON resorption.actions
    FOR EACH ROW EXECUTE FUNCTION resorption.record_version();

-- Row-level security: a version is visible under the same rule as its live row, by the
-- version's own département.
ALTER TABLE resorption.sites_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY sites_history_read ON resorption.sites_history FOR SELECT TO resorption_scoped
    USING ((SELECT resorption.scope_is_nation('resorption.sites_scope'))
           OR departement_code = ANY ((SELECT resorption.scope_codes('resorption.sites_scope'))::text[]));
CREATE POLICY nationwide ON resorption.sites_history FOR SELECT TO resorption_nationwide
    USING ((SELECT resorption.scope_is_nation('resorption.sites_scope')));

ALTER TABLE resorption.actions_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY actions_history_read ON resorption.actions_history FOR SELECT TO resorption_scoped
    USING ((SELECT resorption.scope_is_nation('resorption.actions_scope'))
           OR departement_code = ANY ((SELECT resorption.scope_codes('resorption.actions_scope'))::text[])
           OR EXISTS (SELECT 1 FROM resorption.actions_in_scope s WHERE s.action_id = actions_history.id));
CREATE POLICY nationwide ON resorption.actions_history FOR SELECT TO resorption_nationwide
    USING ((SELECT resorption.scope_is_nation('resorption.actions_scope')));

-- The readable changelog of sites: one row per version, with what it changed as
-- [{field, old, new}] against the previous version the caller may read.
--
-- It reads as the caller (security_invoker), so the row-level security of sites_history
-- applies to it. PostgreSQL evaluates a policy before any condition of the query that is not
-- leakproof: a filter that fails on some rows (an overflow, a division by zero) never meets a
-- version the caller may not see, and its error cannot tell hidden rows from absent ones. (A
-- view with its owner's rights, checking the scope in its own WHERE, would let the caller's
-- filter precede that check.)
--
-- A view naming a column needs the caller's privilege on it even when the query does not
-- select it, so the view names the columns every reader has, and the old and new values of
-- the changed fields come from `site_version_changes`, which reads only the changed columns
-- the caller may read: an owner or a justice field changes for nobody without that group,
-- old and new values alike.
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

CREATE VIEW resorption.site_changes WITH (security_invoker = true) AS
SELECT h.version_id AS id,
       h.id AS site_id,
       h.name AS site_name,
       h.departement_code,
       h.location,
       lower(h.valid) AS valid_from,
       CASE WHEN h.operation = 'delete' THEN NULL ELSE upper(h.valid) END AS valid_to,
       h.operation,
       h.changed_by,
       -- against the previous version the caller may read (row-level security applies here
       -- too), looked up inside the column: a query that does not select `changes` (the ids
       -- of a page, a count) does not pay for it
       resorption.site_version_changes(
           h.version_id,
           (SELECT p.version_id
            FROM resorption.sites_history p
            WHERE p.id = h.id AND lower(p.valid) < lower(h.valid)
            ORDER BY lower(p.valid) DESC
            LIMIT 1),
           h.changed_fields) AS changes
FROM resorption.sites_history h;
