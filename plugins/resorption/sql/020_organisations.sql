-- Organisations: State services, local authorities, associations and others.
CREATE TYPE resorption.organisation_kind AS ENUM (
    'state_service', 'local_authority', 'association', 'other');

CREATE TABLE resorption.organisations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL CHECK (length(trim(name)) > 0),
    abbreviation     text,
    kind             resorption.organisation_kind NOT NULL,
    departement_code text REFERENCES resorption.departements (code),
    -- NULLS NOT DISTINCT: two national organisations (no département) may not share a name
    UNIQUE NULLS NOT DISTINCT (name, departement_code)
);
