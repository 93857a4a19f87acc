-- The statements of resorption.web.dashboard.

-- name: departements_with_regions
-- Every département with its region, by code (the picker).
SELECT d.code, d.name, r.code, r.name FROM resorption.departements d
JOIN resorption.regions r ON r.code = d.region_code ORDER BY d.code
