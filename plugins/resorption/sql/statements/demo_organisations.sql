-- The statements of resorption.demo.organisations: the demonstration organisations.

-- name: upsert_organisation
-- Insert or update one organisation by name and département; its id.
WITH existing AS (
    SELECT id FROM resorption.organisations
    WHERE name = %(name)s AND departement_code IS NOT DISTINCT FROM %(departement)s),
updated AS (
    UPDATE resorption.organisations
    SET abbreviation = %(abbreviation)s, kind = %(kind)s
    WHERE id IN (SELECT id FROM existing) RETURNING id),
inserted AS (
    INSERT INTO resorption.organisations (name, abbreviation, kind, departement_code)
    SELECT %(name)s, %(abbreviation)s, %(kind)s, %(departement)s
    WHERE NOT EXISTS (SELECT FROM existing) RETURNING id)
SELECT id FROM updated UNION ALL SELECT id FROM inserted

-- name: delete_undrawn_organisations
-- The demonstration organisations (name LIKE the suffix) not among the ids drawn this run.
DELETE FROM resorption.organisations WHERE name LIKE %s AND NOT id = ANY(%s)
