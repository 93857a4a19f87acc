-- The statements of resorption.backup.

-- name: has_version_table
SELECT to_regclass('public.alembic_version') IS NOT NULL

-- name: revision
SELECT version_num FROM public.alembic_version LIMIT 1

-- name: has_our_schema
-- A database with our schema is not empty: a restore never goes over it.
SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'resorption')

-- name: counts
-- The smoke checks of a restored database, as its owner.
SELECT (SELECT count(*) FROM resorption.sites),
       (SELECT count(*) FROM resorption.actions),
       (SELECT count(*) FROM resorption.users),
       (SELECT count(*) FROM resorption.sites_history)
