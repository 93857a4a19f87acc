-- Row-level security: every read of sites, actions and their details is limited to the
-- scopes set for the transaction (set_config(..., true) by the application):
--   resorption.sites_scope, resorption.actions_scope: '*' for the nation, or a
--   comma-separated list of département codes. Unset or empty: nothing (fail closed).

CREATE FUNCTION resorption.in_scope(setting text, departement text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting(setting, true), '') = '*'
        OR departement = ANY (string_to_array(nullif(current_setting(setting, true), ''), ','))
$$;

-- An action is visible when one of its départements is in scope. SECURITY DEFINER so that
-- the lookup of action_departements does not recurse into its own policy.
CREATE FUNCTION resorption.action_in_scope(action bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM action_departements ad
                   WHERE ad.action_id = action
                     AND in_scope('resorption.actions_scope', ad.departement_code))
$$;

ALTER TABLE resorption.sites ENABLE ROW LEVEL SECURITY;
CREATE POLICY sites_read ON resorption.sites FOR SELECT
    USING (resorption.in_scope('resorption.sites_scope', departement_code));

-- Details follow their site: the inner SELECT is itself limited by the site's policy.
ALTER TABLE resorption.site_closing_solutions ENABLE ROW LEVEL SECURITY;
CREATE POLICY read ON resorption.site_closing_solutions FOR SELECT
    USING (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id));

ALTER TABLE resorption.site_reinstallation_origins ENABLE ROW LEVEL SECURITY;
CREATE POLICY read ON resorption.site_reinstallation_origins FOR SELECT
    USING (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id)
           AND EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = origin_site_id));

ALTER TABLE resorption.actions ENABLE ROW LEVEL SECURITY;
CREATE POLICY actions_read ON resorption.actions FOR SELECT
    USING (resorption.in_scope('resorption.actions_scope', departement_code)
           OR resorption.action_in_scope(id));

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['action_departements', 'action_organisations', 'action_finances',
                             'action_indicators'] LOOP
        EXECUTE format('ALTER TABLE resorption.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY read ON resorption.%I FOR SELECT USING '
                       '(EXISTS (SELECT 1 FROM resorption.actions a WHERE a.id = action_id))', t);
    END LOOP;
END $$;

-- A link shows only when both the action and the site are visible.
ALTER TABLE resorption.action_sites ENABLE ROW LEVEL SECURITY;
CREATE POLICY read ON resorption.action_sites FOR SELECT
    USING (EXISTS (SELECT 1 FROM resorption.actions a WHERE a.id = action_id)
           AND EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id));
