-- The results of actions in history: every version of every indicator snapshot and finance
-- line (040_actions.sql), and the readable changelog of actions, `action_changes`.
--
-- `action_indicators_history` and `action_finances_history` are to their live tables what
-- `actions_history` is to actions (080_history.sql): the same columns, plus version_id,
-- valid, operation, changed_by and changed_fields, written by `record_version` only, keyed by
-- the live table's primary key. Their version_id comes from the sequence of actions_history:
-- one numbering for every version of an action and of its results, so that `action_changes`
-- can use it as its id.

CREATE TABLE resorption.action_indicators_history (
    LIKE resorption.action_indicators,
    version_id     bigint PRIMARY KEY DEFAULT nextval('resorption.actions_history_version_id_seq'),
    valid          tstzrange NOT NULL,
    operation      resorption.history_operation NOT NULL,
    changed_by     text,
    changed_fields text[] NOT NULL DEFAULT '{}',
    -- its event in the activity feed (190_activity.sql)
    activity_id    text GENERATED ALWAYS AS (resorption.activity_key(lower(valid), 'i', version_id)) STORED,
    -- one version of a snapshot at a time
    CONSTRAINT action_indicators_history_no_overlap
        EXCLUDE USING gist (action_id WITH =, measured_at WITH =, valid WITH &&)
);
-- A measure's versions in time order (as sites_history_id_valid_idx, 080_history.sql).
CREATE INDEX action_indicators_history_action_valid_idx
    ON resorption.action_indicators_history (action_id, measured_at, lower(valid));

CREATE TABLE resorption.action_finances_history (
    LIKE resorption.action_finances,
    version_id     bigint PRIMARY KEY DEFAULT nextval('resorption.actions_history_version_id_seq'),
    valid          tstzrange NOT NULL,
    operation      resorption.history_operation NOT NULL,
    changed_by     text,
    changed_fields text[] NOT NULL DEFAULT '{}',
    activity_id    text GENERATED ALWAYS AS (resorption.activity_key(lower(valid), 'f', version_id)) STORED
);
CREATE INDEX action_finances_history_action_valid_idx
    ON resorption.action_finances_history (action_id, year, funding_type, lower(valid));

CREATE TRIGGER action_indicators_history AFTER INSERT OR UPDATE OR DELETE
    ON resorption.action_indicators
    FOR EACH ROW EXECUTE FUNCTION resorption.record_version('action_id', 'measured_at');
CREATE TRIGGER action_finances_history AFTER INSERT OR UPDATE OR DELETE
    ON resorption.action_finances
    FOR EACH ROW EXECUTE FUNCTION resorption.record_version('action_id', 'year', 'funding_type');

-- Row-level security: a version of a result is visible with its action, the actions' rule
-- asked of `actions_in_scope` (040_actions.sql: an action is read where one of its
-- départements, its main one included, is in the scope); a version of a finance line only to
-- the roles that read the finances (privileges.py grants action_finances to them alone), so
-- that the other readers do not even learn that an action's funding changed. Not
-- `EXISTS (SELECT … FROM actions …)`, and `OFFSET 0`: one lookup by action id for each version
-- read. For a page of the journal PostgreSQL hashed every readable action first: the whole
-- actions table read under its policy (17 ms at 100,000 sites for a département), and for a
-- national reader at 1,000,000 sites 147,422 actions hashed before the first row (260 ms;
-- with `OFFSET 0`, 2 ms).
ALTER TABLE resorption.action_indicators_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY action_indicators_history_read ON resorption.action_indicators_history FOR SELECT
    USING (EXISTS (SELECT 1 FROM resorption.actions_in_scope s
                   WHERE s.action_id = action_indicators_history.action_id OFFSET 0));

ALTER TABLE resorption.action_finances_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY action_finances_history_read ON resorption.action_finances_history FOR SELECT
    USING (has_table_privilege('resorption.action_finances', 'SELECT')
           AND EXISTS (SELECT 1 FROM resorption.actions_in_scope s
                       WHERE s.action_id = action_finances_history.action_id OFFSET 0));

-- The old and new values of the fields a version changed, that the caller may read, as
-- [{field, old, new}] (as site_version_changes, 080_history.sql, for one of the three
-- history tables of actions). A creation lists every field it set.
CREATE FUNCTION resorption.action_version_changes(
    p_history regclass, p_version bigint, p_previous bigint, p_fields text[])
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = resorption, pg_temp AS $$
DECLARE
    readable text[];
    pick text;
    current_values jsonb;
    previous_values jsonb;
BEGIN
    IF p_history NOT IN ('resorption.actions_history'::regclass,
                         'resorption.action_indicators_history'::regclass,
                         'resorption.action_finances_history'::regclass) THEN
        RAISE invalid_parameter_value USING MESSAGE = 'table d''historique inconnue';
    END IF;
    SELECT coalesce(array_agg(f ORDER BY i), '{}') INTO readable
    FROM unnest(p_fields) WITH ORDINALITY AS u (f, i)
    WHERE has_column_privilege(p_history, f, 'SELECT');
    IF readable = '{}' THEN
        RETURN '[]'::jsonb;
    END IF;
    pick := format('SELECT to_jsonb(v) FROM (SELECT %s FROM %s h WHERE h.version_id = $1) v',
                   (SELECT string_agg(format('h.%I', f), ', ') FROM unnest(readable) AS f), p_history);
    EXECUTE pick INTO current_values USING p_version;
    IF p_previous IS NOT NULL THEN
        EXECUTE pick INTO previous_values USING p_previous;
    END IF;
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('field', f, 'old', previous_values -> f,
                                                         'new', current_values -> f) ORDER BY i)
                            FILTER (WHERE p_previous IS NOT NULL OR current_values -> f <> 'null'), '[]')
            FROM unnest(readable) WITH ORDINALITY AS u (f, i));
END $$;

-- The readable changelog of actions: one row per version of an action (`subject` action), of
-- one of its indicator snapshots (indicators, with its date) or of one of its finance lines
-- (funding, with its year and funder), with what it changed against the previous
-- version of the same row that the caller may read.
--
-- As site_changes: it reads as the caller (security_invoker), so the row-level security of the
-- three history tables and of actions applies before any condition of the query; it names
-- only columns every reader of actions has (privileges.py hides finance_year and funder
-- from the others: the catalog marks them sensitive), and the changed values come from
-- `action_version_changes`. The versions of an action that only moved its update stamp (a
-- result recorded: its own version says what changed) are left out.
--
-- Each branch reads one table (the action's name, département and footprint are looked up by
-- id, not joined) and has no condition of its own (the versions left out are said by `shown`,
-- filtered outside the union): PostgreSQL then merges the three branches in the order of
-- their version ids (their primary keys), and a page reads its versions only; a join or a
-- condition in a branch made it read and sort every version of every action. The policies of the results' histories read
-- the action under its own rules: a result of an action the caller may not read stays hidden.
CREATE VIEW resorption.action_changes WITH (security_invoker = true) AS
SELECT id, action_id, action_name, departement_code, footprint, subject, measured_at, finance_year,
       funder, valid_from, valid_to, operation, changed_by, changes
FROM (
    SELECT h.version_id AS id,
           h.id AS action_id,
           h.name AS action_name,
           h.departement_code,
           h.footprint,
           'action'::text AS subject,
           NULL::date AS measured_at,
           NULL::smallint AS finance_year,
           NULL::text AS funder,
           lower(h.valid) AS valid_from,
           CASE WHEN h.operation = 'delete' THEN NULL ELSE upper(h.valid) END AS valid_to,
           h.operation,
           h.changed_by,
           -- against the previous version the caller may read, looked up inside the column (as
           -- site_changes, 080_history.sql: the ids of a page or a count do not pay for it)
           resorption.action_version_changes(
               'resorption.actions_history', h.version_id,
               (SELECT p.version_id
                FROM resorption.actions_history p
                WHERE p.id = h.id AND lower(p.valid) < lower(h.valid)
                ORDER BY lower(p.valid) DESC
                LIMIT 1),
               h.changed_fields) AS changes,
           NOT (h.operation = 'update' AND h.changed_fields = '{}') AS shown
    FROM resorption.actions_history h
    UNION ALL
    SELECT i.version_id,
           i.action_id,
           (SELECT a.name FROM resorption.actions a WHERE a.id = i.action_id),
           (SELECT a.departement_code FROM resorption.actions a WHERE a.id = i.action_id),
           (SELECT a.footprint FROM resorption.actions a WHERE a.id = i.action_id),
           'indicators',
           i.measured_at,
           NULL,
           NULL,
           lower(i.valid),
           CASE WHEN i.operation = 'delete' THEN NULL ELSE upper(i.valid) END,
           i.operation,
           i.changed_by,
           resorption.action_version_changes(
               'resorption.action_indicators_history', i.version_id,
               (SELECT p.version_id
                FROM resorption.action_indicators_history p
                WHERE p.action_id = i.action_id AND p.measured_at = i.measured_at
                  AND lower(p.valid) < lower(i.valid)
                ORDER BY lower(p.valid) DESC
                LIMIT 1),
               CASE WHEN i.operation = 'insert' THEN ARRAY[
                   'people', 'households', 'women', 'minors', 'people_health_care',
                   'people_work_contract', 'people_shelter', 'households_shelter', 'people_housing',
                   'households_housing', 'minors_identified', 'minors_mediation', 'minors_school_start',
                   'minors_nursery', 'minors_primary', 'minors_middle', 'minors_high']
               ELSE i.changed_fields END),
           true
    FROM resorption.action_indicators_history i
    UNION ALL
    SELECT f.version_id,
           f.action_id,
           (SELECT a.name FROM resorption.actions a WHERE a.id = f.action_id),
           (SELECT a.departement_code FROM resorption.actions a WHERE a.id = f.action_id),
           (SELECT a.footprint FROM resorption.actions a WHERE a.id = f.action_id),
           'funding',
           NULL,
           f.year,
           f.funding_type::text,
           lower(f.valid),
           CASE WHEN f.operation = 'delete' THEN NULL ELSE upper(f.valid) END,
           f.operation,
           f.changed_by,
           resorption.action_version_changes(
               'resorption.action_finances_history', f.version_id,
               (SELECT p.version_id
                FROM resorption.action_finances_history p
                WHERE p.action_id = f.action_id AND p.year = f.year AND p.funding_type = f.funding_type
                  AND lower(p.valid) < lower(f.valid)
                ORDER BY lower(p.valid) DESC
                LIMIT 1),
               CASE WHEN f.operation = 'insert' THEN ARRAY['budget', 'spent', 'details']
                    ELSE f.changed_fields END),
           -- (as in the activity, 190_activity.sql)
           has_table_privilege('resorption.action_finances', 'SELECT')
    FROM resorption.action_finances_history f
) v
WHERE v.shown;
