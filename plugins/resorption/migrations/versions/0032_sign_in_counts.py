"""A sign-in with a password counts for the inactivity of an account, whatever the client.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-02

`record_password_success()` (sql/055_sign_in_throttle.sql) also notes the account's last
sign-in (at most once an hour): QGIS, GDAL or a script signing in with HTTP Basic and a
password used to leave `users.last_sign_in_at` as it was, and `resorption comptes entretien`
warned, then deactivated, accounts in daily use. On a new database the baseline made it so
already: this revision then leaves it as it is.
"""

from resorption.migrate import run_sql

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

UPGRADE = r"""
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
"""


def upgrade() -> None:
    run_sql(UPGRADE)


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
