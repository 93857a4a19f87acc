-- The journal of sites and actions: dated messages with tags and a visibility.
--
-- Two tables, `site_comments` and `action_comments`, rather than one with a parent kind: each
-- has a real foreign key to its parent (ON DELETE CASCADE), its row-level security is the one
-- of its parent table (an EXISTS on it, which inlines the parent's policies), and each is one
-- OGC API collection with the geometry of its own kind of parent (a site's point, an action's
-- footprint). What they share is in the functions below.
--
-- Who reads a message (policy *_read, in PostgreSQL, not in Python):
--   its parent (site or action) is readable by the caller (the parent's row-level security),
--   and its visibility admits the caller:
--     everyone        whoever reads the parent;
--     state_services  the State services of the territory: a user of an organisation of kind
--                     `state_service` (prefecture, DDETS…) of the parent's département;
--     chosen          the organisations (ids) and users (usernames) the author named;
--   its author and the moderators read it whatever its visibility. A hidden message
--   (moderated) is read by its author and the moderators only, with the reason: the others
--   do not see it at all, as on the platform in use today, where a moderated comment leaves
--   the journal.
-- Moderators: national administrators everywhere, local administrators where they may write
-- the parent (their area).
-- Writing: whoever reads the parent writes a message on it, as themself (the write guard sets
-- author, organisation, département and geometry); the author edits and deletes it during
-- `resorption.journal_edit_delay` (an interval set per transaction from the access policy;
-- unset means no delay at all: fail closed); moderators hide it with a reason, or show it
-- again, and change nothing else. Every version is kept (site_comments_history,
-- action_comments_history, by resorption.record_version), read by moderators and the author.
--
-- The transaction settings read here besides the scopes: resorption.user_id,
-- resorption.username, resorption.role, resorption.organisation_id (resorption.policy).

CREATE TYPE resorption.journal_visibility AS ENUM ('everyone', 'state_services', 'chosen');

CREATE TABLE resorption.site_comments (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id                bigint NOT NULL REFERENCES resorption.sites (id) ON DELETE CASCADE,
    -- the parent's département and location when the message was written (write guard)
    departement_code       text NOT NULL REFERENCES resorption.departements (code),
    location               geometry(Point, 4326),
    message                text NOT NULL,
    tags                   text[] NOT NULL DEFAULT '{}',
    visibility             resorption.journal_visibility NOT NULL DEFAULT 'everyone',
    audience_organisations bigint[] NOT NULL DEFAULT '{}',
    audience_users         text[] NOT NULL DEFAULT '{}',
    author_id              bigint,
    organisation_id        bigint REFERENCES resorption.organisations (id),
    hidden                 boolean NOT NULL DEFAULT false,
    hidden_reason          text,
    hidden_by              text,
    hidden_at              timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    created_by             text,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    updated_by             text,
    CONSTRAINT site_comments_message_check CHECK (length(trim(message)) BETWEEN 1 AND 5000),
    CONSTRAINT site_comments_tags_check CHECK (cardinality(tags) <= 10 AND resorption.has_no_duplicates(tags)),
    CONSTRAINT site_comments_audience_check CHECK (
        (visibility = 'chosen') = (cardinality(audience_organisations) + cardinality(audience_users) > 0)),
    CONSTRAINT site_comments_hidden_check CHECK (hidden = (coalesce(trim(hidden_reason), '') <> ''))
);
CREATE INDEX site_comments_site_idx ON resorption.site_comments (site_id, created_at);
CREATE INDEX site_comments_departement_idx ON resorption.site_comments (departement_code, id);

CREATE TABLE resorption.action_comments (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action_id              bigint NOT NULL REFERENCES resorption.actions (id) ON DELETE CASCADE,
    departement_code       text NOT NULL REFERENCES resorption.departements (code),
    location               geometry(MultiPolygon, 4326),
    message                text NOT NULL,
    tags                   text[] NOT NULL DEFAULT '{}',
    visibility             resorption.journal_visibility NOT NULL DEFAULT 'everyone',
    audience_organisations bigint[] NOT NULL DEFAULT '{}',
    audience_users         text[] NOT NULL DEFAULT '{}',
    author_id              bigint,
    organisation_id        bigint REFERENCES resorption.organisations (id),
    hidden                 boolean NOT NULL DEFAULT false,
    hidden_reason          text,
    hidden_by              text,
    hidden_at              timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    created_by             text,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    updated_by             text,
    CONSTRAINT action_comments_message_check CHECK (length(trim(message)) BETWEEN 1 AND 5000),
    CONSTRAINT action_comments_tags_check CHECK (cardinality(tags) <= 10 AND resorption.has_no_duplicates(tags)),
    CONSTRAINT action_comments_audience_check CHECK (
        (visibility = 'chosen') = (cardinality(audience_organisations) + cardinality(audience_users) > 0)),
    CONSTRAINT action_comments_hidden_check CHECK (hidden = (coalesce(trim(hidden_reason), '') <> ''))
);
CREATE INDEX action_comments_action_idx ON resorption.action_comments (action_id, created_at);
CREATE INDEX action_comments_departement_idx ON resorption.action_comments (departement_code, id);

-- Whether the caller moderates the journal of a parent in `departement` (`write_scope`: the
-- setting of the parent's write scope).
CREATE FUNCTION resorption.journal_moderates(write_scope text, departement text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('resorption.role', true), '') = 'national_admin'
        OR (coalesce(current_setting('resorption.role', true), '') = 'local_admin'
            AND resorption.in_scope(write_scope, departement) IS TRUE)
$$;

-- Whether the caller wrote a message.
CREATE FUNCTION resorption.journal_is_author(author bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT author IS NOT NULL
       AND author::text = nullif(current_setting('resorption.user_id', true), '')
$$;

-- Whether a message's visibility admits the caller, on a parent in `departement` (the
-- author and moderators are admitted by the policies themselves).
CREATE FUNCTION resorption.journal_admits(
    departement text, visibility resorption.journal_visibility,
    organisations bigint[], users text[], hidden boolean) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NOT hidden AND CASE visibility
        WHEN 'everyone' THEN true
        WHEN 'state_services' THEN EXISTS (
            SELECT 1 FROM resorption.organisations o
            WHERE o.id::text = nullif(current_setting('resorption.organisation_id', true), '')
              AND o.kind = 'state_service' AND o.departement_code = departement)
        WHEN 'chosen' THEN
            nullif(current_setting('resorption.organisation_id', true), '') = ANY (organisations::text[])
            OR nullif(current_setting('resorption.username', true), '') = ANY (users)
        ELSE false
    END
$$;

-- Whether the author may still change a message written at `written`.
CREATE FUNCTION resorption.journal_within_delay(written timestamptz) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT written > now() - coalesce(nullif(current_setting('resorption.journal_edit_delay', true), ''),
                                      '0')::interval
$$;

-- The write guard of both journals: who writes, where the message lies, and what each may
-- change. Reads the parent as the caller (its row-level security): a parent the caller
-- cannot read takes no message. Only for callers under row-level security (the demo
-- generator and the owner's loaders keep their own values).
CREATE FUNCTION resorption.journal_write_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who text := nullif(current_setting('resorption.username', true), '');
    parent_departement text;
    parent_location geometry;
    moderator boolean;
    author boolean;
BEGIN
    IF NOT row_security_active(TG_RELID) THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF TG_TABLE_NAME = 'site_comments' THEN
            SELECT s.departement_code, s.location INTO parent_departement, parent_location
            FROM resorption.sites s WHERE s.id = NEW.site_id;
        ELSE
            SELECT a.departement_code, a.footprint INTO parent_departement, parent_location
            FROM resorption.actions a WHERE a.id = NEW.action_id;
        END IF;
        IF parent_departement IS NULL THEN
            RAISE foreign_key_violation USING
                MESSAGE = 'parent inconnu',
                COLUMN = CASE WHEN TG_TABLE_NAME = 'site_comments' THEN 'site_id' ELSE 'action_id' END;
        END IF;
        NEW.departement_code := parent_departement;
        NEW.location := parent_location;
        NEW.author_id := nullif(current_setting('resorption.user_id', true), '')::bigint;
        NEW.organisation_id := nullif(current_setting('resorption.organisation_id', true), '')::bigint;
        NEW.hidden := false;
        NEW.hidden_reason := NULL;
        NEW.hidden_by := NULL;
        NEW.hidden_at := NULL;
        NEW.created_by := who;
        NEW.created_at := now();
        NEW.updated_by := who;
        NEW.updated_at := now();
        RETURN NEW;
    END IF;
    moderator := resorption.journal_moderates(
        CASE WHEN TG_TABLE_NAME = 'site_comments' THEN 'resorption.sites_write_scope'
             ELSE 'resorption.actions_write_scope' END, OLD.departement_code);
    author := resorption.journal_is_author(OLD.author_id) AND resorption.journal_within_delay(OLD.created_at);
    IF (NEW.message, NEW.tags, NEW.visibility, NEW.audience_organisations, NEW.audience_users)
       IS DISTINCT FROM (OLD.message, OLD.tags, OLD.visibility, OLD.audience_organisations, OLD.audience_users)
       AND NOT author THEN
        RAISE insufficient_privilege USING
            MESSAGE = 'Vous ne pouvez plus modifier ce message : seul son auteur le peut, pendant le délai prévu.';
    END IF;
    IF (NEW.hidden, NEW.hidden_reason) IS DISTINCT FROM (OLD.hidden, OLD.hidden_reason) THEN
        IF NOT moderator THEN
            RAISE insufficient_privilege USING
                MESSAGE = 'Vous n''avez pas le droit de modérer ce message : seuls les administrateurs le peuvent.';
        END IF;
        NEW.hidden_by := CASE WHEN NEW.hidden THEN who END;
        NEW.hidden_at := CASE WHEN NEW.hidden THEN now() END;
    ELSE
        NEW.hidden_by := OLD.hidden_by;
        NEW.hidden_at := OLD.hidden_at;
    END IF;
    -- What the write guard set stays as it was.
    IF TG_TABLE_NAME = 'site_comments' THEN
        NEW.site_id := OLD.site_id;
    ELSE
        NEW.action_id := OLD.action_id;
    END IF;
    NEW.departement_code := OLD.departement_code;
    NEW.location := OLD.location;
    NEW.author_id := OLD.author_id;
    NEW.organisation_id := OLD.organisation_id;
    NEW.created_by := OLD.created_by;
    NEW.created_at := OLD.created_at;
    NEW.updated_by := who;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER site_comments_write_guard BEFORE INSERT OR UPDATE ON resorption.site_comments
    FOR EACH ROW EXECUTE FUNCTION resorption.journal_write_guard();
CREATE TRIGGER action_comments_write_guard BEFORE INSERT OR UPDATE ON resorption.action_comments
    FOR EACH ROW EXECUTE FUNCTION resorption.journal_write_guard();

ALTER TABLE resorption.site_comments ENABLE ROW LEVEL SECURITY;
CREATE POLICY site_comments_read ON resorption.site_comments FOR SELECT
    USING (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_comments.site_id
                   AND (resorption.journal_is_author(site_comments.author_id)
                        OR resorption.journal_moderates('resorption.sites_write_scope', s.departement_code)
                        OR resorption.journal_admits(s.departement_code, site_comments.visibility,
                                                     site_comments.audience_organisations,
                                                     site_comments.audience_users, site_comments.hidden))));
CREATE POLICY site_comments_insert ON resorption.site_comments FOR INSERT
    WITH CHECK (resorption.journal_is_author(author_id)
                AND EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_comments.site_id));
CREATE POLICY site_comments_update ON resorption.site_comments FOR UPDATE
    USING ((resorption.journal_is_author(author_id) AND resorption.journal_within_delay(created_at))
           OR resorption.journal_moderates('resorption.sites_write_scope', departement_code));
CREATE POLICY site_comments_delete ON resorption.site_comments FOR DELETE
    USING (resorption.journal_is_author(author_id) AND resorption.journal_within_delay(created_at));

ALTER TABLE resorption.action_comments ENABLE ROW LEVEL SECURITY;
CREATE POLICY action_comments_read ON resorption.action_comments FOR SELECT
    USING (EXISTS (SELECT 1 FROM resorption.actions a WHERE a.id = action_comments.action_id
                   AND (resorption.journal_is_author(action_comments.author_id)
                        OR resorption.journal_moderates('resorption.actions_write_scope', a.departement_code)
                        OR resorption.journal_admits(a.departement_code, action_comments.visibility,
                                                     action_comments.audience_organisations,
                                                     action_comments.audience_users, action_comments.hidden))));
CREATE POLICY action_comments_insert ON resorption.action_comments FOR INSERT
    WITH CHECK (resorption.journal_is_author(author_id)
                AND EXISTS (SELECT 1 FROM resorption.actions a WHERE a.id = action_comments.action_id));
CREATE POLICY action_comments_update ON resorption.action_comments FOR UPDATE
    USING ((resorption.journal_is_author(author_id) AND resorption.journal_within_delay(created_at))
           OR resorption.journal_moderates('resorption.actions_write_scope', departement_code));
CREATE POLICY action_comments_delete ON resorption.action_comments FOR DELETE
    USING (resorption.journal_is_author(author_id) AND resorption.journal_within_delay(created_at));

-- History: every version of every message (as sites_history, 080_history.sql), read by the
-- moderators and the author of the message, on a parent they read.
CREATE TABLE resorption.site_comments_history (
    LIKE resorption.site_comments,
    version_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    valid          tstzrange NOT NULL,
    operation      resorption.history_operation NOT NULL,
    changed_by     text,
    changed_fields text[] NOT NULL DEFAULT '{}',
    CONSTRAINT site_comments_history_no_overlap EXCLUDE USING gist (id WITH =, valid WITH &&)
);
CREATE INDEX site_comments_history_id_idx ON resorption.site_comments_history (id);

CREATE TABLE resorption.action_comments_history (
    LIKE resorption.action_comments,
    version_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    valid          tstzrange NOT NULL,
    operation      resorption.history_operation NOT NULL,
    changed_by     text,
    changed_fields text[] NOT NULL DEFAULT '{}',
    CONSTRAINT action_comments_history_no_overlap EXCLUDE USING gist (id WITH =, valid WITH &&)
);
CREATE INDEX action_comments_history_id_idx ON resorption.action_comments_history (id);

CREATE TRIGGER site_comments_history AFTER INSERT OR UPDATE OR DELETE ON resorption.site_comments
    FOR EACH ROW EXECUTE FUNCTION resorption.record_version();
CREATE TRIGGER action_comments_history AFTER INSERT OR UPDATE OR DELETE ON resorption.action_comments
    FOR EACH ROW EXECUTE FUNCTION resorption.record_version();

ALTER TABLE resorption.site_comments_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY site_comments_history_read ON resorption.site_comments_history FOR SELECT
    USING (EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_comments_history.site_id
                   AND (resorption.journal_is_author(site_comments_history.author_id)
                        OR resorption.journal_moderates('resorption.sites_write_scope', s.departement_code))));

ALTER TABLE resorption.action_comments_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY action_comments_history_read ON resorption.action_comments_history FOR SELECT
    USING (EXISTS (SELECT 1 FROM resorption.actions a WHERE a.id = action_comments_history.action_id
                   AND (resorption.journal_is_author(action_comments_history.author_id)
                        OR resorption.journal_moderates('resorption.actions_write_scope', a.departement_code))));
