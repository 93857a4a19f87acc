-- The mail outbox: every e-mail leaves from here (resorption.mail).
--
-- A message is written in the same transaction as the event that causes it (an access request,
-- a decision, an activation or reset link, a digest), so that it is never lost and never sent
-- for an event that was rolled back. The worker (`resorption courriels envoyer`) claims due
-- rows with FOR UPDATE SKIP LOCKED, sends them over SMTP and marks them sent in the same
-- transaction; a failure pushes the next attempt back (doubling, up to a day). Its Message-ID
-- is fixed at insertion: a message sent again after a crash between SMTP's answer and the
-- commit carries the same id, which receiving servers and clients use to drop the duplicate.
-- Private like users and tokens: only the owner (the worker, the command line) and the
-- SECURITY DEFINER functions of sql/205_accounts_lifecycle.sql touch it.
CREATE TABLE resorption.mail_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- the left part of the Message-ID (the worker adds @<the sender's domain>)
    message_key     uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    kind            text NOT NULL CHECK (kind ~ '^[a-z_]{2,40}$'),
    user_id         bigint REFERENCES resorption.users (id) ON DELETE SET NULL,
    recipient       text NOT NULL CHECK (recipient ~ '^[^@\s]+@[^@\s]+$' AND length(recipient) <= 254),
    subject         text NOT NULL CHECK (length(subject) BETWEEN 1 AND 300),
    body_text       text NOT NULL,
    body_html       text,
    -- an activation or reset link: its body is blanked once sent (the link lives in the mailbox only)
    secret          boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    last_error      text
);
CREATE INDEX mail_outbox_due_idx ON resorption.mail_outbox (next_attempt_at) WHERE sent_at IS NULL;

-- One message into the outbox (called by the functions of sql/205_accounts_lifecycle.sql, in
-- the transaction of their event). `mail` is {subject, text, html}; `%%IDENTIFIANT%%` in them
-- becomes the recipient's username (a function that alone knows it fills it in).
CREATE FUNCTION resorption.queue_mail(
    p_kind text, p_user_id bigint, p_recipient text, p_mail jsonb, p_secret boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = resorption, pg_temp AS $$
DECLARE
    who text := coalesce((SELECT username FROM users WHERE id = p_user_id), '');
    new_id bigint;
BEGIN
    INSERT INTO mail_outbox (kind, user_id, recipient, subject, body_text, body_html, secret)
    VALUES (p_kind, p_user_id, p_recipient,
            replace(p_mail->>'subject', '%%IDENTIFIANT%%', who),
            replace(p_mail->>'text', '%%IDENTIFIANT%%', who),
            replace(p_mail->>'html', '%%IDENTIFIANT%%', who),
            p_secret)
    RETURNING id INTO new_id;
    RETURN new_id;
END $$;

REVOKE ALL ON FUNCTION resorption.queue_mail FROM PUBLIC;
