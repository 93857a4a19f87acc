-- The check of a remembered API token (authentication.py keeps a token's principal in each
-- worker): one index lookup, nothing computed from the territories.
--
-- It answers the version of the token's user row (its xmin, which any UPDATE of the row
-- changes: a new role, options or area, a deactivation) while the token is valid (not
-- revoked, not expired) and its user active; NULL otherwise. A worker uses the principal it
-- remembered only when the version is the one it read with it: a revoked token, an expired one
-- or a deactivated user is refused on the very next request, in every worker, and a changed
-- user is looked up again. Like user_by_token, it notes the token's use when the last note is
-- a minute old or more (a write once a minute, not on every request).
CREATE OR REPLACE FUNCTION resorption.token_user_version(hash bytea) RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    WITH valid AS (
        SELECT t.id, t.last_used_at, u.xmin::text AS version
        FROM api_tokens t JOIN users u ON u.id = t.user_id
        WHERE t.token_hash = hash AND t.revoked_at IS NULL AND t.expires_at > now() AND u.active
    ), noted AS (
        UPDATE api_tokens t SET last_used_at = now()
        FROM valid
        WHERE t.id = valid.id
          AND (valid.last_used_at IS NULL OR valid.last_used_at <= now() - interval '1 minute')
    )
    SELECT version FROM valid
$$;
REVOKE ALL ON FUNCTION resorption.token_user_version(bytea) FROM PUBLIC;
