-- The statements of resorption.demo.placement: random points inside communes, drawn by PostGIS.

-- name: stage_point_requests
CREATE TEMP TABLE demo_points_request (
    code text PRIMARY KEY, n integer NOT NULL, seed integer NOT NULL) ON COMMIT DROP

-- name: copy_point_requests
COPY demo_points_request (code, n, seed) FROM STDIN

-- name: draw_points
-- ST_GeneratePoints shares the points among the parts of a MultiPolygon in proportion to
-- their areas, rounding each share down: a commune of k parts may get up to k - 1 points
-- fewer than asked. Asking for that many more always gives enough; the extra ones are
-- dropped at random.
SELECT r.code, ST_X(p.geom), ST_Y(p.geom)
FROM demo_points_request r
JOIN resorption.communes c USING (code),
LATERAL ST_Dump(ST_GeneratePoints(c.geom, r.n + ST_NumGeometries(c.geom) - 1, r.seed)) AS p
ORDER BY r.code, p.path[1]
