-- The fixed statements of the sites spreadsheet (resorption.spreadsheets.export). The sites
-- themselves are read through the features provider (resorption.query).

-- name: territory_departements
-- The départements of a territory, by code: `{}` is the column naming it (code for a
-- département, region_code for a region).
SELECT code FROM resorption.departements WHERE {} = %s ORDER BY code

-- name: epci_names
-- The names of the EPCI whose codes are given (public reference data).
SELECT code, name FROM resorption.epci WHERE code = ANY(%s)

-- name: site_actions
-- The actions linked to the sites whose ids are given; row-level security leaves out the
-- actions (and links) outside the caller's export.
SELECT s.site_id, a.id, a.name
FROM resorption.action_sites s JOIN resorption.actions a ON a.id = s.action_id
WHERE s.site_id = ANY(%s)
ORDER BY a.id
