-- The statements of resorption.outbox: reading the events by windows of transaction ids,
-- the readers' cursors, the purge (sql/210_outbox.sql).

-- name: listen
-- Wake up when a transaction that wrote events commits (the triggers NOTIFY this channel,
-- outbox.CHANNEL): the publisher and each worker's commit signal.
LISTEN resorption_outbox

-- name: horizon
-- The oldest transaction still running (every one below it has ended).
SELECT resorption.outbox_horizon()::text

-- name: page
-- A page of a window, for the web app's login role (events of data only).
SELECT id, collection, item_id, operation, fields, departements, open, parent_id, version_id, at
FROM resorption.outbox_page(%s::xid8, %s::xid8, %s, %s)

-- name: page_with_accounts
-- A page of a window, as the owner (the publisher): account events included.
SELECT id, collection, item_id, operation, fields, departements, open, parent_id, version_id, at
FROM resorption.outbox
WHERE xact >= %s::xid8 AND xact < %s::xid8 AND id > %s
ORDER BY id
LIMIT %s

-- name: cursor
-- Where a publisher stopped.
SELECT since::text, until::text, last_id FROM resorption.outbox_cursors WHERE name = %s

-- name: save_cursor
-- Record where a publisher is.
INSERT INTO resorption.outbox_cursors (name, since, until, last_id)
VALUES (%s, %s::xid8, %s::xid8, %s)
ON CONFLICT (name) DO UPDATE
SET since = excluded.since, until = excluded.until, last_id = excluded.last_id, updated_at = now()

-- name: cursors
-- The publishers known to the outbox.
SELECT name FROM resorption.outbox_cursors ORDER BY name

-- name: purge
-- Old events every publisher has passed (all old events when there is none).
WITH oldest AS (SELECT min(since) AS since FROM resorption.outbox_cursors),
gone AS (
    DELETE FROM resorption.outbox o
    WHERE o.at < now() - %s::interval
      AND o.xact < coalesce((SELECT since FROM oldest), pg_snapshot_xmin(pg_current_snapshot()))
    RETURNING 1
)
SELECT count(*) AS deleted FROM gone
