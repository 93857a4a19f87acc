-- The statements of resorption.processes.jobs: the jobs of our processes. Row-level security
-- shows each transaction only the jobs it may see (sql/100_jobs.sql, Caller.keeping_jobs).

-- name: jobs
-- What pygeoapi's job documents show (jobs.SHOWN), newest first.
SELECT identifier, type, process_id, created, started, finished, updated, status, location,
       mimetype, message, progress
FROM resorption_jobs.jobs ORDER BY created DESC

-- name: jobs_of_status
SELECT identifier, type, process_id, created, started, finished, updated, status, location,
       mimetype, message, progress
FROM resorption_jobs.jobs WHERE status = %s ORDER BY created DESC

-- name: job
SELECT * FROM resorption_jobs.jobs WHERE identifier = %s

-- name: delete_job
DELETE FROM resorption_jobs.jobs WHERE identifier = %s

-- name: insert_job
-- A job with the columns pygeoapi gives ({columns}) and as many placeholders ({values}).
INSERT INTO resorption_jobs.jobs ({columns}) VALUES ({values})

-- name: update_job
-- Some columns of a job ({assignments}: column = %s, …), then its identifier.
UPDATE resorption_jobs.jobs SET {assignments} WHERE identifier = %s

-- name: job_progress
-- How far a running job got, said to its owner (never past 94 %: the end is the manager's).
UPDATE resorption_jobs.jobs SET progress = %s, message = %s, updated = now() AT TIME ZONE 'UTC'
WHERE identifier = %s AND status IN ('accepted', 'running')
