-- The statements of resorption.publisher (as the owner of the tables).

-- name: accounts
-- Every user (or one) as the policy sees them, whether active, whether they hold a live token.
SELECT p.user_id, p.username, p.role, p.options, p.area_level, p.area_code, p.area_departements,
       p.organisation_id, u.active,
       EXISTS (SELECT 1 FROM resorption.api_tokens t
               WHERE t.user_id = u.id AND t.revoked_at IS NULL AND t.expires_at > now()) AS has_token
FROM resorption.users u CROSS JOIN LATERAL resorption.principal_of(u) p
WHERE %(user_id)s::bigint IS NULL OR u.id = %(user_id)s::bigint
ORDER BY u.id
