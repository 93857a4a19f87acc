-- The statements of resorption.authentication: one round trip per sign-in.

-- name: record_token_failure
-- Count a bad token, JWT or header against the address; the wait it now has, in seconds.
SELECT resorption.record_token_failure(%s, %s)

-- name: password_gate
-- The throttle and the user in one statement. The user's subquery is uncorrelated, so
-- PostgreSQL runs it as an InitPlan, only when the CASE needs it: a throttled attempt never
-- gets its account looked up.
SELECT g.wait_seconds, g.held, g.note_success,
       CASE WHEN g.wait_seconds = 0
            THEN (SELECT to_jsonb(u) FROM resorption.user_by_username(%(username)s) u LIMIT 1) END
FROM resorption.password_sign_in_gate(%(username)s, %(address)s, %(rules)s) AS g

-- Tokens and JWTs are looked up whatever the address's count: nobody guesses them, and a
-- valid one must never wait for someone else's failures (throttle, "Bad tokens").

-- name: user_by_token
-- The principal row of the user of a token (by its hash).
SELECT to_jsonb(u) FROM resorption.user_by_token(%s) u LIMIT 1

-- name: user_by_oidc
-- The principal row of the user of an OIDC subject (with the token's e-mail).
SELECT to_jsonb(u) FROM resorption.user_by_oidc(%s, %s) u LIMIT 1

-- name: user_by_username
-- The principal row of an active user (command-line tools).
SELECT to_jsonb(r) FROM resorption.user_by_username(%s) r

-- name: record_password_failure
SELECT resorption.record_password_failure(%(username)s, %(address)s, %(rules)s)

-- name: record_password_success
-- A right password: release the counters the attempt held, note the account's address.
SELECT resorption.record_password_success(%(username)s, %(address)s, %(held)s, %(rules)s)

-- name: token_user_version
-- Whether a remembered token is still valid: the version of its user's row, or NULL.
SELECT resorption.token_user_version(%s)
