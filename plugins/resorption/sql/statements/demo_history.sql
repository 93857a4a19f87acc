-- The statements of resorption.demo.history: every version of the demonstration's sites.

-- name: stage_plans
-- The plan of each version, drawn in Python and streamed with COPY.
CREATE TEMPORARY TABLE demo_versions (
    site_id bigint, seq integer, valid_from timestamptz, valid_to timestamptz,
    factor double precision, counted_on date, census_reset boolean, reopened boolean,
    unconfirmed boolean) ON COMMIT DROP

-- name: disable_trigger
-- Pause the history trigger {trigger} of the table {table} (for the transaction: it comes back with it).
ALTER TABLE {table} DISABLE TRIGGER {trigger}

-- name: enable_trigger
ALTER TABLE {table} ENABLE TRIGGER {trigger}

-- name: demo_sites
-- What the plans of the demonstration's sites (external_ref LIKE %s) start from.
SELECT id, created_at, updated_at, confirmed_at, closed_at, census_status = 'done', census_at,
 population_total IS NOT NULL, population_updated_at
 FROM resorption.sites WHERE external_ref LIKE %s ORDER BY id

-- name: jit_off
-- One long statement follows: compiling it just in time costs more than it saves.
SET LOCAL jit = off

-- name: insert_action_versions
-- The first version of each demonstration action ({c}: the columns shared with its live table).
INSERT INTO resorption.actions_history ({c}, valid, operation, changed_by)
 SELECT {c}, tstzrange(created_at, NULL), 'insert', created_by FROM resorption.actions
 WHERE reference LIKE %s ORDER BY id

-- name: insert_indicator_versions
-- The first version of each indicator snapshot of a demonstration action, recorded the day
-- it was measured (at the action's creation when that came later).
INSERT INTO resorption.action_indicators_history ({c}, valid, operation, changed_by)
 SELECT {c}, tstzrange(greatest(i.measured_at::timestamptz + interval '18 hours', a.created_at), NULL),
        'insert', a.created_by
 FROM resorption.action_indicators i JOIN resorption.actions a ON a.id = i.action_id
 WHERE a.reference LIKE %s ORDER BY i.action_id, i.measured_at

-- name: insert_finance_versions
-- The first version of each finance line of a demonstration action, recorded with the action.
INSERT INTO resorption.action_finances_history ({c}, valid, operation, changed_by)
 SELECT {c}, tstzrange(a.created_at, NULL), 'insert', a.created_by
 FROM resorption.action_finances f JOIN resorption.actions a ON a.id = f.action_id
 WHERE a.reference LIKE %s ORDER BY f.action_id, f.year, f.funding_type

-- name: history_columns
-- The columns a history table (the second) shares with its live table (the first), in table order.
SELECT resorption.history_columns(%s::regclass, %s::regclass)

-- name: insert_site_versions
-- Every version of every site from its live row and its plan: {expressions} the columns of a
-- version, {names} those columns, {tracked} and {names_array} the columns whose changes are
-- listed, {author} who made the versions.
WITH versions AS (
    SELECT {expressions}, v.seq, v.valid_from, v.valid_to
    FROM demo_versions v JOIN resorption.sites s ON s.id = v.site_id
), imaged AS (
    SELECT versions.*, jsonb_build_object({tracked}) AS image FROM versions
), compared AS (
    SELECT imaged.*, lag(image) OVER (PARTITION BY id ORDER BY seq) AS before FROM imaged
)
INSERT INTO resorption.sites_history ({names}, valid, operation, changed_by, changed_fields)
SELECT {names}, tstzrange(valid_from, valid_to),
       (CASE WHEN seq = 0 THEN 'insert' WHEN f.fields = '{{confirmed_at}}' THEN 'confirm'
             ELSE 'update' END)::resorption.history_operation,
       {author}, f.fields
-- OFFSET 0 keeps the comparison a subquery, computed once per version.
FROM compared, LATERAL (
    SELECT CASE WHEN seq = 0 THEN '{{}}'::text[] ELSE ARRAY(
        SELECT n FROM unnest({names_array}::text[]) WITH ORDINALITY AS u (n, i)
        WHERE image -> n IS DISTINCT FROM before -> n ORDER BY i) END AS fields
    OFFSET 0
) f
ORDER BY id, seq

-- The expressions of a version's columns, for insert_site_versions ({expressions}): s is the
-- live site, v the version's plan. A column none of them names is the live one, s.<column>.

-- name: live_column
s.{}

-- name: counted
-- A count in a version: the live one ({live}) from the last count on, else {before}.
CASE WHEN v.factor = 1 OR s.population_total IS NULL THEN {live} ELSE {before} END

-- name: scaled_total
-- The total population before the last count.
greatest(1, round(s.population_total * v.factor))::integer

-- name: scaled_households
least(greatest(1, round(s.population_total * v.factor))::integer, greatest(1, floor(s.population_households * v.factor)))::integer

-- name: scaled_count
-- A part of the population ({}: its column) before the last count (floors keep every
-- "part ≤ whole" check true).
floor(s.{} * v.factor)::integer

-- name: counted_on
v.counted_on

-- name: census_reset
-- A census done later was none yet: {before} in the versions before it, else {live}.
CASE WHEN v.census_reset THEN {before} ELSE {live} END

-- name: no_census
'none'::resorption.census_status

-- name: reopened
-- A site closed later was open: {before} in the versions before its closing, else {live}.
CASE WHEN v.reopened THEN {before} ELSE {live} END

-- name: open_status
'open'::resorption.site_status

-- name: unconfirmed
CASE WHEN v.unconfirmed THEN NULL ELSE s.confirmed_at END

-- name: version_updated_at
CASE WHEN v.valid_to IS NULL THEN s.updated_at ELSE least(v.valid_from, s.updated_at) END

-- name: phase
-- A phase done later ({e}: its live date) was not done yet in a past version.
CASE WHEN v.valid_to IS NULL OR {e} <= v.valid_from::date THEN {e} END
