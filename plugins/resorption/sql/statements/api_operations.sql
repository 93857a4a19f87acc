-- The statements of resorption.api.operations.

-- name: jobs_by_status
-- The jobs counted by status (sql/220_operations.sql): no job, no owner.
SELECT status, jobs FROM resorption.jobs_by_status()

-- name: outbox_lag
-- Per publisher, the events of the outbox it has not confirmed and the oldest one's age in
-- seconds (sql/225_outbox_lag.sql): no event, no item.
SELECT publisher, events, seconds FROM resorption.outbox_lag()
