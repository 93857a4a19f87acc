-- The fixed statements of attachments (resorption.attachments). `{}` is the parent's column
-- (site_id, site_comment_id or action_comment_id) or table, named by the module.

-- name: parent_exists
-- A row when the caller reads the parent (a site or a journal message).
SELECT 1 FROM {} WHERE id = %s

-- name: insert
-- One file on a parent; the write guard sets the uploader and the département.
INSERT INTO resorption.attachments ({}, filename, media_type, size, sha256, content)
VALUES (%s, %s, %s, %s, %s, %s)
RETURNING id, created_at

-- name: list_of
-- The files of parents the caller reads, oldest first, without their content; whether the
-- caller may delete each; the parent.
SELECT a.id, a.filename, a.media_type, a.size, a.uploaded_by, o.name, a.created_at,
       (a.uploader_id = resorption.current_user_id() AND resorption.journal_within_delay(a.created_at))
       OR resorption.journal_moderates(
              CASE WHEN a.action_comment_id IS NULL THEN 'resorption.sites_write_scope'
                   ELSE 'resorption.actions_write_scope' END, a.departement_code),
       a.{column}
FROM resorption.attachments a LEFT JOIN resorption.organisations o ON o.id = a.organisation_id
WHERE a.{column} = ANY(%s)
ORDER BY a.created_at, a.id

-- name: content
-- One file the caller reads, with its content.
SELECT filename, media_type, size, content, site_id, site_comment_id, action_comment_id
FROM resorption.attachments WHERE id = %s

-- name: delete
-- One file deleted, when row-level security allows it (no row otherwise).
DELETE FROM resorption.attachments WHERE id = %s RETURNING id

-- name: exists
-- A row when the caller reads this file.
SELECT 1 FROM resorption.attachments WHERE id = %s
