-- The statements of resorption.digests: subscribers and watermarks (as the owner), the
-- followed sites (as the recipient: row-level security shows one's own only).

-- name: subscribers
-- The active subscribers of a kind who have an address (only those of a list, when given).
SELECT u.id AS user_id, u.username, u.email, coalesce(u.full_name, u.username) AS name,
       m.watermark, m.alerted
FROM resorption.mail_subscriptions m JOIN resorption.users u ON u.id = m.user_id
WHERE m.kind = %(kind)s AND u.active AND u.email IS NOT NULL
  AND (%(usernames)s::text[] IS NULL OR u.username = ANY(%(usernames)s::text[]))
ORDER BY u.id

-- name: advance
UPDATE resorption.mail_subscriptions SET watermark = %s, alerted = %s WHERE user_id = %s AND kind = %s

-- name: followed_sites
SELECT site_id FROM resorption.site_followers

-- name: new_users
-- The accounts opened in a window whose intervention area meets a read scope (`nation`, or the
-- codes of `departements`): a national account meets every territory. Name, organisation,
-- role and area only: never an address, a sign-in or an option.
SELECT coalesce(nullif(trim(u.full_name), ''), u.username) AS name, o.name AS organisation,
       u.role::text AS role, u.area_level::text AS area_level, u.area_code
FROM resorption.users u JOIN resorption.organisations o ON o.id = u.organisation_id
WHERE u.active AND u.created_at >= %(start)s AND u.created_at < %(end)s
  AND (%(nation)s OR u.area_level = 'nation'
       OR resorption.area_departements(u.area_level, u.area_code) && %(departements)s::text[])
ORDER BY u.created_at DESC, u.id DESC
LIMIT %(limit)s
