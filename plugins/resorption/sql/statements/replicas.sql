-- The statements of resorption.replicas.

-- name: primary_position
-- The primary's WAL position now: a replica that has replayed it has every commit until now.
SELECT pg_current_wal_lsn()::text

-- name: replica_state
-- Whether this server is a standby (a promoted one is no replica), and how far it replayed.
SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text

-- name: replayed_up_to
-- Whether this replica has replayed a client's last write (a position of `primary_position`).
SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn
