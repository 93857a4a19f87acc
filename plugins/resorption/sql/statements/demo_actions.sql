-- The statements of resorption.demo.actions: the demonstration's actions, staged then inserted.

-- name: stage_actions
-- Actions are staged first: their footprint comes from their sites, and updating it after
-- the insert would let the touch trigger move updated_at.
CREATE TEMP TABLE demo_actions (
    id bigint PRIMARY KEY, name text, reference text, started_at date, ended_at date,
    goals text, topics resorption.action_topic[], place_type resorption.action_place_type,
    departement_code text, created_at timestamptz, created_by text,
    updated_at timestamptz, updated_by text) ON COMMIT DROP

-- name: stage_action_sites
CREATE TEMP TABLE demo_action_sites (
    action_id bigint, site_id bigint, PRIMARY KEY (action_id, site_id)) ON COMMIT DROP

-- name: insert_actions
-- The staged actions ({columns}: ACTION_COLUMNS, {staged}: the same as a.<column>) with their
-- footprint: a 300 m buffer around the convex hull of the linked sites, measured in the
-- département's own metric projection.
INSERT INTO resorption.actions ({columns}, footprint)
SELECT {staged}, f.footprint
FROM demo_actions a
LEFT JOIN (
    SELECT l.action_id, ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Transform(
        ST_Buffer(ST_ConvexHull(ST_Collect(
            ST_Transform(s.location, resorption.local_srid(a.departement_code)))), 300),
        4326)), 3)) AS footprint
    FROM demo_action_sites l
    JOIN demo_actions a ON a.id = l.action_id
    JOIN resorption.sites s ON s.id = l.site_id
    GROUP BY l.action_id, a.departement_code
) AS f ON f.action_id = a.id
ORDER BY a.id

-- name: insert_action_sites
INSERT INTO resorption.action_sites (action_id, site_id)
SELECT action_id, site_id FROM demo_action_sites ORDER BY action_id, site_id
