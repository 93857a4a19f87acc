-- The statements of the territory statistics (resorption.processes.territory_statistics).
-- `{history}` is the sites' history table and `{territory}` the condition on the territory
-- (TRUE for the nation), both composed from the catalog by the reader (resorption.query);
-- parameters: start, end, step (an interval) and those of the territory condition.

-- name: departement_exists
-- A row when the département exists.
SELECT 1 FROM resorption.departements WHERE code = %s

-- name: region_departements
-- The départements of a region (none: the region does not exist).
SELECT code FROM resorption.departements WHERE region_code = %s

-- name: versions
-- The dates of the series (from start by step, plus end) and, for each date, the versions of
-- the sites valid at the end of that day in Paris, in the territory. Only columns every
-- reader role may read (no owner, no justice). The head of the statements below.
WITH dates AS (
    SELECT DISTINCT d::date AS day
    FROM (SELECT generate_series(%(start)s::date, %(end)s::date, %(step)s::interval) AS d
          UNION ALL SELECT %(end)s::date) s
), v AS (
    SELECT d.day, t.id, t.status, t.population_total, t.population_minors, t.social_origins,
           t.closed_at, t.water_rating, t.sanitation_rating, t.electricity_rating, t.waste_rating,
           t.pests_rating, t.fire_prevention_rating
    FROM dates d
    JOIN {history} t
      ON t.valid @> (((d.day + 1)::timestamp AT TIME ZONE 'Europe/Paris') - interval '1 microsecond')
    WHERE t.operation <> 'delete' AND {territory}
)

-- name: by_status
-- Per date and status: the sites, their people, minors and people of European origin.
{versions}
SELECT d.day, v.status::text, count(v.id),
       coalesce(sum(v.population_total), 0), coalesce(sum(v.population_minors), 0),
       coalesce(sum(v.population_total) FILTER (WHERE 'european' = ANY (v.social_origins)), 0)
FROM dates d LEFT JOIN v ON v.day = d.day
GROUP BY 1, 2 ORDER BY 1

-- name: ratings
-- Per date, topic and rating: how many open sites.
{versions}
SELECT v.day, r.topic, r.rating, count(*)
FROM v, LATERAL (VALUES ('water', v.water_rating::text), ('sanitation', v.sanitation_rating::text),
                        ('electricity', v.electricity_rating::text), ('waste', v.waste_rating::text),
                        ('pests', v.pests_rating::text),
                        ('fire_prevention', v.fire_prevention_rating::text)) AS r (topic, rating)
WHERE v.status = 'open'
GROUP BY 1, 2, 3

-- name: closures
-- Per date: the sites closed during the step ending that day, and the people they had.
{versions}, closed AS (
    SELECT * FROM v
    WHERE v.status <> 'open' AND v.closed_at > v.day - %(step)s::interval AND v.closed_at <= v.day
)
SELECT day, count(*), coalesce(sum(population_total), 0) FROM closed GROUP BY 1

-- name: solutions
-- Per date and solution: the people and households of the sites closed during the step.
{versions}, closed AS (
    SELECT * FROM v
    WHERE v.status <> 'open' AND v.closed_at > v.day - %(step)s::interval AND v.closed_at <= v.day
)
SELECT c.day, s.solution::text, coalesce(sum(s.people), 0), coalesce(sum(s.households), 0)
FROM closed c JOIN resorption.site_closing_solutions s ON s.site_id = c.id
GROUP BY 1, 2 ORDER BY 1, 2

-- name: intervention
-- Today, not in the history (actors and their actions have none): the open sites of the
-- territory, and those without intervention, neither an open action nor an actor.
-- `{has_action}` and `{has_actor}` are the catalog's expressions of the sites over `t`.
SELECT count(*), count(*) FILTER (WHERE NOT {has_action} AND NOT {has_actor})
FROM resorption.sites t
WHERE t.status = 'open' AND {territory}
