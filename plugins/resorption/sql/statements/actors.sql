-- The fixed statements of site actors and followers (resorption.actors).

-- name: site_place
-- Where a site lies and its status, when the caller reads it (no row otherwise).
SELECT departement_code, status::text FROM resorption.sites WHERE id = %s

-- name: directory_user
-- A user who may be actor on a site of a département (privileges.APP_FUNCTIONS).
SELECT user_id, person_name, organisation_id, role, area_level, area_departements
FROM resorption.site_actor_user(%s, %s)

-- name: declare_person
-- A person declared actor of a site; declaring again changes the themes.
INSERT INTO resorption.site_actors (site_id, user_id, person_name, organisation_id, themes, declared_by)
VALUES (%s, %s, %s, %s, %s::resorption.actor_theme[], current_setting('resorption.username'))
ON CONFLICT (site_id, user_id) WHERE user_id IS NOT NULL
DO UPDATE SET themes = excluded.themes, updated_at = now()
RETURNING id

-- name: declare_organisation
-- An organisation declared actor of a site; declaring again changes the themes.
INSERT INTO resorption.site_actors (site_id, organisation_id, themes, declared_by)
VALUES (%s, %s, %s::resorption.actor_theme[], current_setting('resorption.username'))
ON CONFLICT (site_id, organisation_id) WHERE user_id IS NULL
DO UPDATE SET themes = excluded.themes, updated_at = now()
RETURNING id

-- name: remove_actor
-- One actor of a site removed, when row-level security allows it (no row otherwise).
DELETE FROM resorption.site_actors WHERE id = %s AND site_id = %s RETURNING id

-- name: actor_exists
-- A row when the caller reads this actor of this site.
SELECT 1 FROM resorption.site_actors WHERE id = %s AND site_id = %s

-- name: follow
-- A user follows a site (nothing when already).
INSERT INTO resorption.site_followers (user_id, site_id) VALUES (%s, %s) ON CONFLICT DO NOTHING

-- name: unfollow
-- The caller no longer follows a site.
DELETE FROM resorption.site_followers WHERE user_id = resorption.current_user_id() AND site_id = %s

-- name: actors_of
-- The actors of a site, as the sheet shows them.
SELECT a.id, a.user_id, a.person_name, o.name, a.themes::text[], a.declared_by, a.declared_at
FROM resorption.site_actors a JOIN resorption.organisations o ON o.id = a.organisation_id
WHERE a.site_id = %s
ORDER BY a.declared_at, a.id

-- name: is_followed
-- A row when the caller follows the site.
SELECT 1 FROM resorption.site_followers WHERE user_id = resorption.current_user_id() AND site_id = %s
