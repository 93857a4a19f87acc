-- The statements of resorption.web.activity: the territories the page offers as filters.

-- name: territories
-- Every département with its region (public reference data); the page keeps those of the
-- caller's scope.
SELECT d.code, d.name, r.code, r.name
FROM resorption.departements d JOIN resorption.regions r ON r.code = d.region_code
ORDER BY d.code
