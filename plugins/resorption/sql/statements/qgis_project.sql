-- The statements of resorption.qgis_project.

-- name: area_extent
-- The extent of the départements %(codes)s in the projection %(srid)s.
SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
FROM (SELECT ST_Extent(ST_Transform(geom, %(srid)s)) AS e
      FROM resorption.departements WHERE code = ANY(%(codes)s)) area
