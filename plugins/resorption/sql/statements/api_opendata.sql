-- The statements of resorption.api.opendata.

-- name: figures_day
-- The day the published figures describe: that of the last refresh (sql/070_opendata.sql),
-- read in the published view under the caller's own role.
SELECT max(as_of) FROM resorption.opendata_regions
