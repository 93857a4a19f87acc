"""The outbox of events (issue 14): the tables `outbox` and `outbox_cursors`, the triggers that
write an event in the same transaction as every change of sites, actions, journal messages,
actors, indicators and finances (and of accounts, for the broker's access lists), and the
functions readers use (`outbox_horizon`, `outbox_page`), as in sql/210_outbox.sql.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-02

On a new database the baseline made all this already: every statement here leaves it as it is
(IF NOT EXISTS, OR REPLACE).
"""

from resorption.migrate import run_sql

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- The outbox: every committed change becomes an event, written in the same transaction as the
-- change by the AFTER ROW triggers below, whatever the path (API, forms, processes, imports,
-- harvest). The publisher (resorption.publisher: MQTT) and the Server-Sent Events
-- (resorption.api.events) read it; a rolled-back change never commits its event.
--
-- An event carries ids and field names, never values: subscribers fetch through the API under
-- their own rights. Only the owner reads the table (privileges.PRIVATE_TABLES); the web app
-- reads pages of it through `outbox_page` (SECURITY DEFINER) and filters each event by the
-- caller's scope and rights before delivering it.
--
-- Reading without skipping. Identity values are taken before commit, so a transaction still
-- in flight may hold a smaller id than one already committed: a reader that kept only "the last
-- id seen" would skip it when it commits. Each event records its transaction (`xact`), and
-- readers take the events by windows of transaction ids: [since, until) where `until` was the
-- oldest transaction still running (pg_snapshot_xmin) when the window was opened. Every
-- transaction below it has ended, so the window is complete and never grows; each window is
-- read in id order. A reader's position is (since, until, last id) — the publisher keeps it in
-- `outbox_cursors` (a restart resumes there), an SSE client in its Last-Event-ID.
CREATE TABLE IF NOT EXISTS resorption.outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- the writing transaction
    xact         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- sites, actions, site_comments, action_comments; `accounts` for the broker's sync
    collection   text NOT NULL,
    item_id      bigint NOT NULL,
    operation    text NOT NULL CHECK (operation IN ('create', 'update', 'delete')),
    -- the changed columns (or `actors`, `indicators`, `finances` for a site's or an action's
    -- parts); names, never values
    fields       text[] NOT NULL DEFAULT '{}',
    departements text[] NOT NULL DEFAULT '{}',
    -- whether everyone who reads the collection in these départements reads the item (a
    -- journal message of restricted visibility, or hidden, is not): MQTT topics are per
    -- territory, so only such events go there
    open         boolean NOT NULL DEFAULT true,
    -- the site or action a journal message belongs to
    parent_id    bigint,
    -- the item's version (site_changes, action_changes) after the change
    version_id   bigint,
    at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS outbox_xact_idx ON resorption.outbox (xact, id);
CREATE INDEX IF NOT EXISTS outbox_at_idx ON resorption.outbox (at);
ALTER TABLE resorption.outbox ENABLE ROW LEVEL SECURITY;

-- Where each publisher is: the window it reads and the last id it confirmed in it.
CREATE TABLE IF NOT EXISTS resorption.outbox_cursors (
    name       text PRIMARY KEY,
    since      xid8 NOT NULL,
    until      xid8 NOT NULL,
    last_id    bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE resorption.outbox_cursors ENABLE ROW LEVEL SECURITY;

-- One event for the row a trigger fired on. TG_ARGV[0] names the collection; for the parts of
-- a site or an action (actors, indicators, finances) TG_ARGV[1] names the part and the event
-- is the parent's update. Runs as the owner (the writers may not insert into the outbox), with
-- a fixed search_path so that a caller's objects cannot stand in for ours.
CREATE OR REPLACE FUNCTION resorption.record_event() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    collection text := TG_ARGV[0];
    part text := CASE WHEN TG_NARGS > 1 THEN TG_ARGV[1] END;
    row_new jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    row_old jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    current jsonb := coalesce(row_new, row_old);
    op text := CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'UPDATE' THEN 'update' ELSE 'delete' END;
    changed text[] := '{}';
    item bigint;
    places text[];
    is_open boolean := true;
    parent bigint;
    version bigint;
BEGIN
    IF part IS NOT NULL THEN
        -- a part of a site (actors) or of an action (indicators, finances): the parent changed
        item := (current ->> CASE collection WHEN 'sites' THEN 'site_id' ELSE 'action_id' END)::bigint;
        op := 'update';
        changed := ARRAY[part];
    ELSE
        item := (current ->> 'id')::bigint;
        IF TG_OP = 'UPDATE' THEN
            SELECT coalesce(array_agg(n.key ORDER BY n.key), '{}') INTO changed
            FROM jsonb_each(row_new) n
            WHERE n.value IS DISTINCT FROM row_old -> n.key
              AND n.key NOT IN ('updated_at', 'updated_by');
            IF cardinality(changed) = 0 THEN
                RETURN NULL;  -- nothing anyone could see changed
            END IF;
        END IF;
    END IF;

    IF collection = 'sites' THEN
        places := ARRAY(SELECT DISTINCT d FROM unnest(ARRAY[row_old ->> 'departement_code',
                                                           row_new ->> 'departement_code']) d
                        WHERE d IS NOT NULL);
        IF part IS NOT NULL THEN
            places := ARRAY(SELECT departement_code FROM sites WHERE id = item);
        END IF;
        version := (SELECT h.version_id FROM sites_history h WHERE h.id = item AND upper_inf(h.valid));
    ELSIF collection = 'actions' THEN
        -- every département of the action, read as the owner: the caller's scope must not
        -- decide what is recorded
        places := ARRAY(SELECT DISTINCT d FROM (
                            SELECT ad.departement_code FROM action_departements ad WHERE ad.action_id = item
                            UNION SELECT row_old ->> 'departement_code'
                            UNION SELECT row_new ->> 'departement_code') AS x (d)
                        WHERE d IS NOT NULL ORDER BY d);
        IF part IS NULL THEN
            version := (SELECT h.version_id FROM actions_history h WHERE h.id = item AND upper_inf(h.valid));
        END IF;
    ELSE
        -- a journal message: where its parent was when it was written; open when everyone
        -- reading the journal there reads it
        places := ARRAY[current ->> 'departement_code'];
        parent := (current ->> CASE collection WHEN 'site_comments' THEN 'site_id'
                                               ELSE 'action_id' END)::bigint;
        is_open := current ->> 'visibility' = 'everyone' AND NOT (current ->> 'hidden')::boolean
                   AND (row_old IS NULL OR (row_old ->> 'visibility' = 'everyone'
                                            AND NOT (row_old ->> 'hidden')::boolean));
    END IF;

    INSERT INTO outbox (collection, item_id, operation, fields, departements, open, parent_id, version_id)
    VALUES (collection, item, op, changed, coalesce(places, '{}'), is_open, parent, version);
    PERFORM pg_notify('resorption_outbox', '');
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION resorption.record_event FROM PUBLIC;

-- Named after the history triggers (`*_history` < `*_outbox`): AFTER ROW triggers fire in name
-- order, so the version the event links to is already written.
CREATE OR REPLACE TRIGGER sites_outbox AFTER INSERT OR UPDATE OR DELETE ON resorption.sites
    FOR EACH ROW EXECUTE FUNCTION resorption.record_event('sites');
CREATE OR REPLACE TRIGGER actions_outbox AFTER INSERT OR UPDATE OR DELETE ON resorption.actions
    FOR EACH ROW EXECUTE FUNCTION resorption.record_event('actions');
CREATE OR REPLACE TRIGGER site_comments_outbox AFTER INSERT OR UPDATE OR DELETE ON resorption.site_comments
    FOR EACH ROW EXECUTE FUNCTION resorption.record_event('site_comments');
CREATE OR REPLACE TRIGGER action_comments_outbox AFTER INSERT OR UPDATE OR DELETE
    ON resorption.action_comments FOR EACH ROW
    EXECUTE FUNCTION resorption.record_event('action_comments');
CREATE OR REPLACE TRIGGER site_actors_outbox AFTER INSERT OR UPDATE OR DELETE ON resorption.site_actors
    FOR EACH ROW EXECUTE FUNCTION resorption.record_event('sites', 'actors');
CREATE OR REPLACE TRIGGER action_indicators_outbox AFTER INSERT OR UPDATE OR DELETE
    ON resorption.action_indicators FOR EACH ROW
    EXECUTE FUNCTION resorption.record_event('actions', 'indicators');
CREATE OR REPLACE TRIGGER action_finances_outbox AFTER INSERT OR UPDATE OR DELETE
    ON resorption.action_finances FOR EACH ROW
    EXECUTE FUNCTION resorption.record_event('actions', 'finances');

-- Accounts: what the broker's access lists derive from (a user's role, options, area, whether
-- active; their tokens). The publisher syncs the broker on these events, whichever path
-- changed the account (command line, web pages, SQL).
CREATE OR REPLACE FUNCTION resorption.record_account_event() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    user_id bigint := (to_jsonb(coalesce(NEW, OLD))
                       ->> CASE TG_TABLE_NAME WHEN 'users' THEN 'id' ELSE 'user_id' END)::bigint;
BEGIN
    IF TG_TABLE_NAME = 'api_tokens' AND TG_OP = 'UPDATE'
       AND to_jsonb(NEW) - 'last_used_at' = to_jsonb(OLD) - 'last_used_at' THEN
        RETURN NULL;  -- last_used_at: nothing the broker knows
    END IF;
    INSERT INTO outbox (collection, item_id, operation, open)
    VALUES ('accounts', user_id,
            CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'UPDATE' THEN 'update' ELSE 'delete' END, false);
    PERFORM pg_notify('resorption_outbox', '');
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION resorption.record_account_event FROM PUBLIC;

CREATE OR REPLACE TRIGGER users_outbox
    AFTER INSERT OR DELETE OR UPDATE OF role, options, area_level, area_code, active
    ON resorption.users FOR EACH ROW EXECUTE FUNCTION resorption.record_account_event();
CREATE OR REPLACE TRIGGER api_tokens_outbox AFTER INSERT OR UPDATE OR DELETE ON resorption.api_tokens
    FOR EACH ROW EXECUTE FUNCTION resorption.record_account_event();

-- The horizon of the readers: every transaction below it has ended.
CREATE OR REPLACE FUNCTION resorption.outbox_horizon() RETURNS xid8
LANGUAGE sql VOLATILE AS $$
    SELECT pg_snapshot_xmin(pg_current_snapshot())
$$;

-- A page of the window [since, until) after `after`, in id order (the events of data only: the
-- accounts are the publisher's business). For the web app's Server-Sent Events, which filter
-- each event by the caller's scope and rights before delivering it: the login role calls it as
-- itself (privileges.APP_FUNCTIONS), no role of a request does. An event names no value.
CREATE OR REPLACE FUNCTION resorption.outbox_page(since xid8, until xid8, after bigint, max integer)
RETURNS TABLE (id bigint, collection text, item_id bigint, operation text, fields text[],
               departements text[], open boolean, parent_id bigint, version_id bigint, at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT o.id, o.collection, o.item_id, o.operation, o.fields, o.departements, o.open, o.parent_id,
           o.version_id, o.at
    FROM outbox o
    WHERE o.xact >= since AND o.xact < until AND o.id > after AND o.collection <> 'accounts'
    ORDER BY o.id
    LIMIT least(max, 1000)
$$;
REVOKE ALL ON FUNCTION resorption.outbox_page FROM PUBLIC;
"""


def upgrade() -> None:
    run_sql(UPGRADE)


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
