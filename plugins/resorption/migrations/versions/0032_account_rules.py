"""Accounts: every sign-in counts for inactivity; no mail flood of administrators; no way around
the charter, and a new charter told by e-mail.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-02

`record_password_success()` (sql/055_sign_in_throttle.sql) also notes the account's last
sign-in (at most once an hour): QGIS, GDAL or a script signing in with HTTP Basic and a
password used to leave `users.last_sign_in_at` as it was, and `resorption comptes entretien`
warned, then deactivated, accounts in daily use.

`submit_access_request()` (sql/205_accounts_lifecycle.sql) tells a territory's administrators
of the first 10 requests of their département within an hour only: requests sent from many
addresses at once still land in the queue (and in the reminder), not each in every mailbox.

`account_link()` (same file) also says which charter version the link's account accepted: a
reset link asked for right after an access was granted (instead of the activation link) asks
for the charter, and is no longer a way around it.

`users.charter_notified_version` (sql/050_identity.sql): the charter version an account was
told of by e-mail (`resorption comptes entretien` tells each account of a new one, once).

On a new database the baseline made all this already: this revision leaves it as it is.
"""

from resorption.migrate import run_sql

# ruff: noqa: E501  (the functions as sql/ writes them)

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE resorption.users ADD COLUMN IF NOT EXISTS charter_notified_version text;

CREATE OR REPLACE FUNCTION resorption.record_password_success(
    p_username text, p_address text, p_held text[], p_rules jsonb)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    UPDATE sign_in_counters c SET blocked_until = now()
    WHERE (c.kind, c.username, c.address) IN (('pair', p_username, p_address), ('account', p_username, ''),
                                              ('address', '', p_address))
      AND c.kind = ANY (p_held)
      AND c.blocked_until <= now() + make_interval(secs => (p_rules->>'hold')::integer);
    INSERT INTO sign_in_counters AS c (kind, username, address, last_success_at, forget_at)
    VALUES ('pair', p_username, p_address, now(), now() + make_interval(secs => (p_rules->>'known')::integer))
    ON CONFLICT (kind, username, address) DO UPDATE SET
        last_success_at = now(),
        forget_at = greatest(c.forget_at, now() + make_interval(secs => (p_rules->>'known')::integer));
    UPDATE users SET last_sign_in_at = now(), inactivity_warned_at = NULL
    WHERE username = p_username AND active
      AND (last_sign_in_at IS NULL OR last_sign_in_at < now() - interval '1 hour')
$$;

CREATE OR REPLACE FUNCTION resorption.submit_access_request(
    p_request jsonb, p_client text, p_ack jsonb, p_notice jsonb, p_managers jsonb)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    mail text := lower(trim(p_request->>'email'));
    departement text := upper(trim(p_request->>'departement'));
    new_id bigint;
    manager users;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM departements WHERE code = departement) THEN
        RETURN 'territoire';
    END IF;
    IF (SELECT count(*) FROM access_requests
        WHERE client = p_client AND created_at > now() - interval '1 hour') >= 3
       OR (SELECT count(*) FROM access_requests
           WHERE client = p_client AND created_at > now() - interval '1 day') >= 10
       OR EXISTS (SELECT 1 FROM access_requests WHERE lower(email) = mail AND status = 'pending')
       OR EXISTS (SELECT 1 FROM users WHERE email = mail) THEN
        RETURN 'ok';
    END IF;
    INSERT INTO access_requests (full_name, email, organisation, departement_code, role_wished, reason, client)
    VALUES (trim(p_request->>'full_name'), mail, trim(p_request->>'organisation'), departement,
            (p_request->>'role')::app_role, trim(p_request->>'reason'), p_client)
    RETURNING id INTO new_id;
    PERFORM queue_mail('access_request_received', NULL, mail, p_ack);
    IF (SELECT count(*) FROM access_requests
        WHERE departement_code = departement AND created_at > now() - interval '1 hour') <= 10 THEN
        FOR manager IN SELECT * FROM managers_of(departement, p_managers) LOOP
            PERFORM queue_mail('access_request_notice', manager.id, manager.email, p_notice);
        END LOOP;
    END IF;
    RETURN 'ok';
END $$;

CREATE OR REPLACE FUNCTION resorption.account_link(p_hash bytea) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT jsonb_build_object('purpose', l.purpose, 'username', u.username, 'full_name', u.full_name,
                              'user_id', u.id, 'charter_version', u.charter_version)
    FROM account_links l JOIN users u ON u.id = l.user_id
    WHERE l.token_hash = p_hash AND l.used_at IS NULL AND l.expires_at > now() AND u.active
$$;
"""


def upgrade() -> None:
    run_sql(UPGRADE)


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
