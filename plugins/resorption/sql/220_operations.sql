-- Operations: what the operators' endpoints (/pret, /metrics) and the purger need
-- (README « Exploitation »).

-- The jobs of OGC API Processes counted by status, for the metrics: the login role sees only
-- a caller's own jobs (row-level security, 100_jobs.sql); these counts name no job and no owner.
CREATE FUNCTION resorption.jobs_by_status()
RETURNS TABLE (status text, jobs bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption_jobs, pg_temp AS $$
    SELECT status, count(*) FROM resorption_jobs.jobs GROUP BY status ORDER BY status
$$;
REVOKE ALL ON FUNCTION resorption.jobs_by_status() FROM PUBLIC;

-- The purger (resorption.purge), run as the owner by `resorption purger`. Each function
-- returns how many rows it removed or changed, for its report and the README's promises.

-- Finished jobs older than p_days, with their output (in the row) and their file (its parts go
-- with their job: sql/105_job_files.sql).
CREATE FUNCTION resorption.purge_jobs(p_days integer) RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = resorption_jobs, pg_temp AS $$
    WITH gone AS (
        DELETE FROM resorption_jobs.jobs
        WHERE status IN ('successful', 'failed', 'dismissed')
          -- jobs keep UTC times without a time zone
          AND coalesce(finished, updated, created) < timezone('UTC', now()) - make_interval(days => p_days)
        RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- Web sessions past their absolute end or their idle timeout, p_days ago.
CREATE FUNCTION resorption.purge_web_sessions(p_days integer) RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = resorption, pg_temp AS $$
    WITH gone AS (
        DELETE FROM resorption.web_sessions
        WHERE least(expires_at, last_seen_at + idle_timeout) < now() - make_interval(days => p_days)
        RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- Sign-in counters whose failures are forgotten (their forget_at passed p_days ago).
CREATE FUNCTION resorption.purge_sign_in_counters(p_days integer) RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = resorption, pg_temp AS $$
    WITH gone AS (
        DELETE FROM resorption.sign_in_counters
        WHERE forget_at < now() - make_interval(days => p_days) AND blocked_until < now()
        RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- Audit rows older than p_days.
CREATE FUNCTION resorption.purge_audit(p_days integer) RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = resorption, pg_temp AS $$
    WITH gone AS (
        DELETE FROM resorption.audit_log WHERE at < now() - make_interval(days => p_days) RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- The owner name of private sites closed more than p_months ago (domain.md: « the owner of
-- a private site closed more than a year ago is anonymised »), erased from the live row AND
-- from every version of its history: the CNIL expects the name gone, not hidden. The live
-- row's update goes through the write guard and the history trigger like any write (a new
-- version, operation update, changed_fields {owner_name}, changed_by = the purger); then the
-- past versions forget the name too. Versions are otherwise left untouched (their periods,
-- hence the exclusion constraint, do not change).
CREATE FUNCTION resorption.anonymise_owners(p_months integer) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = resorption, pg_temp AS $$
DECLARE
    changed bigint;
BEGIN
    PERFORM set_config('resorption.username', 'purge', true);
    WITH due AS (
        UPDATE resorption.sites SET owner_name = NULL
        WHERE owner_type = 'private' AND owner_name IS NOT NULL AND status <> 'open'
          AND closed_at < (now() - make_interval(months => p_months))::date
        RETURNING id)
    SELECT count(*) INTO changed FROM due;
    UPDATE resorption.sites_history h SET owner_name = NULL
    FROM resorption.sites s
    WHERE h.id = s.id AND h.owner_name IS NOT NULL AND s.owner_type = 'private' AND s.status <> 'open'
      AND s.closed_at < (now() - make_interval(months => p_months))::date;
    RETURN changed;
END $$;
REVOKE ALL ON FUNCTION resorption.purge_jobs(integer), resorption.purge_web_sessions(integer),
    resorption.purge_sign_in_counters(integer), resorption.purge_audit(integer),
    resorption.anonymise_owners(integer) FROM PUBLIC;
