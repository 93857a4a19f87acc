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

-- name: action_departements
-- The départements of an action (its main one among them), that the caller reads.
SELECT departement_code FROM resorption.action_departements WHERE action_id = %s
ORDER BY departement_code

-- name: record_indicators
-- One indicator snapshot of an action for a date: a new one, or the one of that date replaced
-- whole (a figure not given is unknown). True when it is new.
INSERT INTO resorption.action_indicators (
    action_id, measured_at, people, households, women, minors, people_health_care,
    people_work_contract, people_shelter, households_shelter, people_housing, households_housing,
    minors_identified, minors_mediation, minors_school_start, minors_nursery, minors_primary,
    minors_middle, minors_high)
VALUES (
    %(action_id)s, %(measured_at)s, %(people)s, %(households)s, %(women)s, %(minors)s,
    %(people_health_care)s, %(people_work_contract)s, %(people_shelter)s, %(households_shelter)s,
    %(people_housing)s, %(households_housing)s, %(minors_identified)s, %(minors_mediation)s,
    %(minors_school_start)s, %(minors_nursery)s, %(minors_primary)s, %(minors_middle)s,
    %(minors_high)s)
ON CONFLICT (action_id, measured_at) DO UPDATE SET
    people = EXCLUDED.people, households = EXCLUDED.households, women = EXCLUDED.women,
    minors = EXCLUDED.minors, people_health_care = EXCLUDED.people_health_care,
    people_work_contract = EXCLUDED.people_work_contract, people_shelter = EXCLUDED.people_shelter,
    households_shelter = EXCLUDED.households_shelter, people_housing = EXCLUDED.people_housing,
    households_housing = EXCLUDED.households_housing, minors_identified = EXCLUDED.minors_identified,
    minors_mediation = EXCLUDED.minors_mediation, minors_school_start = EXCLUDED.minors_school_start,
    minors_nursery = EXCLUDED.minors_nursery, minors_primary = EXCLUDED.minors_primary,
    minors_middle = EXCLUDED.minors_middle, minors_high = EXCLUDED.minors_high
RETURNING (xmax = 0) AS inserted

-- name: delete_other_finances
-- The finance lines of an action's year whose funding type the new lines do not name.
DELETE FROM resorption.action_finances
WHERE action_id = %s AND year = %s AND NOT (funding_type::text = ANY (%s::text[]))

-- name: record_finance_line
-- One finance line of an action: a year, a funding type, its budget, spent and details. An
-- unchanged line is left as it is (no version in its history).
INSERT INTO resorption.action_finances (action_id, year, funding_type, budget, spent, details)
VALUES (%(action_id)s, %(year)s, %(funding_type)s::resorption.funding_type, %(budget)s, %(spent)s,
        %(details)s)
ON CONFLICT (action_id, year, funding_type) DO UPDATE SET
    budget = EXCLUDED.budget, spent = EXCLUDED.spent, details = EXCLUDED.details
WHERE (action_finances.budget, action_finances.spent, action_finances.details)
      IS DISTINCT FROM (EXCLUDED.budget, EXCLUDED.spent, EXCLUDED.details)
