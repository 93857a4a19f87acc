-- The statements of resorption.database.

-- name: prelude
-- The one statement that opens a request's transaction: each setting (an array of names, then
-- one of values) set for the transaction only, in order. `set_config(..., true)` is `SET LOCAL`:
-- `role` is `SET LOCAL ROLE` (same membership check), `transaction_read_only` is
-- `SET TRANSACTION READ ONLY`. Its text never changes, so psycopg prepares it once.
SELECT set_config(setting.name, setting.value, true)
FROM unnest(%s::text[], %s::text[]) AS setting (name, value)

-- name: begin
-- A pipelined transaction's start and end (database._pipelined), sent as statements.
BEGIN

-- name: commit
COMMIT

-- name: ping
-- Readiness: the server answers.
SELECT 1

-- name: schema_revision
-- Readiness: the alembic revision of the schema (readable by the application's login role,
-- sql/220_operations.sql); NULL when the table is missing.
SELECT version_num FROM public.alembic_version LIMIT 1

-- name: wal_position
-- After a commit that changed data: a position at or after its commit record (a replica that
-- replayed it sees the change; read-your-writes, resorption.replicas).
SELECT pg_current_wal_insert_lsn()::text
