-- Audit rows of sensitive reads, written in batches (resorption/read_audit.py): each worker
-- queues the rows of its reads, with their time and their user, and writes them in one
-- statement. The login role may call it, as it calls resorption.audit; the rows name the user
-- the application authenticated, exactly like the settings resorption.audit reads.
CREATE FUNCTION resorption.audit_reads(entries jsonb)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    INSERT INTO audit_log (at, user_id, username, role, action, collection, item_id, groups, method,
                           path, client, detail)
    SELECT e.at, e.user_id, e.username, e.role, 'read', e.collection, e.item_id,
           coalesce(e.groups, '{}'), e.method, e.path, e.client, e.detail
    FROM jsonb_to_recordset(entries) AS e(
        at timestamptz, user_id bigint, username text, role text, collection text, item_id text,
        groups text[], method text, path text, client text, detail jsonb)
$$;

REVOKE ALL ON FUNCTION resorption.audit_reads(jsonb) FROM PUBLIC;
