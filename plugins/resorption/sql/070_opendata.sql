-- Open data: public aggregates of the sites per département and per region, under
-- statistical secrecy ("secret statistique"), so that no single site can be found.
--
-- Published as of the day of the last refresh (the date in Paris, whatever the server's time
-- zone), one row per territory:
--   open sites: open_sites, population, minors, households;
--   sites closed since 1 January 2019, one count per closing status: closed_resorbed,
--   closed_by_justice, closed_by_pref_admin, closed_by_city_admin, closed_other, closed_unknown.
--
-- The figures are computed from every site (opendata_figures, about 8 s of database time at
-- 1,000,000 sites) once a day, not at each request: the published layers, which anyone may
-- read without signing in, must not let anyone make the database do that work at will. The
-- owner stores them in opendata_snapshot (refresh_opendata), and the layers read that table
-- only: a change to a site shows in the open data at the next refresh (the publisher's loop
-- once a Paris day, `resorption donnees-ouvertes rafraichir`, `resorption db setup`).
--
-- Views and table belong to the owner of the tables: opendata_figures reads every site
-- whatever the row-level security (only aggregates leave it), and no application role may
-- read it, nor the snapshot, nor run the refresh; the anonymous and reader roles read the two
-- published views only. Those are security barriers: no condition of a caller is evaluated
-- before their own rows are built. They carry no date of the last change of any site (it
-- told anyone, to the second, when a site changed anywhere): `as_of` dates the figures, with
-- the day of the refresh that computed them.
--
-- CELLS. Each published number is a cell, and behind each cell stand some sites and some
-- people:
--   - a count of sites: the sites counted, and the people living there (an unknown
--     population counts as nobody);
--   - a count of people (population, minors, households): the sites whose figure is known
--     (a site of unknown population adds nothing to the sum, so it does not "hide" the
--     others), and the counted people (resp. minors, households) themselves.
--
-- PRIMARY SUPPRESSION. A cell is published only when at least 5 sites and 10 people stand
-- behind it (resorption.opendata_publishable); otherwise it is NULL. Zero is suppressed
-- like any small count, so that NULL never tells "one to four" from "none".
--
-- NO DIFFERENCING WITHIN A ROW. The cells of one territory describe disjoint sets of sites
-- (open sites; sites closed with each status) or different quantities (people, minors,
-- households): no cell is the sum or the difference of others. This is why there is no
-- "total closed" beside the statuses and no "last 12 months" beside "since 2019": a total
-- minus its published parts, or "since 2019" minus "last 12 months", would give a count (say,
-- 2 sites closed before the last 12 months) that no rule checked, and protecting such crossed
-- tables takes a multi-dimensional suppression (as in tau-argus) that simple rules get wrong.
-- So each measure is one independent hierarchy: nation > regions > départements.
--
-- SECONDARY (COMPLEMENTARY) SUPPRESSION, for each measure separately:
--   1. Départements: in a region whose cell is published, the region's value minus its
--      published départements gives the sum of its suppressed départements. That sum must
--      itself stand for at least 5 sites and 10 people; if it does not, the smallest
--      published départements (by value, then code) are suppressed too, one by one, until
--      it does. (It always ends: all the départements together make the region, which is
--      published.) A region suppressed by the primary rule has only suppressed départements,
--      since none holds more than the region.
--   2. Regions: the national total is public elsewhere (the Dihal's yearly figures), so
--      the national total minus the published regions gives the sum of the suppressed
--      regions. When that sum stands for fewer than 5 sites or 10 people, the smallest
--      published region is suppressed as well, together with its smallest published
--      département when it had no suppressed one (otherwise the region would be the sum of
--      its published départements). One region is always enough: what it adds to the
--      unknown sum (its suppressed départements, or that one département) is itself
--      publishable.
-- What anyone can then derive is the sum over disjoint groups of suppressed cells (the
-- suppressed départements of a published region; every suppressed département of the
-- suppressed regions), and each such group stands for at least 5 sites and 10 people: no
-- suppressed cell can be recovered by addition or subtraction of published ones.
--
-- Not covered: comparing the figures of two different days (one site closing or one
-- population update shows as a change). Publishing dated snapshots (e.g. monthly) instead of
-- the last day will need the history of the sites (a later issue). The snapshot keeps one day
-- only, the last one computed: no table of past days to difference.

-- The primary rule, in one place: may a cell (or a group of cells) be published?
CREATE FUNCTION resorption.opendata_publishable(sites numeric, people numeric) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(sites >= 5 AND people >= 10, false)
$$;

-- Every figure, by level ('departement' or 'region') and territory, one column per measure,
-- after primary and secondary suppression: NULL when suppressed. Only published figures leave
-- this view; `secret_statistique` tells that at least one figure of the row is suppressed.
CREATE VIEW resorption.opendata_figures WITH (security_barrier) AS
WITH
measures (measure) AS (
    VALUES ('open_sites'), ('population'), ('minors'), ('households'),
           ('closed_resorbed'), ('closed_by_justice'), ('closed_by_pref_admin'),
           ('closed_by_city_admin'), ('closed_other'), ('closed_unknown')
),
-- What each site adds to each measure it belongs to: (value, sites, people).
contributions AS (
    SELECT s.departement_code, c.measure, c.value, c.sites, c.people
    FROM resorption.sites s
    CROSS JOIN LATERAL (VALUES
        ('open_sites', s.status = 'open', 1, 1, coalesce(s.population_total, 0)),
        ('population', s.status = 'open' AND s.population_total IS NOT NULL,
            s.population_total, 1, s.population_total),
        ('minors', s.status = 'open' AND s.population_minors IS NOT NULL,
            s.population_minors, 1, s.population_minors),
        ('households', s.status = 'open' AND s.population_households IS NOT NULL,
            s.population_households, 1, s.population_households),
        -- closed_by_* statuses keep their name, the others get the prefix
        (CASE WHEN s.status::text LIKE 'closed\_%' THEN s.status::text
              ELSE 'closed_' || s.status::text END,
            s.status <> 'open' AND s.closed_at >= date '2019-01-01',
            1, 1, coalesce(s.population_total, 0))
    ) AS c (measure, applies, value, sites, people)
    WHERE c.applies
),
-- Every département × measure, zeros included.
departement_cells AS (
    SELECT d.code, d.region_code, m.measure,
           coalesce(sum(c.value), 0) AS value,
           coalesce(sum(c.sites), 0) AS sites,
           coalesce(sum(c.people), 0) AS people
    FROM resorption.departements d
    CROSS JOIN measures m
    LEFT JOIN contributions c ON c.departement_code = d.code AND c.measure = m.measure
    GROUP BY d.code, d.region_code, m.measure
),
-- A region is exactly the sum of its départements (which is what an attacker uses).
region_cells AS (
    SELECT region_code AS code, measure, sum(value)::bigint AS value, sum(sites)::bigint AS sites,
           sum(people)::bigint AS people,
           resorption.opendata_publishable(sum(sites), sum(people)) AS primary_ok
    FROM departement_cells
    GROUP BY region_code, measure
),
departement_primary AS (
    SELECT dc.*, resorption.opendata_publishable(dc.sites, dc.people) AS primary_ok
    FROM departement_cells dc
),
-- Rule 1: what the primary suppression leaves unknown in each region.
departement_hidden AS (
    SELECT region_code, measure,
           coalesce(sum(sites) FILTER (WHERE NOT primary_ok), 0) AS sites,
           coalesce(sum(people) FILTER (WHERE NOT primary_ok), 0) AS people,
           count(*) FILTER (WHERE NOT primary_ok) AS cells
    FROM departement_primary
    GROUP BY region_code, measure
),
-- Published départements of published regions, smallest first, with running sums: one is
-- suppressed while the hidden group before it (primary + smaller complements) is too small.
departement_rule1 AS (
    SELECT d.code, d.measure,
           h.cells > 0 AND NOT resorption.opendata_publishable(
               h.sites + sum(d.sites) OVER w - d.sites,
               h.people + sum(d.people) OVER w - d.people) AS complement
    FROM departement_primary d
    JOIN departement_hidden h USING (region_code, measure)
    JOIN region_cells r ON r.code = d.region_code AND r.measure = d.measure
    WHERE d.primary_ok AND r.primary_ok
    WINDOW w AS (PARTITION BY d.region_code, d.measure ORDER BY d.value, d.code
                 ROWS UNBOUNDED PRECEDING)
),
departement_after_rule1 AS (
    SELECT d.*, d.primary_ok AND NOT coalesce(r1.complement, false) AS published
    FROM departement_primary d
    LEFT JOIN departement_rule1 r1 USING (code, measure)
),
-- Rule 2: the regions suppressed by the primary rule are made of suppressed départements
-- only, so the national total minus the published regions gives their sum.
national_hidden AS (
    SELECT measure,
           count(*) FILTER (WHERE NOT primary_ok) AS cells,
           resorption.opendata_publishable(sum(sites) FILTER (WHERE NOT primary_ok),
                                           sum(people) FILTER (WHERE NOT primary_ok)) AS safe
    FROM region_cells
    GROUP BY measure
),
-- When that sum is too small: the smallest published region…
region_complement AS (
    SELECT DISTINCT ON (r.measure) r.measure, r.code
    FROM region_cells r
    JOIN national_hidden n USING (measure)
    WHERE r.primary_ok AND n.cells > 0 AND NOT n.safe
    ORDER BY r.measure, r.value, r.code
),
-- …and, if none of its départements is suppressed yet, its smallest published one.
departement_complement AS (
    SELECT DISTINCT ON (d.measure) d.measure, d.code
    FROM departement_after_rule1 d
    JOIN region_complement rc ON rc.measure = d.measure AND rc.code = d.region_code
    WHERE NOT EXISTS (SELECT 1 FROM departement_after_rule1 o
                      WHERE o.region_code = rc.code AND o.measure = rc.measure
                        AND NOT o.published)
    ORDER BY d.measure, d.value, d.code
),
cells AS (
    SELECT 'departement' AS level, d.code, d.measure,
           CASE WHEN d.published AND dc.code IS NULL THEN d.value END AS value
    FROM departement_after_rule1 d
    LEFT JOIN departement_complement dc USING (measure, code)
    UNION ALL
    SELECT 'region', r.code, r.measure,
           CASE WHEN r.primary_ok AND rc.code IS NULL THEN r.value END
    FROM region_cells r
    LEFT JOIN region_complement rc USING (measure, code)
)
SELECT level, code,
       max(value) FILTER (WHERE measure = 'open_sites') AS open_sites,
       max(value) FILTER (WHERE measure = 'population') AS population,
       max(value) FILTER (WHERE measure = 'minors') AS minors,
       max(value) FILTER (WHERE measure = 'households') AS households,
       max(value) FILTER (WHERE measure = 'closed_resorbed') AS closed_resorbed,
       max(value) FILTER (WHERE measure = 'closed_by_justice') AS closed_by_justice,
       max(value) FILTER (WHERE measure = 'closed_by_pref_admin') AS closed_by_pref_admin,
       max(value) FILTER (WHERE measure = 'closed_by_city_admin') AS closed_by_city_admin,
       max(value) FILTER (WHERE measure = 'closed_other') AS closed_other,
       max(value) FILTER (WHERE measure = 'closed_unknown') AS closed_unknown,
       bool_or(value IS NULL) AS secret_statistique
FROM cells
GROUP BY level, code;

-- The figures of the last refresh: exactly the rows and columns of opendata_figures (after
-- suppression: no hidden value is stored), dated by the Paris day of the refresh. Private:
-- only the owner reads it (privileges.PRIVATE_TABLES); the published views below do.
CREATE TABLE resorption.opendata_snapshot (
    level text NOT NULL CHECK (level IN ('departement', 'region')),
    code text NOT NULL,
    as_of date NOT NULL,
    open_sites bigint,
    population bigint,
    minors bigint,
    households bigint,
    closed_resorbed bigint,
    closed_by_justice bigint,
    closed_by_pref_admin bigint,
    closed_by_city_admin bigint,
    closed_other bigint,
    closed_unknown bigint,
    secret_statistique boolean NOT NULL,
    PRIMARY KEY (level, code)
);

-- Compute the figures again and replace the snapshot, as of today in Paris; returns that day.
-- Run by the owner (the command line, the publisher's daily check, `db setup`): not SECURITY
-- DEFINER, and nobody else may execute it, so no request can start the costly computation.
-- The lock serialises two refreshes (each would delete rows the other inserts) without
-- blocking the readers, who read the previous snapshot until this one commits.
CREATE FUNCTION resorption.refresh_opendata() RETURNS date
LANGUAGE plpgsql VOLATILE SET search_path = resorption, pg_temp AS $$
DECLARE
    day date := (now() AT TIME ZONE 'Europe/Paris')::date;
BEGIN
    LOCK TABLE opendata_snapshot IN EXCLUSIVE MODE;
    DELETE FROM opendata_snapshot;
    INSERT INTO opendata_snapshot (level, code, as_of, open_sites, population, minors, households,
                                   closed_resorbed, closed_by_justice, closed_by_pref_admin,
                                   closed_by_city_admin, closed_other, closed_unknown, secret_statistique)
    SELECT level, code, day, open_sites, population, minors, households,
           closed_resorbed, closed_by_justice, closed_by_pref_admin,
           closed_by_city_admin, closed_other, closed_unknown, secret_statistique
    FROM opendata_figures;
    RETURN day;
END $$;
REVOKE ALL ON FUNCTION resorption.refresh_opendata() FROM PUBLIC;

-- The two published layers: the territory, the day of its figures, the figures of the last
-- refresh and a light outline (the territory's `geom_simplified`, 010_territories.sql). Before
-- any refresh they have no row; after a day without one, they say the day they date from.
CREATE VIEW resorption.opendata_departements WITH (security_barrier) AS
SELECT d.code, d.name, d.region_code, r.name AS region_name,
       f.as_of,
       f.open_sites, f.population, f.minors, f.households,
       f.closed_resorbed, f.closed_by_justice, f.closed_by_pref_admin, f.closed_by_city_admin,
       f.closed_other, f.closed_unknown, f.secret_statistique,
       d.geom_simplified AS geom
FROM resorption.departements d
JOIN resorption.regions r ON r.code = d.region_code
JOIN resorption.opendata_snapshot f ON f.level = 'departement' AND f.code = d.code;

CREATE VIEW resorption.opendata_regions WITH (security_barrier) AS
SELECT r.code, r.name,
       f.as_of,
       f.open_sites, f.population, f.minors, f.households,
       f.closed_resorbed, f.closed_by_justice, f.closed_by_pref_admin, f.closed_by_city_admin,
       f.closed_other, f.closed_unknown, f.secret_statistique,
       r.geom_simplified AS geom
FROM resorption.regions r
JOIN resorption.opendata_snapshot f ON f.level = 'region' AND f.code = r.code;
