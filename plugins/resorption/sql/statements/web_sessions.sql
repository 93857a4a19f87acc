-- The statements of resorption.web.sessions: browser sessions (sql/110_web_sessions.sql).

-- name: open_session
-- A new session of a user: its hash, CSRF token, idle and absolute lifetimes, client.
SELECT resorption.open_web_session(%s, %s, %s, %s, %s, %s)

-- name: session_of
-- The live session of a session hash: its principal row and CSRF token.
SELECT principal, csrf_token FROM resorption.user_by_session(%s)

-- name: close_session
SELECT resorption.close_web_session(%s)
