-- The statements of resorption.demo.previous: the previous demonstration data, removed.

-- name: count_other_rows
-- How many sites, actions and versions are not the demonstration's (references NOT LIKE %(p)s).
SELECT (SELECT count(*) FROM resorption.sites WHERE external_ref NOT LIKE %(p)s
        OR external_ref IS NULL)
 + (SELECT count(*) FROM resorption.actions WHERE reference NOT LIKE %(p)s
        OR reference IS NULL)
 + (SELECT count(*) FROM resorption.sites_history WHERE external_ref NOT LIKE %(p)s
        OR external_ref IS NULL)
 + (SELECT count(*) FROM resorption.actions_history WHERE reference NOT LIKE %(p)s
        OR reference IS NULL)

-- name: truncate_demo_tables
-- Every table the demonstration writes, emptied, their identities restarted (children first).
TRUNCATE resorption.action_indicators_history, resorption.action_finances_history,
    resorption.actions_history, resorption.sites_history, resorption.action_indicators,
    resorption.action_finances, resorption.action_sites, resorption.action_organisations,
    resorption.action_departements, resorption.actions, resorption.site_reinstallation_origins,
    resorption.site_closing_solutions, resorption.sites
    RESTART IDENTITY

-- name: delete_demo_actions
DELETE FROM resorption.actions WHERE reference LIKE %s

-- name: delete_demo_sites
DELETE FROM resorption.sites WHERE external_ref LIKE %s

-- name: delete_demo_action_versions
DELETE FROM resorption.actions_history WHERE reference LIKE %s

-- name: delete_demo_result_versions
-- The versions of the results of actions that no longer exist (the demonstration's, deleted above).
DELETE FROM resorption.action_indicators_history h
WHERE NOT EXISTS (SELECT 1 FROM resorption.actions a WHERE a.id = h.action_id);
DELETE FROM resorption.action_finances_history h
WHERE NOT EXISTS (SELECT 1 FROM resorption.actions a WHERE a.id = h.action_id)

-- name: delete_demo_site_versions
DELETE FROM resorption.sites_history WHERE external_ref LIKE %s

-- name: restart_identity_if_empty
-- The identity of the table {} (named by the parameter too) numbers from 1 again when it is empty.
SELECT setval(pg_get_serial_sequence(%s, 'id'), 1, false) WHERE NOT EXISTS (SELECT FROM {})
