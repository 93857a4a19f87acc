-- The statements of resorption.geoexport: the rows themselves are composed by the reader
-- (resorption.query.rows_statement).

-- name: any_without_geometry
-- Whether a row of the statement ({}: its first column, the geometry as WKB) has no geometry.
SELECT EXISTS (SELECT 1 FROM ({}) AS r (wkb) WHERE r.wkb IS NULL)
