-- The statements of resorption.demo.accounts (run as the owner).

-- name: set_email
UPDATE resorption.users SET email = %s WHERE username = %s

-- name: subscribe
-- The weekly digest and the alerts of followed sites, for a demo account.
INSERT INTO resorption.mail_subscriptions (user_id, kind)
SELECT u.id, k FROM resorption.users u, unnest(ARRAY['weekly_digest', 'site_alerts']) k
WHERE u.username = %s
ON CONFLICT DO NOTHING
