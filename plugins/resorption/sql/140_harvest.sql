-- Federation: the provenance of harvested sites, and the record of every harvest.
--
-- A side table rather than columns on `sites`: the history mirrors every column of the
-- sites (080_history.sql), and provenance is bookkeeping of the harvester, not a fact
-- about the site worth a version. Only the owner (the `resorption moissonner` command,
-- the `harvest` process) reads and writes these tables: privileges.py keeps them private.

-- One row per remote feature ever applied: how the site was last harvested.
CREATE TABLE resorption.site_provenance (
    source        text NOT NULL,
    remote_id     text NOT NULL,
    -- NULL once the local site is deleted: a site removed here is not brought back.
    site_id       bigint UNIQUE REFERENCES resorption.sites (id) ON DELETE SET NULL,
    harvested_at  timestamptz NOT NULL DEFAULT now(),
    -- sha256 of what the source said of the site when it was last applied
    remote_hash   text NOT NULL,
    -- the site's updated_at just after that write: a later value means a local edit
    local_version timestamptz,
    -- when a complete harvest first missed the feature (deleted or hidden at the source)
    missing_since timestamptz,
    PRIMARY KEY (source, remote_id)
);

CREATE TYPE resorption.harvest_status AS ENUM ('running', 'succeeded', 'failed');
CREATE TYPE resorption.harvest_outcome AS ENUM (
    'created', 'updated', 'unchanged', 'conflict', 'rejected', 'outside', 'missing', 'deleted_locally');

CREATE TABLE resorption.harvest_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text NOT NULL,
    simulation    boolean NOT NULL DEFAULT false,
    -- the lower bound of an incremental harvest (NULL: everything was requested)
    since         timestamptz,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    status        resorption.harvest_status NOT NULL DEFAULT 'running',
    pages         integer NOT NULL DEFAULT 0,
    fetched       integer NOT NULL DEFAULT 0,
    created       integer NOT NULL DEFAULT 0,
    updated       integer NOT NULL DEFAULT 0,
    unchanged     integer NOT NULL DEFAULT 0,
    conflicts     integer NOT NULL DEFAULT 0,
    rejected      integer NOT NULL DEFAULT 0,
    outside       integer NOT NULL DEFAULT 0,
    missing       integer NOT NULL DEFAULT 0,
    deleted_locally integer NOT NULL DEFAULT 0,
    message       text,
    CONSTRAINT finished_after_started CHECK (finished_at >= started_at)
);
CREATE INDEX harvest_runs_source_idx ON resorption.harvest_runs (source, started_at DESC);

-- The row-level report of a run: what happened to each remote feature worth telling.
CREATE TABLE resorption.harvest_run_rows (
    run_id     bigint NOT NULL REFERENCES resorption.harvest_runs (id) ON DELETE CASCADE,
    remote_id  text,
    site_id    bigint,
    outcome    resorption.harvest_outcome NOT NULL,
    reason     text
);
CREATE INDEX harvest_run_rows_run_idx ON resorption.harvest_run_rows (run_id);
