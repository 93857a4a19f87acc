-- The statements of resorption.job_files: the files of jobs, in parts. Row-level
-- security shows a file only with its job (sql/105_job_files.sql, Caller.keeping_jobs).

-- name: insert_part
INSERT INTO resorption_jobs.job_files (job_id, part, data) VALUES (%s, %s, %s)

-- name: part
SELECT data FROM resorption_jobs.job_files WHERE job_id = %s AND part = %s

-- name: parts
-- How many parts a job's file has (none: the job made no file, or the caller may not see it).
SELECT count(*) FROM resorption_jobs.job_files WHERE job_id = %s
