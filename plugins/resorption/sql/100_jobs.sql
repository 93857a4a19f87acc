-- Processes: the jobs of OGC API Processes.
--
-- pygeoapi's job table (its PostgreSQL manager's columns) plus the job's owner and its output,
-- in a schema of its own: the application's login role uses it directly (granted by
-- resorption.privileges), its transactions never SET ROLE for it.
CREATE SCHEMA resorption_jobs;

CREATE TABLE resorption_jobs.jobs (
    identifier text PRIMARY KEY,
    type       text NOT NULL DEFAULT 'process',
    process_id text NOT NULL,
    owner      text NOT NULL,
    created    timestamp,
    started    timestamp,
    finished   timestamp,
    updated    timestamp,
    status     text NOT NULL,
    location   text,
    mimetype   text,
    message    text,
    progress   integer NOT NULL,
    output     bytea
);
CREATE INDEX jobs_owner_idx ON resorption_jobs.jobs (owner, created DESC);

-- A job shows only to its owner and to national administrators, and row-level security says
-- so, not only the Python code (resorption.processes.jobs): the job manager sets, per
-- transaction, whose jobs it may read (resorption.jobs_owner, a username) and whether all of
-- them (resorption.jobs_all = 'on', for national administrators). Unset: no job at all (fail
-- closed).
ALTER TABLE resorption_jobs.jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_or_admin ON resorption_jobs.jobs
    USING (owner = current_setting('resorption.jobs_owner', true)
           OR coalesce(current_setting('resorption.jobs_all', true), '') = 'on')
    WITH CHECK (owner = current_setting('resorption.jobs_owner', true)
                OR coalesce(current_setting('resorption.jobs_all', true), '') = 'on');
