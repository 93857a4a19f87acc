-- The statements of resorption.demo.territory: the real territories the generator draws from.

-- name: departements_and_communes
-- Every département with its communes that have an outline, by code.
SELECT d.code, d.name, d.region_code, c.code, c.name, c.population
FROM resorption.departements d
JOIN resorption.communes c ON c.departement_code = d.code
WHERE c.geom IS NOT NULL AND NOT ST_IsEmpty(c.geom)
ORDER BY d.code, c.code
