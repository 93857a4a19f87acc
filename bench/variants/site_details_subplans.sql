-- The scoped read policies of a site's details as keyed sub-plans (OFFSET 0: one lookup by id
-- per row, never a hash of every readable site) instead of resorption.site_readable() calls.
-- For bench/statement.py --variant; no measurable gain (bench/ANALYSIS.md, 3 décembre, nuit).
ALTER POLICY read ON resorption.site_closing_solutions USING (
    (SELECT resorption.scope_is_nation('resorption.sites_scope'))
    OR EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id OFFSET 0));
ALTER POLICY read ON resorption.site_reinstallation_origins USING (
    (SELECT resorption.scope_is_nation('resorption.sites_scope'))
    OR (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id OFFSET 0)
        AND EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = origin_site_id OFFSET 0)));
ALTER POLICY read ON resorption.site_actors USING (
    (SELECT resorption.scope_is_nation('resorption.sites_scope'))
    OR EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id OFFSET 0));
ALTER POLICY read ON resorption.site_followers USING (
    user_id = resorption.current_user_id()
    AND ((SELECT resorption.scope_is_nation('resorption.sites_scope'))
         OR EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id OFFSET 0)));
