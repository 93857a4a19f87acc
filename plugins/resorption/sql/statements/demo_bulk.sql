-- The statements of resorption.demo.bulk: rows streamed with COPY, ids reserved ahead.

-- name: copy_rows
-- Stream rows into {table} ({columns}).
COPY {table} ({columns}) FROM STDIN

-- name: reserve_ids
-- Take n ids from the identity of a table (its schema-qualified name, then n).
SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)
