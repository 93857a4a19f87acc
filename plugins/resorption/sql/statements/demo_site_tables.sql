-- The statements of resorption.demo.site_tables: the demonstration sites, streamed.

-- name: copy_sites
-- Stream sites ({}: SITE_COLUMNS).
COPY resorption.sites ({}) FROM STDIN
