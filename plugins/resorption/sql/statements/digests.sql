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
