-- The details of a site: the solutions it closed with, the sites a reinstallation came from.
-- They follow their site: a reader of the nation's sites reads every detail (a foreign key with
-- ON DELETE CASCADE: no detail outlives its site); elsewhere each detail asks whether its site
-- is read (resorption.site_readable, under the sites' policy: 030_sites.sql).

CREATE TYPE resorption.closing_solution AS ENUM (
    'emergency_shelter', 'integration_shelter', 'transitional_housing', 'social_housing',
    'private_housing', 'voluntary_return', 'eti', 'other');

-- People and households housed by each solution when a site closed.
CREATE TABLE resorption.site_closing_solutions (
    site_id    bigint NOT NULL REFERENCES resorption.sites (id) ON DELETE CASCADE,
    solution   resorption.closing_solution NOT NULL,
    people     integer CHECK (people >= 0),
    households integer CHECK (households >= 0),
    PRIMARY KEY (site_id, solution),
    CHECK (households <= people)
);

ALTER TABLE resorption.site_closing_solutions ENABLE ROW LEVEL SECURITY;
CREATE POLICY read ON resorption.site_closing_solutions FOR SELECT TO resorption_scoped
    USING ((SELECT resorption.scope_is_nation('resorption.sites_scope'))
           OR resorption.site_readable(site_id));
CREATE POLICY nationwide ON resorption.site_closing_solutions FOR SELECT TO resorption_nationwide
    USING ((SELECT resorption.scope_is_nation('resorption.sites_scope')));
-- Closing solutions are written with the closing of their site (process close-site): where
-- the caller may close sites (resorption.sites_close_scope), as for the site itself.
CREATE POLICY write ON resorption.site_closing_solutions FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id
                        AND resorption.in_scope('resorption.sites_close_scope', s.departement_code)));
CREATE POLICY remove ON resorption.site_closing_solutions FOR DELETE
    USING (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id
                   AND resorption.in_scope('resorption.sites_close_scope', s.departement_code)));

-- The sites a reinstallation came from.
CREATE TABLE resorption.site_reinstallation_origins (
    site_id        bigint NOT NULL REFERENCES resorption.sites (id) ON DELETE CASCADE,
    origin_site_id bigint NOT NULL REFERENCES resorption.sites (id) ON DELETE CASCADE,
    PRIMARY KEY (site_id, origin_site_id),
    CHECK (site_id <> origin_site_id)
);
CREATE INDEX ON resorption.site_reinstallation_origins (origin_site_id);

-- A link shows only when both sites are visible.
ALTER TABLE resorption.site_reinstallation_origins ENABLE ROW LEVEL SECURITY;
CREATE POLICY read ON resorption.site_reinstallation_origins FOR SELECT TO resorption_scoped
    USING ((SELECT resorption.scope_is_nation('resorption.sites_scope'))
           OR (resorption.site_readable(site_id) AND resorption.site_readable(origin_site_id)));
CREATE POLICY nationwide ON resorption.site_reinstallation_origins FOR SELECT TO resorption_nationwide
    USING ((SELECT resorption.scope_is_nation('resorption.sites_scope')));
