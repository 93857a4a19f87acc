-- The fixed statements of editing.py (validating a write against the database's columns).

-- name: table_columns
-- The columns of a table from pg_catalog (readable by every role): name, type, NOT NULL, default.
SELECT a.attname, format_type(a.atttypid, NULL), a.attnotnull, a.atthasdef
FROM pg_attribute a
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
