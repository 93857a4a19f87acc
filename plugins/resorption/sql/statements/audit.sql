-- The statements of resorption.audit.

-- name: write
-- One audit row: action, collection, item, groups, method, path, client, detail (the
-- transaction's settings name the user).
SELECT resorption.audit(%s, %s, %s, %s, %s, %s, %s, %s)

-- name: write_reads
-- Audit rows of reads queued by a worker (read_audit.py): a JSON array of rows, each naming
-- its time and its user.
SELECT resorption.audit_reads(%s)
