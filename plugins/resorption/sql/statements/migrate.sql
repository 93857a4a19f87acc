-- The statements of resorption.migrate.

-- name: has_resorption_schema
-- Whether the database holds a schema named resorption (with or without a migration revision).
SELECT to_regnamespace('resorption') IS NOT NULL
