-- The statements of resorption.purge: the functions of sql/220_operations.sql.

-- name: web_sessions
SELECT resorption.purge_web_sessions(%s)

-- name: sign_in_counters
SELECT resorption.purge_sign_in_counters(%s)

-- name: jobs
SELECT resorption.purge_jobs(%s)

-- name: audit
SELECT resorption.purge_audit(%s)

-- name: owners
SELECT resorption.anonymise_owners(%s)

-- name: site_counts
SELECT resorption.fold_site_counts()

-- name: collection_changes
SELECT resorption.fold_collection_changes()
