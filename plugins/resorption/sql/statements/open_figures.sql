-- The statements of resorption.open_figures: the snapshot of sql/070_opendata.sql.

-- name: refresh
-- Compute the open-data figures again (sql/070_opendata.sql), as of today in Paris.
SELECT resorption.refresh_opendata()

-- name: stale
-- Whether the snapshot is missing or older than today in Paris (a cheap look at one column).
SELECT coalesce(max(as_of) < (now() AT TIME ZONE 'Europe/Paris')::date, true)
FROM resorption.opendata_snapshot

-- name: counts
-- The day of the snapshot and what it publishes, for the command line: rows per level, and the
-- rows with at least one hidden figure.
SELECT level, max(as_of), count(*), count(*) FILTER (WHERE secret_statistique)
FROM resorption.opendata_snapshot
GROUP BY level
ORDER BY level
