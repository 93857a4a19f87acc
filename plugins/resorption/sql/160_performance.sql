-- Speed-ups found by profiling (bench/ANALYSIS.md, 100,000 and 1,000,000 sites). Same
-- meaning as before: only how PostgreSQL gets there changes.

-- 1. Sign-in. `SELECT (principal_of(u)).*` calls principal_of once per output column (nine
-- times, each reading the territories); a lateral call runs it once. Same signatures,
-- volatility and SECURITY DEFINER: CREATE OR REPLACE keeps the owner and the grants
-- (EXECUTE for the application's login role only, granted by privileges.py).
CREATE OR REPLACE FUNCTION resorption.user_by_username(name text) RETURNS SETOF resorption.principal_row
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT p.* FROM users u CROSS JOIN LATERAL principal_of(u) p
    WHERE u.username = lower(name) AND u.active
$$;

CREATE OR REPLACE FUNCTION resorption.user_by_oidc(subject text, mail text)
RETURNS SETOF resorption.principal_row
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT p.*
    FROM (SELECT u FROM users u
          WHERE u.active AND (u.oidc_subject = subject OR (u.oidc_subject IS NULL AND u.email = lower(mail)))
          ORDER BY u.oidc_subject IS NULL LIMIT 1) found
    CROSS JOIN LATERAL principal_of(found.u) p
$$;

-- A valid token's user; nothing for an unknown, expired or revoked token, or an inactive
-- user. Its use is noted only when the last note is a minute old or more: "last used"
-- keeps its meaning to the minute, without a write (and its WAL) on every request.
CREATE OR REPLACE FUNCTION resorption.user_by_token(hash bytea) RETURNS SETOF resorption.principal_row
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    WITH valid AS (
        SELECT t.id, t.user_id, t.last_used_at FROM api_tokens t
        WHERE t.token_hash = hash AND t.revoked_at IS NULL AND t.expires_at > now()
    ), noted AS (
        UPDATE api_tokens t SET last_used_at = now()
        FROM valid
        WHERE t.id = valid.id
          AND (valid.last_used_at IS NULL OR valid.last_used_at <= now() - interval '1 minute')
    )
    SELECT p.* FROM valid JOIN users u ON u.id = valid.user_id
    CROSS JOIN LATERAL principal_of(u) p
    WHERE u.active
$$;

-- Browser sessions (sql/110_web_sessions.sql) call principal_of once already, but mark the
-- session seen on every request (a web map asks for dozens of tiles per move): the mark is
-- also kept to the minute. A session may so close up to a minute before its idle timeout
-- (eight hours), never after.
CREATE OR REPLACE FUNCTION resorption.user_by_session(p_hash bytea)
RETURNS TABLE (principal jsonb, csrf_token text)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    WITH live AS (
        SELECT s.id_hash, s.user_id, s.csrf_token, s.last_seen_at FROM web_sessions s
        WHERE s.id_hash = p_hash AND s.expires_at > now() AND s.last_seen_at + s.idle_timeout > now()
    ), seen AS (
        UPDATE web_sessions s SET last_seen_at = now()
        FROM live
        WHERE s.id_hash = live.id_hash AND live.last_seen_at <= now() - interval '1 minute'
    )
    SELECT to_jsonb(principal_of(u)) - 'password_hash', live.csrf_token
    FROM users u JOIN live ON live.user_id = u.id WHERE u.active
$$;

REVOKE ALL ON FUNCTION resorption.user_by_username, resorption.user_by_oidc, resorption.user_by_token,
    resorption.user_by_session FROM PUBLIC;

-- 2. Indexes.
-- A départemental caller's page in id order reads its département only (the index on
-- departement_code alone, a prefix of this one, goes).
CREATE INDEX sites_departement_id_idx ON resorption.sites (departement_code, id);
DROP INDEX resorption.sites_departement_idx;
-- (PostgreSQL 15 reads it in id order for `departement_code = '33'`, not for `= ANY('{33}')`.)
-- The same for a page of the past (`datetime`), which reads the history table; and the
-- versions of the nation in id order: `valid @> instant ORDER BY id LIMIT n` can read them
-- in id order and stop at the page's end instead of sorting every version of the instant
-- (when the planner takes it: the row-level predicate's estimate makes it prefer a sort).
-- The history trigger's lookup of a row's current version (`id = $1`) uses it too.
CREATE INDEX sites_history_departement_id_idx ON resorption.sites_history (departement_code, id);
CREATE INDEX sites_history_id_idx ON resorption.sites_history (id);
CREATE INDEX actions_history_id_idx ON resorption.actions_history (id);

-- 3. Actions under a scope. Their policy called action_in_scope(id), a SECURITY DEFINER
-- function the planner cannot inline, once per action read. The same rule is now an EXISTS
-- over this view: a view reads its tables with its owner's rights, so the lookup of
-- action_departements does not go through its own policy (which would come back to the
-- actions: infinite recursion), and the planner inlines it (an index lookup, or one hash of
-- the scope's actions for a whole page). It shows only the actions of the caller's scope,
-- so the reader roles may read it (privileges.py grants them SELECT, as on any table).
-- action_in_scope() stays, unused by the policies.
CREATE VIEW resorption.actions_in_scope WITH (security_barrier) AS
SELECT ad.action_id
FROM resorption.action_departements ad
WHERE resorption.in_scope('resorption.actions_scope', ad.departement_code);

DROP POLICY actions_read ON resorption.actions;
CREATE POLICY actions_read ON resorption.actions FOR SELECT
    USING (resorption.in_scope('resorption.actions_scope', departement_code)
           OR EXISTS (SELECT 1 FROM resorption.actions_in_scope s WHERE s.action_id = actions.id));

DROP POLICY actions_history_read ON resorption.actions_history;
CREATE POLICY actions_history_read ON resorption.actions_history FOR SELECT
    USING (resorption.in_scope('resorption.actions_scope', departement_code)
           OR EXISTS (SELECT 1 FROM resorption.actions_in_scope s WHERE s.action_id = actions_history.id));
-- The details of actions (action_departements, _organisations, _finances, _indicators,
-- action_sites) keep their policy, EXISTS over the actions: it now inlines this one.
