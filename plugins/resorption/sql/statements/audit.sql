-- The statements of resorption.audit.

-- name: write
-- One audit row: action, collection, item, groups, method, path, client, detail (the
-- transaction's settings name the user).
SELECT resorption.audit(%s, %s, %s, %s, %s, %s, %s, %s)
