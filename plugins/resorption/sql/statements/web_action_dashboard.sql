-- The statements of resorption.web.action_dashboard: the actions of a territory, read as the
-- caller (row-level security: only the actions, indicators and finances it may read).
-- %(level)s is nation, region or departement, %(code)s the region's or département's code
-- (NULL for the nation); an action belongs to a territory when one of its départements lies
-- in it. %(day)s is the date the figures are for.

-- name: actions_by_topic
-- Actions by topic: all of them, those under way on the day, and the people their latest
-- snapshot (on or before the day) says they follow. An action counts once per topic; the
-- topics in the order of their type.
WITH territory_actions AS (
    SELECT a.id, a.topics, a.started_at, a.ended_at
    FROM resorption.actions a
    WHERE EXISTS (
        SELECT 1 FROM resorption.action_departements ad
        JOIN resorption.departements d ON d.code = ad.departement_code
        WHERE ad.action_id = a.id
          AND (%(level)s = 'nation'
               OR (%(level)s = 'region' AND d.region_code = %(code)s)
               OR (%(level)s = 'departement' AND d.code = %(code)s)))
), latest AS (
    SELECT DISTINCT ON (i.action_id) i.action_id, i.people
    FROM resorption.action_indicators i
    JOIN territory_actions t ON t.id = i.action_id
    WHERE i.measured_at <= %(day)s
    ORDER BY i.action_id, i.measured_at DESC
)
SELECT u.topic::text,
       count(*) AS actions,
       count(*) FILTER (WHERE t.started_at <= %(day)s AND (t.ended_at IS NULL OR t.ended_at >= %(day)s))
           AS under_way,
       coalesce(sum(l.people), 0) AS people
FROM territory_actions t
CROSS JOIN LATERAL unnest(t.topics) AS u (topic)
LEFT JOIN latest l ON l.action_id = t.id
GROUP BY u.topic
ORDER BY u.topic

-- name: people_reached
-- The indicators of the territory's actions: the sum, over its actions, of each one's latest
-- snapshot on or before the day; how many actions it sums and how many have none.
WITH territory_actions AS (
    SELECT a.id
    FROM resorption.actions a
    WHERE EXISTS (
        SELECT 1 FROM resorption.action_departements ad
        JOIN resorption.departements d ON d.code = ad.departement_code
        WHERE ad.action_id = a.id
          AND (%(level)s = 'nation'
               OR (%(level)s = 'region' AND d.region_code = %(code)s)
               OR (%(level)s = 'departement' AND d.code = %(code)s)))
), latest AS (
    SELECT DISTINCT ON (i.action_id) i.*
    FROM resorption.action_indicators i
    JOIN territory_actions t ON t.id = i.action_id
    WHERE i.measured_at <= %(day)s
    ORDER BY i.action_id, i.measured_at DESC
)
SELECT (SELECT count(*) FROM territory_actions) AS actions,
       count(*) AS reporting,
       coalesce(sum(people), 0), coalesce(sum(households), 0), coalesce(sum(women), 0),
       coalesce(sum(minors), 0), coalesce(sum(people_health_care), 0),
       coalesce(sum(people_work_contract), 0), coalesce(sum(people_shelter), 0),
       coalesce(sum(households_shelter), 0), coalesce(sum(people_housing), 0),
       coalesce(sum(households_housing), 0), coalesce(sum(minors_identified), 0),
       coalesce(sum(minors_mediation), 0), coalesce(sum(minors_school_start), 0),
       coalesce(sum(minors_nursery), 0), coalesce(sum(minors_primary), 0),
       coalesce(sum(minors_middle), 0), coalesce(sum(minors_high), 0)
FROM latest

-- name: finances_by_year
-- The finances of the territory's actions by year and funding type: budget, spent, and how
-- many actions. Only run for callers who read the finances (the others' roles cannot).
SELECT f.year, f.funding_type::text, count(DISTINCT f.action_id) AS actions,
       sum(f.budget) AS budget, sum(f.spent) AS spent
FROM resorption.action_finances f
JOIN resorption.actions a ON a.id = f.action_id
WHERE EXISTS (
    SELECT 1 FROM resorption.action_departements ad
    JOIN resorption.departements d ON d.code = ad.departement_code
    WHERE ad.action_id = a.id
      AND (%(level)s = 'nation'
           OR (%(level)s = 'region' AND d.region_code = %(code)s)
           OR (%(level)s = 'departement' AND d.code = %(code)s)))
GROUP BY f.year, f.funding_type
ORDER BY f.year, f.funding_type
