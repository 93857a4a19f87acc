-- Processes: the jobs of OGC API Processes, and closing solutions written by `close-site`.

-- pygeoapi's job table (its PostgreSQL manager's columns) plus the job's owner and its output,
-- in a schema of its own: the application's login role uses it directly (granted by
-- resorption.privileges), its transactions never SET ROLE for it. `resorption.processes.jobs`
-- shows a job only to its owner and to national administrators.
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

-- Closing solutions are written with the closing of their site: where the caller may close
-- sites (resorption.sites_close_scope), as for the site itself.
CREATE POLICY write ON resorption.site_closing_solutions FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id
                        AND resorption.in_scope('resorption.sites_close_scope', s.departement_code)));
CREATE POLICY remove ON resorption.site_closing_solutions FOR DELETE
    USING (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id
                   AND resorption.in_scope('resorption.sites_close_scope', s.departement_code)));
