"""The activity feed: the view `activity`, its key and the indexes that page it newest first.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02

`activity_key()`, `readable_fields()`, `site_event_kind()`, `activity_summary()`, one index per
source on the key of its events (and on kind and time), and the view `activity`
(security_invoker) over the histories of sites and actions, the results of actions, the
journals and the actors of sites (sql/190_activity.sql). On a new database the baseline made
all this already: every statement here leaves it as it is.
"""

from resorption.migrate import run_sql

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE OR REPLACE FUNCTION resorption.activity_key(at timestamptz, source text, key bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lpad((4102444800000000 - floor(extract(epoch FROM at) * 1000000))::bigint::text, 16, '0')
           || source || key::text
$$;
CREATE OR REPLACE FUNCTION resorption.readable_fields(history regclass, fields text[]) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(f ORDER BY i), '{}')
    FROM unnest(fields) WITH ORDINALITY AS u (f, i)
    WHERE has_column_privilege(history, f, 'SELECT')
$$;
CREATE INDEX IF NOT EXISTS sites_history_activity_idx
    ON resorption.sites_history (resorption.activity_key(lower(valid), 's', version_id));
CREATE INDEX IF NOT EXISTS actions_history_activity_idx
    ON resorption.actions_history (resorption.activity_key(lower(valid), 'a', version_id));
CREATE INDEX IF NOT EXISTS action_indicators_history_activity_idx
    ON resorption.action_indicators_history (resorption.activity_key(lower(valid), 'i', version_id));
CREATE INDEX IF NOT EXISTS action_finances_history_activity_idx
    ON resorption.action_finances_history (resorption.activity_key(lower(valid), 'f', version_id));
CREATE INDEX IF NOT EXISTS site_comments_activity_idx
    ON resorption.site_comments (resorption.activity_key(created_at, 'c', id));
CREATE INDEX IF NOT EXISTS action_comments_activity_idx
    ON resorption.action_comments (resorption.activity_key(created_at, 'm', id));
CREATE OR REPLACE FUNCTION resorption.site_event_kind(
    operation resorption.history_operation, fields text[], status resorption.site_status) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE operation
               WHEN 'insert' THEN 'site_created'
               WHEN 'confirm' THEN 'site_confirmed'
               WHEN 'delete' THEN 'site_deleted'
               ELSE CASE WHEN 'status' = ANY (fields) AND status <> 'open' THEN 'site_closed'
                         WHEN 'status' = ANY (fields) THEN 'site_reopened'
                         ELSE 'site_updated' END
           END
$$;
CREATE OR REPLACE FUNCTION resorption.activity_summary(kind text, fields integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE kind
               WHEN 'site_created' THEN 'Nouveau site déclaré'
               WHEN 'site_closed' THEN 'Site fermé'
               WHEN 'site_reopened' THEN 'Site rouvert'
               WHEN 'site_confirmed' THEN 'Site confirmé « toujours d''actualité »'
               WHEN 'site_deleted' THEN 'Site supprimé'
               WHEN 'site_updated' THEN 'Site modifié : ' || fields
                                         || CASE WHEN fields > 1 THEN ' champs' ELSE ' champ' END
               WHEN 'action_created' THEN 'Nouvelle action'
               WHEN 'action_deleted' THEN 'Action supprimée'
               WHEN 'action_updated' THEN 'Action modifiée : ' || fields
                                           || CASE WHEN fields > 1 THEN ' champs' ELSE ' champ' END
               WHEN 'action_results' THEN 'Indicateurs de l''action enregistrés'
               WHEN 'action_finances' THEN 'Financements de l''action enregistrés'
               WHEN 'comment' THEN 'Nouveau message dans le journal'
               WHEN 'actor_declared' THEN 'Intervenant déclaré'
           END
$$;
CREATE INDEX IF NOT EXISTS site_actors_activity_idx
    ON resorption.site_actors (resorption.activity_key(declared_at, 'r', id));
CREATE INDEX IF NOT EXISTS sites_history_activity_kind_idx ON resorption.sites_history (
    resorption.site_event_kind(operation, changed_fields, status),
    resorption.activity_key(lower(valid), 's', version_id));
CREATE INDEX IF NOT EXISTS sites_history_at_idx ON resorption.sites_history (lower(valid));
CREATE INDEX IF NOT EXISTS actions_history_at_idx ON resorption.actions_history (lower(valid));
CREATE INDEX IF NOT EXISTS site_comments_at_idx ON resorption.site_comments (created_at);
CREATE OR REPLACE VIEW resorption.activity WITH (security_invoker = true) AS
SELECT e.id, e.kind, e.at, e.subject, e.site_id, e.site_name, e.action_id, e.action_name,
       e.departement_code, e.region_code, e.author, e.organisation, e.fields, e.summary, e.location
FROM (
SELECT resorption.activity_key(lower(h.valid), 's', h.version_id) AS id,
       resorption.site_event_kind(h.operation, h.changed_fields, h.status) AS kind,
       lower(h.valid) AS at,
       'site'::text AS subject,
       h.id AS site_id,
       h.name::text AS site_name,
       NULL::bigint AS action_id,
       NULL::text AS action_name,
       h.departement_code,
       h.region_code,
       h.changed_by AS author,
       NULL::text AS organisation,
       resorption.readable_fields('resorption.sites_history', h.changed_fields) AS fields,
       resorption.activity_summary(
           resorption.site_event_kind(h.operation, h.changed_fields, h.status),
           cardinality(resorption.readable_fields('resorption.sites_history', h.changed_fields))) AS summary,
       h.location::geometry AS location,
       NOT (resorption.site_event_kind(h.operation, h.changed_fields, h.status) = 'site_updated'
            AND cardinality(resorption.readable_fields('resorption.sites_history', h.changed_fields)) = 0)
           AS shown
FROM resorption.sites_history h
UNION ALL
SELECT resorption.activity_key(lower(h.valid), 'a', h.version_id),
       CASE h.operation WHEN 'insert' THEN 'action_created' WHEN 'delete' THEN 'action_deleted'
            ELSE 'action_updated' END,
       lower(h.valid),
       'action'::text,
       NULL::bigint,
       NULL::text,
       h.id,
       h.name,
       h.departement_code,
       (SELECT d.region_code FROM resorption.departements d WHERE d.code = h.departement_code),
       h.changed_by,
       NULL::text,
       resorption.readable_fields('resorption.actions_history', h.changed_fields),
       resorption.activity_summary(
           CASE h.operation WHEN 'insert' THEN 'action_created' WHEN 'delete' THEN 'action_deleted'
                ELSE 'action_updated' END,
           cardinality(resorption.readable_fields('resorption.actions_history', h.changed_fields))),
       ST_PointOnSurface(h.footprint),
       NOT (h.operation IN ('update', 'confirm')
            AND cardinality(resorption.readable_fields('resorption.actions_history', h.changed_fields)) = 0)
FROM resorption.actions_history h
UNION ALL
SELECT resorption.activity_key(lower(i.valid), 'i', i.version_id),
       'action_results'::text,
       lower(i.valid),
       'action'::text,
       NULL::bigint,
       NULL::text,
       i.action_id,
       (SELECT a.name FROM resorption.actions a WHERE a.id = i.action_id),
       (SELECT a.departement_code FROM resorption.actions a WHERE a.id = i.action_id),
       (SELECT d.region_code FROM resorption.actions a
        JOIN resorption.departements d ON d.code = a.departement_code WHERE a.id = i.action_id),
       i.changed_by,
       NULL::text,
       '{}'::text[],
       resorption.activity_summary('action_results', 0),
       (SELECT ST_PointOnSurface(a.footprint) FROM resorption.actions a WHERE a.id = i.action_id),
       true
FROM resorption.action_indicators_history i
UNION ALL
SELECT resorption.activity_key(lower(f.valid), 'f', f.version_id),
       'action_finances'::text,
       lower(f.valid),
       'action'::text,
       NULL::bigint,
       NULL::text,
       f.action_id,
       (SELECT a.name FROM resorption.actions a WHERE a.id = f.action_id),
       (SELECT a.departement_code FROM resorption.actions a WHERE a.id = f.action_id),
       (SELECT d.region_code FROM resorption.actions a
        JOIN resorption.departements d ON d.code = a.departement_code WHERE a.id = f.action_id),
       f.changed_by,
       NULL::text,
       '{}'::text[],
       resorption.activity_summary('action_finances', 0),
       (SELECT ST_PointOnSurface(a.footprint) FROM resorption.actions a WHERE a.id = f.action_id),
       true
FROM resorption.action_finances_history f
UNION ALL
SELECT resorption.activity_key(c.created_at, 'c', c.id),
       'comment'::text,
       c.created_at,
       'site'::text,
       c.site_id,
       (SELECT s.name::text FROM resorption.sites s WHERE s.id = c.site_id),
       NULL::bigint,
       NULL::text,
       c.departement_code,
       (SELECT d.region_code FROM resorption.departements d WHERE d.code = c.departement_code),
       c.created_by,
       (SELECT o.name FROM resorption.organisations o WHERE o.id = c.organisation_id),
       '{}'::text[],
       resorption.activity_summary('comment', 0),
       c.location::geometry,
       NOT c.hidden
FROM resorption.site_comments c
UNION ALL
SELECT resorption.activity_key(c.created_at, 'm', c.id),
       'comment'::text,
       c.created_at,
       'action'::text,
       NULL::bigint,
       NULL::text,
       c.action_id,
       (SELECT a.name FROM resorption.actions a WHERE a.id = c.action_id),
       c.departement_code,
       (SELECT d.region_code FROM resorption.departements d WHERE d.code = c.departement_code),
       c.created_by,
       (SELECT o.name FROM resorption.organisations o WHERE o.id = c.organisation_id),
       '{}'::text[],
       resorption.activity_summary('comment', 0),
       ST_PointOnSurface(c.location),
       NOT c.hidden
FROM resorption.action_comments c
UNION ALL
SELECT resorption.activity_key(r.declared_at, 'r', r.id),
       'actor_declared'::text,
       r.declared_at,
       'site'::text,
       r.site_id,
       (SELECT s.name::text FROM resorption.sites s WHERE s.id = r.site_id),
       NULL::bigint,
       NULL::text,
       (SELECT s.departement_code FROM resorption.sites s WHERE s.id = r.site_id),
       (SELECT s.region_code FROM resorption.sites s WHERE s.id = r.site_id),
       r.declared_by,
       (SELECT o.name FROM resorption.organisations o WHERE o.id = r.organisation_id),
       '{}'::text[],
       resorption.activity_summary('actor_declared', 0)
           || coalesce(' : ' || (SELECT coalesce(r.person_name || ' (' || o.name || ')', o.name)
                                 FROM resorption.organisations o WHERE o.id = r.organisation_id), ''),
       (SELECT s.location::geometry FROM resorption.sites s WHERE s.id = r.site_id),
       true
FROM resorption.site_actors r
) e
WHERE e.shown;
"""


def upgrade() -> None:
    run_sql(UPGRADE)


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
