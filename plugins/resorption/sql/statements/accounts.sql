-- The statements of resorption.accounts: organisations, users and API tokens (command line).

-- name: territory_name
-- The name of a territory by code, in its table {} (regions, departements, epci, communes).
SELECT name FROM resorption.{} WHERE code = %s

-- name: departement_exists
SELECT 1 FROM resorption.departements WHERE code = %s

-- name: insert_organisation
INSERT INTO resorption.organisations (name, kind, departement_code, abbreviation)
VALUES (%s, %s, %s, %s) RETURNING id

-- name: organisations
-- Every organisation with its number of active users, by département then name.
SELECT o.id, o.name, o.kind::text AS kind, o.departement_code, o.abbreviation,
       count(u.id) FILTER (WHERE u.active) AS users
FROM resorption.organisations o LEFT JOIN resorption.users u ON u.organisation_id = o.id
GROUP BY o.id ORDER BY o.departement_code NULLS FIRST, o.name, o.id

-- name: organisation_by_id
SELECT id FROM resorption.organisations WHERE id = %s

-- name: organisations_by_name
SELECT id, departement_code FROM resorption.organisations WHERE name = %s ORDER BY id

-- name: insert_user
INSERT INTO resorption.users (username, email, full_name, organisation_id, role, options,
area_level, area_code, password_hash, oidc_subject)
VALUES (%s, %s, %s, %s, %s::resorption.app_role, %s::resorption.user_option[],
%s::resorption.area_level, %s, %s, %s) RETURNING id

-- name: users
-- Every user with the name of their area and organisation, by username (as do the next three,
-- each for its own condition).
SELECT u.id, u.username, u.email, u.full_name, u.role::text AS role, u.options::text[] AS options,
       u.area_level::text AS area_level, u.area_code,
       CASE u.area_level
           WHEN 'region' THEN (SELECT name FROM resorption.regions WHERE code = u.area_code)
           WHEN 'departement' THEN (SELECT name FROM resorption.departements WHERE code = u.area_code)
           WHEN 'epci' THEN (SELECT name FROM resorption.epci WHERE code = u.area_code)
           WHEN 'commune' THEN (SELECT name FROM resorption.communes WHERE code = u.area_code)
       END AS area_name,
       u.organisation_id, o.name AS organisation_name, u.active,
       u.password_hash IS NOT NULL AS has_password, u.oidc_subject, u.created_at, u.deactivated_at
FROM resorption.users u JOIN resorption.organisations o ON o.id = u.organisation_id
ORDER BY u.username

-- name: active_users
SELECT u.id, u.username, u.email, u.full_name, u.role::text AS role, u.options::text[] AS options,
       u.area_level::text AS area_level, u.area_code,
       CASE u.area_level
           WHEN 'region' THEN (SELECT name FROM resorption.regions WHERE code = u.area_code)
           WHEN 'departement' THEN (SELECT name FROM resorption.departements WHERE code = u.area_code)
           WHEN 'epci' THEN (SELECT name FROM resorption.epci WHERE code = u.area_code)
           WHEN 'commune' THEN (SELECT name FROM resorption.communes WHERE code = u.area_code)
       END AS area_name,
       u.organisation_id, o.name AS organisation_name, u.active,
       u.password_hash IS NOT NULL AS has_password, u.oidc_subject, u.created_at, u.deactivated_at
FROM resorption.users u JOIN resorption.organisations o ON o.id = u.organisation_id
WHERE u.active ORDER BY u.username

-- name: user_by_id
SELECT u.id, u.username, u.email, u.full_name, u.role::text AS role, u.options::text[] AS options,
       u.area_level::text AS area_level, u.area_code,
       CASE u.area_level
           WHEN 'region' THEN (SELECT name FROM resorption.regions WHERE code = u.area_code)
           WHEN 'departement' THEN (SELECT name FROM resorption.departements WHERE code = u.area_code)
           WHEN 'epci' THEN (SELECT name FROM resorption.epci WHERE code = u.area_code)
           WHEN 'commune' THEN (SELECT name FROM resorption.communes WHERE code = u.area_code)
       END AS area_name,
       u.organisation_id, o.name AS organisation_name, u.active,
       u.password_hash IS NOT NULL AS has_password, u.oidc_subject, u.created_at, u.deactivated_at
FROM resorption.users u JOIN resorption.organisations o ON o.id = u.organisation_id
WHERE u.id = %s ORDER BY u.username

-- name: user_by_username
SELECT u.id, u.username, u.email, u.full_name, u.role::text AS role, u.options::text[] AS options,
       u.area_level::text AS area_level, u.area_code,
       CASE u.area_level
           WHEN 'region' THEN (SELECT name FROM resorption.regions WHERE code = u.area_code)
           WHEN 'departement' THEN (SELECT name FROM resorption.departements WHERE code = u.area_code)
           WHEN 'epci' THEN (SELECT name FROM resorption.epci WHERE code = u.area_code)
           WHEN 'commune' THEN (SELECT name FROM resorption.communes WHERE code = u.area_code)
       END AS area_name,
       u.organisation_id, o.name AS organisation_name, u.active,
       u.password_hash IS NOT NULL AS has_password, u.oidc_subject, u.created_at, u.deactivated_at
FROM resorption.users u JOIN resorption.organisations o ON o.id = u.organisation_id
WHERE u.username = %s ORDER BY u.username

-- name: close_user_sessions
-- Every browser session of a user.
DELETE FROM resorption.web_sessions WHERE user_id = %s

-- name: revoke_user_tokens
-- Every token of a user still valid.
UPDATE resorption.api_tokens SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL

-- name: deactivate_user
UPDATE resorption.users SET active = false, deactivated_at = coalesce(deactivated_at, now())
WHERE id = %s

-- name: set_user_options
-- A user's options, replaced (the demonstration accounts follow their definition).
UPDATE resorption.users SET options = %s::resorption.user_option[] WHERE id = %s

-- name: set_password_hash
-- A user's argon2id hash, or NULL for no password.
UPDATE resorption.users SET password_hash = %s WHERE id = %s

-- name: insert_token
-- A token (its hash, never its value), valid for the given interval from now.
INSERT INTO resorption.api_tokens (user_id, token_hash, prefix, label, expires_at)
VALUES (%s, %s, %s, %s, now() + %s) RETURNING id

-- name: token_by_id
-- A token with its owner's username (as do the next four: never the token's value).
SELECT t.id, u.username, t.prefix, t.label, t.created_at, t.expires_at, t.revoked_at, t.last_used_at
FROM resorption.api_tokens t JOIN resorption.users u ON u.id = t.user_id
WHERE t.id = %s

-- name: tokens
-- Every token, newest first.
SELECT t.id, u.username, t.prefix, t.label, t.created_at, t.expires_at, t.revoked_at, t.last_used_at
FROM resorption.api_tokens t JOIN resorption.users u ON u.id = t.user_id
ORDER BY t.created_at DESC, t.id DESC

-- name: tokens_of_user
-- The tokens of one user (by id), newest first.
SELECT t.id, u.username, t.prefix, t.label, t.created_at, t.expires_at, t.revoked_at, t.last_used_at
FROM resorption.api_tokens t JOIN resorption.users u ON u.id = t.user_id
WHERE t.user_id = %s ORDER BY t.created_at DESC, t.id DESC

-- name: token_by_hash
SELECT t.id, u.username, t.prefix, t.label, t.created_at, t.expires_at, t.revoked_at, t.last_used_at
FROM resorption.api_tokens t JOIN resorption.users u ON u.id = t.user_id
WHERE t.token_hash = %s

-- name: tokens_by_prefix
SELECT t.id, u.username, t.prefix, t.label, t.created_at, t.expires_at, t.revoked_at, t.last_used_at
FROM resorption.api_tokens t JOIN resorption.users u ON u.id = t.user_id
WHERE t.prefix = %s ORDER BY t.id

-- name: revoke_token
UPDATE resorption.api_tokens SET revoked_at = now() WHERE id = %s RETURNING revoked_at

-- name: audit_entries
-- The latest audit entries, newest first; a NULL user, period or group does not filter.
SELECT id, at, username, role, action, collection, item_id, groups, method, path, client
FROM resorption.audit_log
WHERE (%(username)s::text IS NULL OR username = %(username)s)
  AND (%(since)s::interval IS NULL OR at >= now() - %(since)s::interval)
  AND (%(group)s::text IS NULL OR %(group)s = ANY(groups))
ORDER BY id DESC LIMIT %(limit)s
