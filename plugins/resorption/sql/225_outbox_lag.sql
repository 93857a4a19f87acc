-- The outbox's lag, for the metrics (/metrics, README « Exploitation »): for each publisher
-- (a row of outbox_cursors), how many events it has not confirmed yet and how old the oldest
-- of them is. An event is confirmed once the publisher's position is past it: in a window
-- before `since`, or in [since, until) at or below `last_id` (sql/210_outbox.sql). The login
-- role may not read the outbox: this function counts for it, and names no event and no item.
CREATE FUNCTION resorption.outbox_lag()
RETURNS TABLE (publisher text, events bigint, seconds double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT c.name, count(o.id),
           greatest(coalesce(extract(epoch FROM now() - min(o.at)), 0), 0)::double precision
    FROM outbox_cursors c
    LEFT JOIN outbox o ON o.xact >= c.since AND NOT (o.xact < c.until AND o.id <= c.last_id)
    GROUP BY c.name
    ORDER BY c.name
$$;
REVOKE ALL ON FUNCTION resorption.outbox_lag() FROM PUBLIC;
