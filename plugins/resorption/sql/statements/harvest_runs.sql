-- The statements of resorption.harvest.runs: harvest runs and their row-level reports.

-- name: last_success
-- When the last successful real (not simulated) run of a source started.
SELECT max(started_at) FROM resorption.harvest_runs
WHERE source = %s AND status = 'succeeded' AND NOT simulation

-- name: try_lock_source
-- The session's lock on a source (by its key): false when another run holds it.
SELECT pg_try_advisory_lock(hashtext(%s))

-- name: unlock_source
SELECT pg_advisory_unlock(hashtext(%s))

-- name: fail_interrupted_runs
-- Runs of a source still "running" while we hold its lock were killed before their end.
UPDATE resorption.harvest_runs SET status = 'failed', finished_at = greatest(now(), started_at),
message = 'Moissonnage interrompu avant sa fin (processus arrêté).'
WHERE source = %s AND status = 'running'

-- name: start_run
INSERT INTO resorption.harvest_runs (source, simulation, since) VALUES (%s, %s, %s) RETURNING id

-- name: record_row
-- One row of a run's report.
INSERT INTO resorption.harvest_run_rows (run_id, remote_id, site_id, outcome, reason)
VALUES (%s, %s, %s, %s, %s)

-- name: finish_run
-- A run's end: its status, message and counts (one per outcome, runs.COUNTS).
UPDATE resorption.harvest_runs SET finished_at = now(), status = %(status)s,
message = %(message)s, pages = %(pages)s, fetched = %(fetched)s, created = %(created)s,
updated = %(updated)s, unchanged = %(unchanged)s, conflicts = %(conflicts)s,
rejected = %(rejected)s, outside = %(outside)s, missing = %(missing)s,
deleted_locally = %(deleted_locally)s WHERE id = %(id)s

-- name: recent_runs
-- The latest runs (of one source, or of all when NULL), newest first.
SELECT * FROM resorption.harvest_runs WHERE %(source)s::text IS NULL OR source = %(source)s
ORDER BY started_at DESC, id DESC LIMIT %(limit)s

-- name: run_rows
-- The rows of a run's report (the unchanged ones only when the second parameter is true).
SELECT remote_id, site_id, outcome::text, reason FROM resorption.harvest_run_rows
WHERE run_id = %s AND (%s OR outcome <> 'unchanged') ORDER BY outcome, remote_id

-- name: last_starts
-- When each source's last real run started, whatever its result.
SELECT source, max(started_at) FROM resorption.harvest_runs WHERE NOT simulation GROUP BY source
