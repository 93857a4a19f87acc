-- The statements of resorption.api.events (Server-Sent Events).

-- name: readable_ids
-- Which of these items the caller's reader returns now (its role, row-level security): the
-- table and its id column are filled in from the catalog.
SELECT {1} FROM {0} WHERE {1} = ANY(%s)
