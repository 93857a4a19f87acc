"""One write guard for sites and actions: `write_guard` replaces two near copies.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

`sites_write_guard()` and `actions_write_guard()` differed only by the close-scope check of
sites; `write_guard()` (sql/005_row_security.sql) does both, and the triggers
`sites_write_guard` and `actions_write_guard` (same names, same firing order) call it. On a new
database the baseline made all this already: every statement here leaves it as it is.
"""

from resorption.migrate import run_sql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE OR REPLACE FUNCTION resorption.write_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who text := nullif(current_setting('resorption.username', true), '');
BEGIN
    IF NOT row_security_active(TG_RELID) THEN
        RETURN NEW;
    END IF;
    -- Nested: the test of NEW.status is prepared only for a row that has one.
    IF TG_TABLE_NAME = 'sites' THEN
        IF NEW.status <> 'open' AND (TG_OP = 'INSERT' OR OLD.status = 'open')
           -- in_scope is NULL for an empty scope: IS NOT TRUE fails closed.
           AND resorption.in_scope('resorption.sites_close_scope', NEW.departement_code) IS NOT TRUE THEN
            RAISE insufficient_privilege USING
                MESSAGE = format('Vous n''avez pas le droit de fermer un site dans le département %s.',
                                 NEW.departement_code),
                COLUMN = 'status';
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.created_by := who;
        NEW.created_at := now();
    ELSE
        NEW.created_by := OLD.created_by;
        NEW.created_at := OLD.created_at;
    END IF;
    NEW.updated_by := who;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER sites_write_guard BEFORE INSERT OR UPDATE ON resorption.sites
    FOR EACH ROW EXECUTE FUNCTION resorption.write_guard();
CREATE OR REPLACE TRIGGER actions_write_guard BEFORE INSERT OR UPDATE ON resorption.actions
    FOR EACH ROW EXECUTE FUNCTION resorption.write_guard();

DROP FUNCTION IF EXISTS resorption.sites_write_guard();
DROP FUNCTION IF EXISTS resorption.actions_write_guard();
"""


def upgrade() -> None:
    run_sql(UPGRADE)


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
