-- The key that seals the positions of the Server-Sent Events (resorption.api.events). A
-- position names outbox ids and transaction ids, which count every change of every territory:
-- sent in clear as an event's id, the gap between two ids a reader receives would tell how much
-- changed where they may not look. Sealed (authenticated encryption), it tells nothing and
-- cannot be forged. One key per database, made here, so that every worker and every server of
-- a deployment reads the same; readable only through stream_key() (revision 0028).
CREATE TABLE resorption.stream_key (
    single boolean PRIMARY KEY DEFAULT true CHECK (single),
    secret text NOT NULL
);
INSERT INTO resorption.stream_key (secret)
VALUES (encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'hex'));

CREATE FUNCTION resorption.stream_key() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT secret FROM resorption.stream_key
$$;
REVOKE ALL ON FUNCTION resorption.stream_key() FROM PUBLIC;
