-- The fixed statements of the write path (resorption.writing). The statements built from
-- the catalog (insert, update, head of an item) are composed in editing.py.

-- name: commune_departement
-- The département of a commune (no row when the code is unknown).
SELECT departement_code FROM resorption.communes WHERE code = %s

-- name: departement_exists
-- A row when the code is a département.
SELECT 1 FROM resorption.departements WHERE code = %s

-- name: sites_with_reference
-- The sites (that the caller reads) with this external reference; two are enough to say "several".
SELECT id FROM resorption.sites WHERE external_ref = %s LIMIT 2

-- name: delete_closing_solutions
-- A closing replaces the closing solutions of the site.
DELETE FROM resorption.site_closing_solutions WHERE site_id = %s

-- name: insert_closing_solution
-- One closing solution of a site: people and households it concerns.
INSERT INTO resorption.site_closing_solutions (site_id, solution, people, households)
VALUES (%s, %s::resorption.closing_solution, %s, %s)

-- name: follow_created_site
-- Who creates a site follows it ("mes sites", sql/160_actors.sql); nothing for a caller
-- without an account (the command line's owner).
INSERT INTO resorption.site_followers (user_id, site_id)
SELECT resorption.current_user_id(), %s WHERE resorption.current_user_id() IS NOT NULL
ON CONFLICT DO NOTHING

-- name: site_departement
-- The département of a site the caller reads (no row otherwise): where a message on it lies.
SELECT departement_code FROM resorption.sites WHERE id = %s

-- name: action_departement
-- The département of an action the caller reads (no row otherwise): where a message on it lies.
SELECT departement_code FROM resorption.actions WHERE id = %s
