-- A reinstallation's origin tested with one call for its two sites instead of two.
-- For bench/statement.py --variant; no measurable gain (bench/ANALYSIS.md, 3 décembre, nuit).
CREATE OR REPLACE FUNCTION resorption.sites_readable_pair(a bigint, b bigint) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (SELECT count(*) FROM resorption.sites s WHERE s.id IN (a, b)) = 2;
END
$$;
GRANT EXECUTE ON FUNCTION resorption.sites_readable_pair(bigint, bigint) TO PUBLIC;
ALTER POLICY read ON resorption.site_reinstallation_origins USING (
    (SELECT resorption.scope_is_nation('resorption.sites_scope'))
    OR resorption.sites_readable_pair(site_id, origin_site_id));
