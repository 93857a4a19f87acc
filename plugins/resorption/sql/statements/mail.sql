-- The statements of resorption.mail: the outbox (sql/200_mail_outbox.sql), run as the owner.

-- name: queue
INSERT INTO resorption.mail_outbox (kind, user_id, recipient, subject, body_text, body_html)
VALUES (%s, %s, %s, %s, %s, %s)

-- name: claim
-- The next due message, locked; another worker skips it (and takes the next one).
SELECT id, message_key, recipient, subject, body_text, body_html, created_at, attempts
FROM resorption.mail_outbox
WHERE sent_at IS NULL AND next_attempt_at <= now()
ORDER BY next_attempt_at, id
LIMIT 1
FOR UPDATE SKIP LOCKED

-- name: mark_sent
-- Sent: a link's body goes (it lives in the mailbox only).
UPDATE resorption.mail_outbox
SET sent_at = now(), attempts = attempts + 1, last_error = NULL,
    body_text = CASE WHEN secret THEN '(lien à usage unique, effacé après envoi)' ELSE body_text END,
    body_html = CASE WHEN secret THEN NULL ELSE body_html END
WHERE id = %s

-- name: postpone
UPDATE resorption.mail_outbox
SET attempts = attempts + 1, last_error = %s, next_attempt_at = now() + make_interval(secs => %s)
WHERE id = %s

-- name: pending
SELECT id, kind, recipient, subject, created_at, attempts, next_attempt_at, last_error
FROM resorption.mail_outbox WHERE sent_at IS NULL ORDER BY id
