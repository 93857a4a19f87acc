-- The statements of resorption.account_upkeep (run as the owner, from cron).

-- name: clear_warnings
-- A warned account used since (a token; a sign-in clears its warning itself): no longer
-- warned, so that it is warned again, and only then deactivated, if it falls unused anew.
UPDATE resorption.users u SET inactivity_warned_at = NULL
WHERE u.inactivity_warned_at IS NOT NULL
  AND (u.last_sign_in_at >= u.inactivity_warned_at
       OR EXISTS (SELECT 1 FROM resorption.api_tokens t
                  WHERE t.user_id = u.id AND t.last_used_at >= u.inactivity_warned_at))

-- name: to_warn
-- Active accounts with an address, unused for `months` months (no browser sign-in, no token
-- used, not created nor reactivated since), not warned yet.
SELECT u.id, u.username, u.email, coalesce(u.full_name, u.username) AS name
FROM resorption.users u
WHERE u.active AND u.email IS NOT NULL AND u.inactivity_warned_at IS NULL
  AND greatest(u.created_at, u.last_sign_in_at,
               (SELECT max(t.last_used_at) FROM resorption.api_tokens t WHERE t.user_id = u.id))
      < now() - make_interval(months => %(months)s)
ORDER BY u.id

-- name: mark_warned
UPDATE resorption.users SET inactivity_warned_at = now() WHERE id = %s

-- name: to_deactivate
-- Warned `days` days ago or more, and unused since the warning.
SELECT u.id, u.username, u.email, coalesce(u.full_name, u.username) AS name
FROM resorption.users u
WHERE u.active AND u.inactivity_warned_at < now() - make_interval(days => %(days)s)
  AND coalesce(u.last_sign_in_at, '-infinity') < u.inactivity_warned_at
  AND NOT EXISTS (SELECT 1 FROM resorption.api_tokens t
                  WHERE t.user_id = u.id AND t.last_used_at >= u.inactivity_warned_at)
ORDER BY u.id

-- name: deactivate
WITH off AS (
    UPDATE resorption.users SET active = false, deactivated_at = now() WHERE id = %(id)s RETURNING id
)
SELECT resorption.end_credentials((SELECT id FROM off)) AS ended

-- name: audit
INSERT INTO resorption.audit_log (username, action, collection, item_id, detail)
VALUES ('entretien', 'user_deactivated', 'users', %s::text, %s)

-- name: waiting_requests
-- Pending requests older than `days` days, not reminded for `days` days.
SELECT id, full_name, organisation, departement_code, created_at
FROM resorption.access_requests
WHERE status = 'pending' AND created_at < now() - make_interval(days => %(days)s)
  AND coalesce(reminded_at, '-infinity') < now() - make_interval(days => %(days)s)
ORDER BY created_at

-- name: managers_of
SELECT id, email FROM resorption.managers_of(%s, %s)

-- name: mark_reminded
UPDATE resorption.access_requests SET reminded_at = now() WHERE id = ANY(%s)

-- name: charter_to_tell
-- Active accounts with an address that accepted an earlier charter and were not told of this one.
SELECT u.id, u.username, u.email, coalesce(u.full_name, u.username) AS name, u.charter_version
FROM resorption.users u
WHERE u.active AND u.email IS NOT NULL AND u.charter_version IS NOT NULL
  AND u.charter_version <> %(version)s AND u.charter_notified_version IS DISTINCT FROM %(version)s
ORDER BY u.id

-- name: mark_charter_told
UPDATE resorption.users SET charter_notified_version = %s WHERE id = %s
