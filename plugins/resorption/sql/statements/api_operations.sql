-- The statements of resorption.api.operations.

-- name: jobs_by_status
-- The jobs counted by status (sql/220_operations.sql): no job, no owner.
SELECT status, jobs FROM resorption.jobs_by_status()
