-- The fixed statements of the actions export (resorption.processes.export_actions). The
-- actions themselves are read through the reader (resorption.query.rows_statement).

-- name: departement_names
-- The name of every département, by code, for the sheet titles (public reference data).
SELECT code, name FROM resorption.departements

-- name: departements_of
-- The départements of the actions a statement reads ({statement}), whose columns are named
-- ({names}) so that the last one, their codes ({codes}), can be unnested.
SELECT DISTINCT unnest(r.{codes}) FROM ({statement}) AS r ({names})
