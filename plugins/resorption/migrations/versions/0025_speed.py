"""The read scopes read once per statement, and the cheap check of a remembered token.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02

- `scope_is_nation()`, `scope_codes()` (sql/005_row_security.sql) and the read policies of
  sites, actions and their histories, and the view `actions_in_scope`, rewritten with them:
  the same rule as `in_scope` (nation, or the row's département in the list; unset or empty:
  nowhere), the setting read once per statement (an InitPlan) instead of once per row tested.
- `token_user_version()` (sql/050_identity.sql): the version of a token's user row, NULL when
  the token or its user may no longer sign in; authentication.py checks a remembered token
  with it on every request.
- The index `sites_id_scope_idx` (sql/030_sites.sql): the ids in order with the département
  the read policy tests, so that an `offset=` page skips its rows in an index-only scan.

On a new database the baseline made all this already: every statement here leaves it as it is.
"""

from resorption.migrate import SQL_DIR, run_sql
from resorption.migrations.views import replace_view

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE OR REPLACE FUNCTION resorption.scope_is_nation(setting text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting(setting, true), '') = '*'
$$;

CREATE OR REPLACE FUNCTION resorption.scope_codes(setting text) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT string_to_array(nullif(current_setting(setting, true), ''), ',')
$$;

DROP POLICY IF EXISTS sites_read ON resorption.sites;
CREATE POLICY sites_read ON resorption.sites FOR SELECT
    USING ((SELECT resorption.scope_is_nation('resorption.sites_scope'))
           OR departement_code = ANY ((SELECT resorption.scope_codes('resorption.sites_scope'))::text[]));

DROP POLICY IF EXISTS sites_history_read ON resorption.sites_history;
CREATE POLICY sites_history_read ON resorption.sites_history FOR SELECT
    USING ((SELECT resorption.scope_is_nation('resorption.sites_scope'))
           OR departement_code = ANY ((SELECT resorption.scope_codes('resorption.sites_scope'))::text[]));

DROP POLICY IF EXISTS actions_read ON resorption.actions;
CREATE POLICY actions_read ON resorption.actions FOR SELECT
    USING ((SELECT resorption.scope_is_nation('resorption.actions_scope'))
           OR departement_code = ANY ((SELECT resorption.scope_codes('resorption.actions_scope'))::text[])
           OR EXISTS (SELECT 1 FROM resorption.actions_in_scope s WHERE s.action_id = actions.id));

DROP POLICY IF EXISTS actions_history_read ON resorption.actions_history;
CREATE POLICY actions_history_read ON resorption.actions_history FOR SELECT
    USING ((SELECT resorption.scope_is_nation('resorption.actions_scope'))
           OR departement_code = ANY ((SELECT resorption.scope_codes('resorption.actions_scope'))::text[])
           OR EXISTS (SELECT 1 FROM resorption.actions_in_scope s WHERE s.action_id = actions_history.id));

CREATE OR REPLACE FUNCTION resorption.token_user_version(hash bytea) RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    WITH valid AS (
        SELECT t.id, t.last_used_at, u.xmin::text AS version
        FROM api_tokens t JOIN users u ON u.id = t.user_id
        WHERE t.token_hash = hash AND t.revoked_at IS NULL AND t.expires_at > now() AND u.active
    ), noted AS (
        UPDATE api_tokens t SET last_used_at = now()
        FROM valid
        WHERE t.id = valid.id
          AND (valid.last_used_at IS NULL OR valid.last_used_at <= now() - interval '1 minute')
    )
    SELECT version FROM valid
$$;
REVOKE ALL ON FUNCTION resorption.token_user_version(bytea) FROM PUBLIC;

CREATE INDEX IF NOT EXISTS sites_id_scope_idx ON resorption.sites (id) INCLUDE (departement_code);
"""


def upgrade() -> None:
    # The view as its file defines it now (revision 0039 added a column that a new database,
    # built from the files, already has: a definition here would try to drop it).
    replace_view(SQL_DIR / "040_actions.sql", "resorption.actions_in_scope")
    run_sql(UPGRADE)


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
