-- The read scopes read once per statement, not once per row (bench/ANALYSIS.md, issue 16).
--
-- `in_scope(setting, departement)` reads the setting and splits it for every row it tests:
-- ~0.45 µs a row, 45 ms to count 100,000 sites for a national reader, and as much for every
-- row an `offset=` page skips. The read policies below say the same thing with the setting in
-- uncorrelated sub-selects: PostgreSQL runs each once per statement (an InitPlan) and tests a
-- row against its results: `true OR …` for a national reader (the rest is never evaluated), or
-- `departement_code = ANY(<codes>)`. Unset or empty still means nowhere (NULL: fail closed).
-- The write, close and delete policies keep in_scope: they test the rows a write touches.

CREATE OR REPLACE FUNCTION resorption.scope_is_nation(setting text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting(setting, true), '') = '*'
$$;

CREATE OR REPLACE FUNCTION resorption.scope_codes(setting text) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT string_to_array(nullif(current_setting(setting, true), ''), ',')
$$;

DROP POLICY IF EXISTS sites_read ON resorption.sites;
CREATE POLICY sites_read ON resorption.sites FOR SELECT
    USING ((SELECT resorption.scope_is_nation('resorption.sites_scope'))
           OR departement_code = ANY ((SELECT resorption.scope_codes('resorption.sites_scope'))::text[]));

DROP POLICY IF EXISTS sites_history_read ON resorption.sites_history;
CREATE POLICY sites_history_read ON resorption.sites_history FOR SELECT
    USING ((SELECT resorption.scope_is_nation('resorption.sites_scope'))
           OR departement_code = ANY ((SELECT resorption.scope_codes('resorption.sites_scope'))::text[]));

CREATE OR REPLACE VIEW resorption.actions_in_scope WITH (security_barrier) AS
SELECT ad.action_id
FROM resorption.action_departements ad
WHERE (SELECT resorption.scope_is_nation('resorption.actions_scope'))
   OR ad.departement_code = ANY ((SELECT resorption.scope_codes('resorption.actions_scope'))::text[]);

DROP POLICY IF EXISTS actions_read ON resorption.actions;
CREATE POLICY actions_read ON resorption.actions FOR SELECT
    USING ((SELECT resorption.scope_is_nation('resorption.actions_scope'))
           OR departement_code = ANY ((SELECT resorption.scope_codes('resorption.actions_scope'))::text[])
           OR EXISTS (SELECT 1 FROM resorption.actions_in_scope s WHERE s.action_id = actions.id));

DROP POLICY IF EXISTS actions_history_read ON resorption.actions_history;
CREATE POLICY actions_history_read ON resorption.actions_history FOR SELECT
    USING ((SELECT resorption.scope_is_nation('resorption.actions_scope'))
           OR departement_code = ANY ((SELECT resorption.scope_codes('resorption.actions_scope'))::text[])
           OR EXISTS (SELECT 1 FROM resorption.actions_in_scope s WHERE s.action_id = actions_history.id));
