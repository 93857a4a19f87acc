-- The statements of resorption.database.

-- name: prelude
-- The one statement that opens a request's transaction: each setting (an array of names, then
-- one of values) set for the transaction only, in order. `set_config(..., true)` is `SET LOCAL`:
-- `role` is `SET LOCAL ROLE` (same membership check), `transaction_read_only` is
-- `SET TRANSACTION READ ONLY`. Its text never changes, so psycopg prepares it once.
SELECT set_config(setting.name, setting.value, true)
FROM unnest(%s::text[], %s::text[]) AS setting (name, value)

-- name: checked_prelude
-- The prelude and a pending check (database.Precheck, `{check}`: a statement of one column, at
-- most one row) in one statement: one statement fewer for each request with a remembered API
-- token (~0.07 ms of Python for one item; PostgreSQL's work is the same: bench/ANALYSIS.md).
-- The check runs first, as the login role, in a read-write transaction (it may note a token's
-- use): the settings are set by the aggregate, which reads its rows from the join, so after
-- the check has answered. Its first column is the check's answer (NULL when it has no row);
-- there is always one row, as there is always a setting (the timeouts).
SELECT checked.answer, count(set_config(setting.name, setting.value, true))
FROM (SELECT ({check}) AS answer OFFSET 0) AS checked
CROSS JOIN unnest(%s::text[], %s::text[]) AS setting (name, value)
GROUP BY checked.answer

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
