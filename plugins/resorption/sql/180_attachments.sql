-- Attachments ("pièces jointes"): files hung on a site or on a message of a journal (decrees,
-- reports, photos), kept in PostgreSQL beside their parent, under the same row-level security.
--
-- One table with three parent columns (exactly one set), each a real foreign key that
-- deletes the file with its parent: a deleted site or message takes its files along.
-- The content is what resorption.attachments stored after checking it: its type detected
-- from its bytes (never the client's word), images re-encoded without their metadata.
--
-- Who reads a file (policy attachments_read): exactly who reads its parent — the parent's
-- own row-level security decides (a site's scope; a message's visibility, moderation and
-- authorship, sql/150_journal.sql), so a file is never wider than what it hangs on.
-- Who adds one (attachments_insert): on a site, who may edit the site (its write scope); on a
-- message, its author while they may still edit it (`resorption.journal_edit_delay`).
-- Who deletes one (attachments_delete): its uploader within the journal's edit delay, or a
-- moderator of the parent's journal (national administrators, local ones in their area).
-- Nobody changes a file: one deletes it and uploads another.
CREATE TABLE resorption.attachments (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id           bigint REFERENCES resorption.sites (id) ON DELETE CASCADE,
    site_comment_id   bigint REFERENCES resorption.site_comments (id) ON DELETE CASCADE,
    action_comment_id bigint REFERENCES resorption.action_comments (id) ON DELETE CASCADE,
    -- the parent's département when the file was added (write guard): moderation's scope
    departement_code  text NOT NULL REFERENCES resorption.departements (code),
    filename          text NOT NULL,
    media_type        text NOT NULL,
    size              integer NOT NULL,
    sha256            bytea NOT NULL,
    content           bytea NOT NULL,
    uploader_id       bigint,
    uploaded_by       text,
    organisation_id   bigint REFERENCES resorption.organisations (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT attachments_one_parent CHECK (num_nonnulls(site_id, site_comment_id, action_comment_id) = 1),
    -- the types resorption.file_types accepts (detected from the content)
    CONSTRAINT attachments_media_type_check CHECK (media_type IN (
        'application/pdf', 'image/png', 'image/jpeg', 'image/webp', 'text/plain',
        'application/vnd.oasis.opendocument.text', 'application/vnd.oasis.opendocument.spreadsheet',
        'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
        'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet')),
    CONSTRAINT attachments_size_check CHECK (size > 0 AND size = octet_length(content)),
    CONSTRAINT attachments_sha256_check CHECK (octet_length(sha256) = 32),
    -- a name, not a path: no separator, no control character (it goes into a header)
    CONSTRAINT attachments_filename_check CHECK (
        length(filename) BETWEEN 1 AND 200 AND filename !~ '[/\\[:cntrl:]]' AND filename NOT IN ('.', '..'))
);
CREATE INDEX attachments_site_idx ON resorption.attachments (site_id) WHERE site_id IS NOT NULL;
CREATE INDEX attachments_site_comment_idx ON resorption.attachments (site_comment_id)
    WHERE site_comment_id IS NOT NULL;
CREATE INDEX attachments_action_comment_idx ON resorption.attachments (action_comment_id)
    WHERE action_comment_id IS NOT NULL;

-- The write guard: the uploader and the parent's département, set by the database. Reads the
-- parent as the caller (its row-level security): a parent the caller cannot read takes no
-- file, and says so as a missing parent would. Only for callers under row-level security.
CREATE FUNCTION resorption.attachments_write_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    parent_departement text;
BEGIN
    IF NOT row_security_active(TG_RELID) THEN
        RETURN NEW;
    END IF;
    IF NEW.site_id IS NOT NULL THEN
        SELECT s.departement_code INTO parent_departement FROM resorption.sites s WHERE s.id = NEW.site_id;
    ELSIF NEW.site_comment_id IS NOT NULL THEN
        SELECT c.departement_code INTO parent_departement
        FROM resorption.site_comments c WHERE c.id = NEW.site_comment_id;
    ELSE
        SELECT c.departement_code INTO parent_departement
        FROM resorption.action_comments c WHERE c.id = NEW.action_comment_id;
    END IF;
    IF parent_departement IS NULL THEN
        RAISE foreign_key_violation USING MESSAGE = 'parent inconnu';
    END IF;
    NEW.departement_code := parent_departement;
    NEW.uploader_id := resorption.current_user_id();
    NEW.uploaded_by := nullif(current_setting('resorption.username', true), '');
    NEW.organisation_id := nullif(current_setting('resorption.organisation_id', true), '')::bigint;
    NEW.created_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER attachments_write_guard BEFORE INSERT ON resorption.attachments
    FOR EACH ROW EXECUTE FUNCTION resorption.attachments_write_guard();

ALTER TABLE resorption.attachments ENABLE ROW LEVEL SECURITY;
CREATE POLICY attachments_read ON resorption.attachments FOR SELECT
    USING (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = attachments.site_id)
           OR EXISTS (SELECT 1 FROM resorption.site_comments c WHERE c.id = attachments.site_comment_id)
           OR EXISTS (SELECT 1 FROM resorption.action_comments c WHERE c.id = attachments.action_comment_id));
CREATE POLICY attachments_insert ON resorption.attachments FOR INSERT
    WITH CHECK (resorption.journal_is_author(uploader_id)
                AND (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = attachments.site_id
                             AND resorption.in_scope('resorption.sites_write_scope', s.departement_code) IS TRUE)
                     OR EXISTS (SELECT 1 FROM resorption.site_comments c WHERE c.id = attachments.site_comment_id
                                AND NOT c.hidden AND resorption.journal_is_author(c.author_id)
                                AND resorption.journal_within_delay(c.created_at))
                     OR EXISTS (SELECT 1 FROM resorption.action_comments c
                                WHERE c.id = attachments.action_comment_id
                                AND NOT c.hidden AND resorption.journal_is_author(c.author_id)
                                AND resorption.journal_within_delay(c.created_at))));
CREATE POLICY attachments_delete ON resorption.attachments FOR DELETE
    USING ((resorption.journal_is_author(uploader_id) AND resorption.journal_within_delay(created_at))
           OR resorption.journal_moderates(
                  CASE WHEN action_comment_id IS NULL THEN 'resorption.sites_write_scope'
                       ELSE 'resorption.actions_write_scope' END, departement_code));
