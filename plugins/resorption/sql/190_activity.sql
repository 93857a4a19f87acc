-- The activity feed (collection `activity`, page /activites): what happened in the reader's
-- territory, newest first. One row per event, read from the sources themselves:
--   sites_history            site_created, site_updated, site_closed, site_reopened,
--                            site_confirmed, site_deleted
--   actions_history          action_created, action_updated, action_deleted
--   action_indicators_history  action_results (an indicator snapshot recorded or changed)
--   action_finances_history  action_finances (only for those who read the finances: its RLS)
--   site_comments, action_comments  comment (a message of the journal, not hidden)
--   site_actors              actor_declared
--
-- Who sees an event is decided by PostgreSQL alone: the view reads as the caller
-- (security_invoker), so the row-level security of every source (the scope of sites and
-- actions, the visibility of journal messages, the finances) and its column privileges apply
-- to the caller, and PostgreSQL evaluates those policies before any condition of the query
-- that is not leakproof: a filter that fails on some rows never meets an event the caller may
-- not see (no error oracle, as site_changes, 080_history.sql). Nothing here is SECURITY
-- DEFINER. An event carries names, never sensitive values: the changed fields of a version are
-- the names the caller may read (has_column_privilege), and an update that changed none of
-- them is no event for that caller.
--
-- Paging newest first without sorting every event: the id is `activity_key(when, source, key)`,
-- a text that sorts ascending from the newest event to the oldest, and each source has an
-- index on it (a stored column of the histories, below), so that `ORDER BY id LIMIT n` (the reader's default order and
-- keyset paging) merges the sources' indexes and stops after n rows (Merge Append) instead of
-- reading every version of every site. The view is therefore not a security_barrier: a barrier
-- would keep the order from reaching the sources (measured with 100,000 sites: a page of a
-- département in 10 s with a barrier, 0.15 s without); it needs none, since it reads nothing
-- with rights other than the caller's (the policies of the sources come first).
--
-- The feed is also the shape of the events notifications will carry (issue 14): kind, when,
-- subject ids, territory, author, field names.

-- The id of an event: resorption.activity_key (080_history.sql).

-- The fields among `fields` that the caller may read on `history` (names only).
CREATE FUNCTION resorption.readable_fields(history regclass, fields text[]) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(f ORDER BY i), '{}')
    FROM unnest(fields) WITH ORDINALITY AS u (f, i)
    WHERE has_column_privilege(history, f, 'SELECT')
$$;

-- The versions keep their event id in a stored column (activity_id, 080_history.sql and
-- 170_action_results.sql). A condition on an expression of a row (activity_key(lower(valid),
-- …)) is not leakproof: under row-level security, PostgreSQL runs it only after the policies,
-- so never as an index condition, and a page of a period (`datetime`, the weekly digests) read
-- every version of every site (7 s at 1,000,000 sites). `activity_id >= …` compares a column
-- with leakproof operators: the index reads the period only.
CREATE INDEX sites_history_activity_idx ON resorption.sites_history (activity_id);
CREATE INDEX actions_history_activity_idx ON resorption.actions_history (activity_id);
CREATE INDEX action_indicators_history_activity_idx ON resorption.action_indicators_history (activity_id);
CREATE INDEX action_finances_history_activity_idx ON resorption.action_finances_history (activity_id);
CREATE INDEX site_comments_activity_idx
    ON resorption.site_comments (resorption.activity_key(created_at, 'c', id));
CREATE INDEX action_comments_activity_idx
    ON resorption.action_comments (resorption.activity_key(created_at, 'm', id));

-- What kind of event a version of a site is.
CREATE FUNCTION resorption.site_event_kind(
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

-- The French summary of an event, from its kind and how many fields it names.
CREATE FUNCTION resorption.activity_summary(kind text, fields integer) RETURNS text
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

CREATE INDEX site_actors_activity_idx
    ON resorption.site_actors (resorption.activity_key(declared_at, 'r', id));
-- A filter by kind reads the versions of sites of that kind only, still newest first; a filter
-- by date (`datetime`) may read the versions of its period only (then sort them).
CREATE INDEX sites_history_activity_kind_idx ON resorption.sites_history (
    resorption.site_event_kind(operation, changed_fields, status), activity_id);
CREATE INDEX sites_history_at_idx ON resorption.sites_history (lower(valid));
CREATE INDEX actions_history_at_idx ON resorption.actions_history (lower(valid));
CREATE INDEX site_comments_at_idx ON resorption.site_comments (created_at);

-- Each branch reads ONE table, without a WHERE of its own (what the parent's subject, territory
-- and name need comes from scalar subqueries, evaluated for the rows returned only, under the
-- caller's row-level security too; whether a row is an event is its column `shown`, tested
-- once outside): PostgreSQL then plans the UNION ALL as one append of the branches and merges
-- their indexes in id order. (A branch with a join or a WHERE would be planned apart, in no
-- order, and every event sorted.)
CREATE VIEW resorption.activity WITH (security_invoker = true) AS
SELECT e.id, e.kind, e.at, e.subject, e.site_id, e.site_name, e.action_id, e.action_name,
       e.departement_code, e.region_code, e.author, e.organisation, e.fields, e.summary, e.location
FROM (
SELECT h.activity_id AS id,
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
       -- a change of fields the caller may not read is no event for the caller
       NOT (resorption.site_event_kind(h.operation, h.changed_fields, h.status) = 'site_updated'
            AND cardinality(resorption.readable_fields('resorption.sites_history', h.changed_fields)) = 0)
           AS shown
FROM resorption.sites_history h
UNION ALL
SELECT h.activity_id,
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
SELECT i.activity_id,
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
SELECT f.activity_id,
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
       -- `WHERE e.shown` below becomes, in this branch, a condition on no row: PostgreSQL
       -- tests it once before reading the branch (a one-time filter). A role that does not read
       -- the finances then skips them, where the policy alone walked every version of every
       -- finance line to find none (67,030 versions, 50 ms, for a département's first page).
       has_table_privilege('resorption.action_finances', 'SELECT')
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
       -- a moderated message is no event, even for who still reads it
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
