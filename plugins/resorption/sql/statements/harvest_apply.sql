-- The bookkeeping of a harvest (resorption.harvest.apply): which remote feature made which
-- site, and what the source said of it last time. The sites themselves are written by
-- resorption.writing.

-- name: act_as
-- The writer the history and the audit log name for this transaction (moissonnage:<source>).
SELECT set_config('resorption.username', %s, true)

-- name: provenance_of
-- The site a remote feature made, what the source said last time and the local version then,
-- locked for the rest of the transaction.
SELECT p.site_id, p.remote_hash, p.local_version, s.updated_at
FROM resorption.site_provenance p LEFT JOIN resorption.sites s ON s.id = p.site_id
WHERE p.source = %s AND p.remote_id = %s
FOR UPDATE OF p

-- name: insert_provenance
-- A new remote feature and the site it made.
INSERT INTO resorption.site_provenance (source, remote_id, site_id, remote_hash, local_version)
VALUES (%s, %s, %s, %s, %s)

-- name: update_provenance
-- What the source now says of a site, and the local version its write made.
UPDATE resorption.site_provenance
SET remote_hash = %s, local_version = %s, harvested_at = now(), missing_since = NULL
WHERE source = %s AND remote_id = %s

-- name: seen
-- The source still has the feature (unchanged, or in conflict).
UPDATE resorption.site_provenance SET harvested_at = now(), missing_since = NULL
WHERE source = %s AND remote_id = %s

-- name: site_updated_at
-- When a site was last written (its local version, compared at the next harvest).
SELECT updated_at FROM resorption.sites WHERE id = %s

-- name: mark_missing
-- The sites whose feature a complete harvest no longer found (reported once).
UPDATE resorption.site_provenance SET missing_since = now()
WHERE source = %s AND missing_since IS NULL AND site_id IS NOT NULL AND NOT (remote_id = ANY (%s))
RETURNING remote_id, site_id
