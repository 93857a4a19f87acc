-- The statements of resorption.publisher (as the owner of the tables).

-- name: accounts
-- Every user (or one) as the policy sees them, whether active, their live tokens (the broker
-- lets a user in only while the token that is their broker password is one of them) and when
-- the first of these expires (no write marks an expiry: the publisher checks again then).
SELECT p.user_id, p.username, p.role, p.options, p.area_level, p.area_code, p.area_departements,
       p.organisation_id, u.active,
       ARRAY(SELECT t.id FROM resorption.api_tokens t
             WHERE t.user_id = u.id AND t.revoked_at IS NULL AND t.expires_at > now()
             ORDER BY t.id) AS live_tokens,
       (SELECT min(t.expires_at) FROM resorption.api_tokens t
        WHERE t.user_id = u.id AND t.revoked_at IS NULL AND t.expires_at > now()) AS next_expiry
FROM resorption.users u CROSS JOIN LATERAL resorption.principal_of(u) p
WHERE %(user_id)s::bigint IS NULL OR u.id = %(user_id)s::bigint
ORDER BY u.id
