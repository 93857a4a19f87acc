-- The statements of resorption.demo.report: what the demonstration data holds.

-- name: count_rows
-- Sites, open sites, people and minors in them, actions (references LIKE %(site)s) and
-- organisations (names LIKE %(org)s).
SELECT
    (SELECT count(*) FROM resorption.sites WHERE external_ref LIKE %(site)s),
    (SELECT count(*) FROM resorption.sites
     WHERE external_ref LIKE %(site)s AND status = 'open'),
    (SELECT coalesce(sum(population_total), 0) FROM resorption.sites
     WHERE external_ref LIKE %(site)s AND status = 'open'),
    (SELECT coalesce(sum(population_minors), 0) FROM resorption.sites
     WHERE external_ref LIKE %(site)s AND status = 'open'),
    (SELECT count(*) FROM resorption.actions WHERE reference LIKE %(site)s),
    (SELECT count(*) FROM resorption.organisations WHERE name LIKE %(org)s)
