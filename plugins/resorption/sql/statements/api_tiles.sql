-- The fixed statements of the vector tiles (resorption.api.tiles). The tile itself is composed
-- from the catalog by the reader (resorption.query.tile_statement).

-- name: version
-- The version of a collection's data (one parameter: the collection id). Row-level security
-- hides the versions of collections the caller may not read (they count as 0; such a caller
-- gets no tile anyway). Each row stands for `changes` writes (folded by the purger).
SELECT coalesce(sum(changes), 0)::bigint FROM resorption.collection_changes WHERE collection = %s
