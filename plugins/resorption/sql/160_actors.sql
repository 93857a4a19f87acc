-- Who works on a site ("intervenants") and who follows it ("mes sites").
--
-- An actor is a user, or the organisation of a user, declared on a site with themes. Who may
-- read the site reads its actors (the policy's inner SELECT of sites is itself limited by the
-- sites' policy, 030_sites.sql). A user declares actors where its role intervenes: the
-- transaction's `resorption.actors_scope` (policy.actor_scope: the caller's area, for the
-- roles that may write actions), on a site it may read. A follower row belongs to its user:
-- nobody reads or writes another's, except that declaring someone actor makes them follow.
CREATE TYPE resorption.actor_theme AS ENUM (
    'health', 'schooling', 'social_support', 'employment', 'housing', 'safety', 'other');

-- The user of the transaction (policy.db_settings), NULL for anonymous.
CREATE FUNCTION resorption.current_user_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nullif(current_setting('resorption.user_id', true), '')::bigint
$$;

CREATE TABLE resorption.site_actors (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id         bigint NOT NULL REFERENCES resorption.sites (id) ON DELETE CASCADE,
    -- the person; NULL when the actor is the organisation itself
    user_id         bigint REFERENCES resorption.users (id) ON DELETE CASCADE,
    -- the person's name as the directory gave it when declared (users is private)
    person_name     text,
    organisation_id bigint NOT NULL REFERENCES resorption.organisations (id),
    themes          resorption.actor_theme[] NOT NULL,
    declared_by     text NOT NULL,
    declared_at     timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT has_theme CHECK (cardinality(themes) >= 1),
    CONSTRAINT distinct_themes CHECK (resorption.has_no_duplicates(themes)),
    CONSTRAINT person_has_name CHECK ((user_id IS NULL) = (person_name IS NULL))
);
-- One declaration per person, and one per organisation as such, on a site: declaring again
-- changes the themes.
CREATE UNIQUE INDEX site_actors_person_key ON resorption.site_actors (site_id, user_id)
    WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX site_actors_organisation_key ON resorption.site_actors (site_id, organisation_id)
    WHERE user_id IS NULL;
-- `has_actor` and `actors` of the sites (collections/sites.yml) look a site's actors up.
CREATE INDEX site_actors_site_idx ON resorption.site_actors (site_id);

ALTER TABLE resorption.site_actors ENABLE ROW LEVEL SECURITY;
CREATE POLICY read ON resorption.site_actors FOR SELECT TO resorption_scoped
    USING ((SELECT resorption.scope_is_nation('resorption.sites_scope'))
           OR resorption.site_readable(site_id));
CREATE POLICY nationwide ON resorption.site_actors FOR SELECT TO resorption_nationwide
    USING ((SELECT resorption.scope_is_nation('resorption.sites_scope')));
CREATE POLICY declare ON resorption.site_actors FOR INSERT
    WITH CHECK (declared_by = current_setting('resorption.username', true)
                AND EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id
                            AND resorption.in_scope('resorption.actors_scope', s.departement_code)));
CREATE POLICY change ON resorption.site_actors FOR UPDATE
    USING (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id
                   AND resorption.in_scope('resorption.actors_scope', s.departement_code)))
    WITH CHECK (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id
                        AND resorption.in_scope('resorption.actors_scope', s.departement_code)));
-- An actor is removed by the person, by who declared it, or by who may write the site.
CREATE POLICY remove ON resorption.site_actors FOR DELETE
    USING (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id
                   AND (user_id = resorption.current_user_id()
                        OR declared_by = current_setting('resorption.username', true)
                        OR resorption.in_scope('resorption.sites_write_scope', s.departement_code))));

CREATE TABLE resorption.site_followers (
    user_id     bigint NOT NULL REFERENCES resorption.users (id) ON DELETE CASCADE,
    site_id     bigint NOT NULL REFERENCES resorption.sites (id) ON DELETE CASCADE,
    followed_at timestamptz NOT NULL DEFAULT now(),
    -- `followed` of the sites looks up (caller, site): this key
    PRIMARY KEY (user_id, site_id)
);
CREATE INDEX site_followers_site_idx ON resorption.site_followers (site_id);

ALTER TABLE resorption.site_followers ENABLE ROW LEVEL SECURITY;
CREATE POLICY read ON resorption.site_followers FOR SELECT TO resorption_scoped
    USING (user_id = resorption.current_user_id()
           AND ((SELECT resorption.scope_is_nation('resorption.sites_scope'))
                OR resorption.site_readable(site_id)));
CREATE POLICY nationwide ON resorption.site_followers FOR SELECT TO resorption_nationwide
    USING (user_id = resorption.current_user_id() AND (SELECT resorption.scope_is_nation('resorption.sites_scope')));
-- One follows a site one reads; one makes follow a person one has just declared actor there.
CREATE POLICY follow ON resorption.site_followers FOR INSERT
    WITH CHECK (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id)
                AND (user_id = resorption.current_user_id()
                     OR EXISTS (SELECT 1 FROM resorption.site_actors a
                                WHERE a.site_id = site_followers.site_id
                                  AND a.user_id = site_followers.user_id)));
CREATE POLICY unfollow ON resorption.site_followers FOR DELETE
    USING (user_id = resorption.current_user_id());

-- The directory entry of a user who may be actor on a site of `departement`: active, and
-- whose intervention area covers it (so nobody learns of users outside the site's
-- territory). Called by the application's login role only (privileges.APP_FUNCTIONS), after
-- it checked that its caller reads the site; the role decides in Python (policy.actor_scope).
CREATE FUNCTION resorption.site_actor_user(name text, departement text)
RETURNS TABLE (user_id bigint, person_name text, organisation_id bigint, role text,
               area_level text, area_departements text[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT u.id, coalesce(nullif(trim(u.full_name), ''), u.username), u.organisation_id,
           u.role::text, u.area_level::text, a.departements
    FROM users u CROSS JOIN LATERAL (SELECT area_departements(u.area_level, u.area_code)) a (departements)
    WHERE u.username = lower(name) AND u.active
      AND (a.departements IS NULL OR departement = ANY (a.departements))
$$;
REVOKE ALL ON FUNCTION resorption.site_actor_user FROM PUBLIC;
