-- Web map sign-in: browser sessions (HttpOnly cookie, CSRF).
--
-- The browser holds a random session id in a cookie; the table keeps only its SHA-256,
-- so a copy of the table opens no session. Like users and tokens, the table is private:
-- the application's login role reaches it only through the SECURITY DEFINER functions
-- below, and a session gives back the same principal row as a token does.
CREATE TABLE resorption.web_sessions (
    id_hash      bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    user_id      bigint NOT NULL REFERENCES resorption.users (id) ON DELETE CASCADE,
    -- the token a page sends back (header X-CSRF-Token or form field csrf) with unsafe methods
    csrf_token   text NOT NULL CHECK (length(csrf_token) >= 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    -- closed after this long without a request…
    idle_timeout interval NOT NULL CHECK (idle_timeout > interval '0'),
    -- …and at this instant whatever happens
    expires_at   timestamptz NOT NULL,
    client       text,
    CHECK (expires_at > created_at)
);
CREATE INDEX ON resorption.web_sessions (user_id);
CREATE INDEX ON resorption.web_sessions (expires_at);

-- A new session for an active user; expired sessions of everyone go at the same time,
-- so the table stays small without a scheduled job.
CREATE FUNCTION resorption.open_web_session(
    p_user_id bigint, p_hash bytea, p_csrf text, p_idle_seconds integer, p_absolute_seconds integer,
    p_client text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
BEGIN
    DELETE FROM web_sessions
    WHERE expires_at <= now() OR last_seen_at + idle_timeout <= now();
    INSERT INTO web_sessions (id_hash, user_id, csrf_token, idle_timeout, expires_at, client)
    SELECT p_hash, u.id, p_csrf, make_interval(secs => p_idle_seconds),
           now() + make_interval(secs => p_absolute_seconds), p_client
    FROM users u WHERE u.id = p_user_id AND u.active;
    RETURN FOUND;
END $$;

-- The user of a live session, with the session's CSRF token; nothing for an unknown, idle,
-- expired session or an inactive user. A web map asks for dozens of tiles per move: the
-- session is marked seen only when the last mark is a minute old or more, as a token's use
-- (user_by_token). A session may so close up to a minute before its idle timeout (eight
-- hours), never after.
CREATE FUNCTION resorption.user_by_session(p_hash bytea)
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

CREATE FUNCTION resorption.close_web_session(p_hash bytea) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    WITH gone AS (DELETE FROM web_sessions WHERE id_hash = p_hash RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM gone)
$$;

REVOKE ALL ON FUNCTION resorption.open_web_session, resorption.user_by_session,
    resorption.close_web_session FROM PUBLIC;
