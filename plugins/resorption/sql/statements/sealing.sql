-- The statements of resorption.sealing.

-- name: key
-- The key that seals the positions given to clients (sql/215_stream_key.sql), the same for
-- every worker.
SELECT resorption.stream_key()
