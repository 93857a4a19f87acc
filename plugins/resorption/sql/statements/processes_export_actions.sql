-- The fixed statements of the actions export (resorption.processes.export_actions). The
-- actions themselves are read through the reader (resorption.query.rows_statement).

-- name: departement_names
-- The name of every département, by code, for the sheet titles (public reference data).
SELECT code, name FROM resorption.departements
