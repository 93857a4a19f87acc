-- The files the jobs made (exports), outside the job's row, in parts of at most 1 MiB
-- (resorption.job_files): a worker writes them part by part as it reads its
-- temporary file, a download sends them part by part, so neither holds a whole file in
-- memory; any app process sharing the database serves them (no local file store to share).
-- A file goes with its job: deleting the job (DELETE /jobs/{id}, the purger) deletes its parts.
-- Why parts in a table rather than large objects: row-level security applies to a table (a
-- large object has only its own GRANTs, or none with lo_compat_privileges), the foreign key
-- deletes parts with their job (an unlinked large object outlives its row until vacuumlo),
-- and pg_dump saves them with the rest of the schema.
CREATE TABLE resorption_jobs.job_files (
    job_id text NOT NULL REFERENCES resorption_jobs.jobs (identifier) ON DELETE CASCADE,
    part   integer NOT NULL CHECK (part >= 0),
    data   bytea NOT NULL,
    PRIMARY KEY (job_id, part)
);

-- A file shows to whom its job shows: the subquery reads the jobs under their own policy
-- (owner_or_admin, 100_jobs.sql), so another user's file is as absent as its job.
ALTER TABLE resorption_jobs.job_files ENABLE ROW LEVEL SECURITY;
CREATE POLICY of_visible_job ON resorption_jobs.job_files
    USING (EXISTS (SELECT 1 FROM resorption_jobs.jobs j WHERE j.identifier = job_id))
    WITH CHECK (EXISTS (SELECT 1 FROM resorption_jobs.jobs j WHERE j.identifier = job_id));
