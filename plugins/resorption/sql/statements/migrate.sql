-- The statements of resorption.migrate.

-- name: has_resorption_schema
-- Whether the database holds a schema named resorption (with or without a migration revision).
SELECT to_regnamespace('resorption') IS NOT NULL

-- name: transaction_role_kinds
-- The two kinds of transaction role that the read policies name (sql/005_row_security.sql),
-- before any revision creates a policy TO them. Roles belong to the cluster: another database
-- may have created them, even meanwhile.
DO $$
DECLARE
    kind text;
BEGIN
    FOREACH kind IN ARRAY ARRAY['resorption_nationwide', 'resorption_scoped'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = kind) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', kind);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$$
