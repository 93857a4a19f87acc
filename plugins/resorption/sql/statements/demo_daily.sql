-- The statements of resorption.demo.daily: the daily work of the demonstration accounts
-- (journal messages, site actors, followed sites), written as the owner (row-level security
-- and the journal's write guard do not apply: every column is given here).

-- name: accounts
SELECT id, username, organisation_id, area_code FROM resorption.users
WHERE username = ANY(%s) ORDER BY username

-- name: delete_site_comments
DELETE FROM resorption.site_comments WHERE created_by = ANY(%s)

-- name: delete_site_comment_versions
DELETE FROM resorption.site_comments_history WHERE created_by = ANY(%s)

-- name: delete_action_comments
DELETE FROM resorption.action_comments WHERE created_by = ANY(%s)

-- name: delete_action_comment_versions
DELETE FROM resorption.action_comments_history WHERE created_by = ANY(%s)

-- name: delete_actors
DELETE FROM resorption.site_actors WHERE declared_by = ANY(%s)

-- name: delete_followers
DELETE FROM resorption.site_followers f USING resorption.users u
WHERE u.id = f.user_id AND u.username = ANY(%s)

-- name: open_sites
-- The first open demonstration sites of a département (references LIKE %(p)s), in id order.
SELECT id FROM resorption.sites
WHERE departement_code = %(d)s AND status = 'open' AND external_ref LIKE %(p)s
ORDER BY id LIMIT %(n)s

-- name: actions_in
SELECT id FROM resorption.actions
WHERE departement_code = %(d)s AND reference LIKE %(p)s
ORDER BY id LIMIT %(n)s

-- name: insert_site_comment
INSERT INTO resorption.site_comments (
    site_id, departement_code, location, message, tags, visibility, audience_users,
    author_id, organisation_id, created_at, created_by, updated_at, updated_by)
SELECT s.id, s.departement_code, s.location, %(message)s, %(tags)s,
       %(visibility)s::resorption.journal_visibility, %(audience)s,
       %(author)s, %(organisation)s, %(at)s, %(username)s, %(at)s, %(username)s
FROM resorption.sites s WHERE s.id = %(parent)s

-- name: insert_action_comment
INSERT INTO resorption.action_comments (
    action_id, departement_code, location, message, tags, visibility, audience_users,
    author_id, organisation_id, created_at, created_by, updated_at, updated_by)
SELECT a.id, a.departement_code, a.footprint, %(message)s, %(tags)s,
       %(visibility)s::resorption.journal_visibility, %(audience)s,
       %(author)s, %(organisation)s, %(at)s, %(username)s, %(at)s, %(username)s
FROM resorption.actions a WHERE a.id = %(parent)s

-- name: insert_actor
-- A person (user_id and person_name) or, both NULL, their organisation as such.
INSERT INTO resorption.site_actors (
    site_id, user_id, person_name, organisation_id, themes, declared_by, declared_at, updated_at)
VALUES (%(site)s, %(user)s, %(person)s, %(organisation)s, %(themes)s::resorption.actor_theme[],
        %(username)s, %(at)s, %(at)s)
ON CONFLICT DO NOTHING

-- name: insert_follower
INSERT INTO resorption.site_followers (user_id, site_id, followed_at) VALUES (%s, %s, %s)
ON CONFLICT DO NOTHING

-- name: count_daily
-- What the demonstration accounts' daily work left: messages, actors, followed sites.
SELECT (SELECT count(*) FROM resorption.site_comments WHERE created_by = ANY(%(u)s)),
       (SELECT count(*) FROM resorption.action_comments WHERE created_by = ANY(%(u)s)),
       (SELECT count(*) FROM resorption.site_actors WHERE declared_by = ANY(%(u)s)),
       (SELECT count(*) FROM resorption.site_followers f JOIN resorption.users u ON u.id = f.user_id
        WHERE u.username = ANY(%(u)s))
