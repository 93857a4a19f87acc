-- The statements of resorption.embedded: creating the database and its extensions.

-- name: lock_database_creation
-- Concurrent callers (pytest workers) queue on the database's key; the lock ends with the session.
SELECT pg_advisory_lock(hashtext(%s))

-- name: database_exists
SELECT 1 FROM pg_database WHERE datname = %s

-- name: create_database
CREATE DATABASE {}

-- name: lock_extensions
SELECT pg_advisory_lock(hashtext('resorption:extensions'))

-- name: create_extension
CREATE EXTENSION IF NOT EXISTS {}
