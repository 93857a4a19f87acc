-- The statements of resorption.web.action_results: the action a results form is for, read as
-- the caller (row-level security: no row for an action it may not read).

-- name: action_of_form
-- The action's name, its main département, and the date of its latest indicator snapshot.
SELECT a.name, a.departement_code,
       (SELECT max(i.measured_at) FROM resorption.action_indicators i WHERE i.action_id = a.id)
FROM resorption.actions a WHERE a.id = %s
