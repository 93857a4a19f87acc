-- Sign-in throttling per account and per address (resorption/throttle.py says why this design).
--
-- Counters are kept per (username, address) pair, per username across addresses, per address
-- across usernames, and for bad tokens per address; a success clears none of them. (A single
-- counter per address, as at first, locked every user behind an address out after ten
-- failures, and a success from it cleared the count.) Usernames are keyed as typed
-- (lower-cased), whether an account has that name or not: an unknown username goes through
-- exactly the same counters as a known one.
--
-- Like users and tokens, the table is private: the application's login role reaches it only
-- through the SECURITY DEFINER functions below. The rules (allowances, delays) come from the
-- caller as one JSON object, `throttle.RULES_JSON`:
--   {"pair"|"account"|"address"|"token": {"free": n, "base": s, "cap": s},
--    "address_after": n, "forget": s, "known": s, "hold": s, "note": s}

CREATE TABLE resorption.sign_in_counters (
    kind            text NOT NULL CHECK (kind IN ('pair', 'account', 'address', 'token')),
    -- the username as typed, lower-cased ('' for the address and token counters)
    username        text NOT NULL DEFAULT '',
    -- the client's address, an IPv6 one as its /64 ('' for the account counters)
    address         text NOT NULL DEFAULT '',
    -- failures since the counter was last forgotten (`forget` seconds after its last failure)
    failures        integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    last_failure_at timestamptz,
    -- no attempt governed by this counter before this instant: a backoff after a failure, or
    -- a short hold while one attempt is being checked (no burst of parallel guesses)
    blocked_until   timestamptz NOT NULL DEFAULT '-infinity',
    -- pairs only: the last time this account signed in from this address (a known address)
    last_success_at timestamptz,
    -- the row goes after this instant (failures forgotten, address no longer known)
    forget_at       timestamptz NOT NULL,
    PRIMARY KEY (kind, username, address),
    CHECK ((kind IN ('pair', 'account')) = (username <> '')),
    CHECK ((kind IN ('pair', 'address', 'token')) = (address <> ''))
);
CREATE INDEX ON resorption.sign_in_counters (forget_at);

-- How long to wait after the n-th failure of a counter: nothing up to the rule's allowance
-- ("free"), then "base" seconds doubling with each failure, at most "cap" seconds.
CREATE FUNCTION resorption.sign_in_delay(p_failures integer, p_rule jsonb) RETURNS interval
LANGUAGE sql IMMUTABLE SET search_path = resorption, pg_temp AS $$
    SELECT CASE WHEN p_failures <= (p_rule->>'free')::integer THEN interval '0'
                ELSE make_interval(secs => least(
                    (p_rule->>'cap')::integer,
                    (p_rule->>'base')::integer
                        * power(2, least(p_failures - (p_rule->>'free')::integer - 1, 30))))
           END
$$;

-- May this password attempt be checked now? Returns the seconds to wait (0: go on), the
-- counters this attempt holds while it is checked, and whether a success should be noted.
-- Which counters govern the attempt:
--   the pair (username, address), always;
--   the username across addresses, unless the account signed in from this address lately;
--   the address across usernames, when this username already failed `address_after` times
--   from it (and the account did not sign in from it lately): other accounts' valid
--   credentials, or a single typing mistake, never wait for it.
-- A counter already in backoff is held for `hold` seconds by the attempt that passes, so that
-- parallel attempts wait for its answer instead of all being checked at once.
CREATE FUNCTION resorption.password_sign_in_gate(p_username text, p_address text, p_rules jsonb)
RETURNS TABLE (wait_seconds integer, held text[], note_success boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    forget constant interval := make_interval(secs => (p_rules->>'forget')::integer);
    pair sign_in_counters;
    known boolean;
    governing text[] := ARRAY['pair'];
    blocked timestamptz;
    due text[];
    taken text[];
BEGIN
    SELECT * INTO pair FROM sign_in_counters c
    WHERE c.kind = 'pair' AND c.username = p_username AND c.address = p_address;
    known := coalesce(pair.last_success_at > now() - make_interval(secs => (p_rules->>'known')::integer), false);
    IF NOT known THEN
        governing := governing || 'account'::text;
        IF pair.failures >= (p_rules->>'address_after')::integer AND pair.last_failure_at > now() - forget THEN
            governing := governing || 'address'::text;
        END IF;
    END IF;

    SELECT max(c.blocked_until),
           array_agg(c.kind) FILTER (WHERE c.last_failure_at > now() - forget
                                       AND c.failures >= (p_rules->c.kind->>'free')::integer)
    INTO blocked, due
    FROM sign_in_counters c
    WHERE (c.kind, c.username, c.address) IN (('pair', p_username, p_address), ('account', p_username, ''),
                                              ('address', '', p_address))
      AND c.kind = ANY (governing);
    IF blocked > now() THEN
        RETURN QUERY SELECT ceil(extract(epoch FROM blocked - now()))::integer, '{}'::text[], false;
        RETURN;
    END IF;

    IF due IS NOT NULL THEN
        -- The next failure would start a wait: this attempt takes the counters for a moment.
        WITH hold AS (
            UPDATE sign_in_counters c
            SET blocked_until = now() + make_interval(secs => (p_rules->>'hold')::integer)
            WHERE (c.kind, c.username, c.address) IN (('pair', p_username, p_address),
                                                      ('account', p_username, ''), ('address', '', p_address))
              AND c.kind = ANY (due) AND c.blocked_until <= now()
            RETURNING c.kind
        )
        SELECT coalesce(array_agg(kind), '{}') INTO taken FROM hold;
        IF cardinality(taken) < cardinality(due) THEN
            -- Another attempt took them first: release ours, wait for its answer.
            UPDATE sign_in_counters c SET blocked_until = now()
            WHERE (c.kind, c.username, c.address) IN (('pair', p_username, p_address),
                                                      ('account', p_username, ''), ('address', '', p_address))
              AND c.kind = ANY (taken);
            RETURN QUERY SELECT (p_rules->>'hold')::integer, '{}'::text[], false;
            RETURN;
        END IF;
    END IF;

    RETURN QUERY SELECT 0, coalesce(taken, '{}'),
        pair.last_success_at IS NULL
        OR pair.last_success_at < now() - make_interval(secs => (p_rules->>'note')::integer);
END $$;

-- A wrong password (or an unknown or inactive username): one more failure for the pair, the
-- username and the address, each starting its backoff now. Old counters of everyone go.
CREATE FUNCTION resorption.record_password_failure(p_username text, p_address text, p_rules jsonb)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    DELETE FROM sign_in_counters WHERE forget_at < now();
    INSERT INTO sign_in_counters AS c (kind, username, address, failures, last_failure_at, blocked_until, forget_at)
    SELECT k.kind, k.username, k.address, 1, now(), now() + sign_in_delay(1, p_rules->k.kind),
           now() + make_interval(secs => (p_rules->>'forget')::integer)
    FROM (VALUES ('pair', p_username, p_address), ('account', p_username, ''), ('address', '', p_address))
         AS k (kind, username, address)
    ON CONFLICT (kind, username, address) DO UPDATE SET
        failures = CASE WHEN c.last_failure_at > now() - make_interval(secs => (p_rules->>'forget')::integer)
                        THEN c.failures + 1 ELSE 1 END,
        last_failure_at = now(),
        blocked_until = now() + sign_in_delay(
            CASE WHEN c.last_failure_at > now() - make_interval(secs => (p_rules->>'forget')::integer)
                 THEN c.failures + 1 ELSE 1 END,
            p_rules->c.kind),
        forget_at = greatest(c.forget_at, now() + make_interval(secs => (p_rules->>'forget')::integer))
$$;

-- A right password: release the counters the attempt held (a hold, not a backoff: a backoff
-- is never shorter than `base` > `hold`), and note that the account signs in from this
-- address. The failures stay counted. A sign-in with a password is a sign-in whatever the
-- client (a browser, or QGIS and scripts with HTTP Basic): the inactivity of an account
-- (resorption comptes entretien) counts from the last one, noted here at most once an hour.
CREATE FUNCTION resorption.record_password_success(
    p_username text, p_address text, p_held text[], p_rules jsonb)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    UPDATE sign_in_counters c SET blocked_until = now()
    WHERE (c.kind, c.username, c.address) IN (('pair', p_username, p_address), ('account', p_username, ''),
                                              ('address', '', p_address))
      AND c.kind = ANY (p_held)
      AND c.blocked_until <= now() + make_interval(secs => (p_rules->>'hold')::integer);
    INSERT INTO sign_in_counters AS c (kind, username, address, last_success_at, forget_at)
    VALUES ('pair', p_username, p_address, now(), now() + make_interval(secs => (p_rules->>'known')::integer))
    ON CONFLICT (kind, username, address) DO UPDATE SET
        last_success_at = now(),
        forget_at = greatest(c.forget_at, now() + make_interval(secs => (p_rules->>'known')::integer));
    UPDATE users SET last_sign_in_at = now(), inactivity_warned_at = NULL
    WHERE username = p_username AND active
      AND (last_sign_in_at IS NULL OR last_sign_in_at < now() - interval '1 hour')
$$;

-- A bad API token, JWT or malformed header from an address. While the address waits, the
-- failure is not counted and the seconds left are returned (the caller answers 429); else it
-- is counted, its backoff starts, and 0 is returned (the caller answers 401). Valid tokens
-- are never held back by this counter (the caller looks them up first).
CREATE FUNCTION resorption.record_token_failure(p_address text, p_rules jsonb) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    forget constant interval := make_interval(secs => (p_rules->>'forget')::integer);
    blocked timestamptz;
BEGIN
    SELECT c.blocked_until INTO blocked FROM sign_in_counters c
    WHERE c.kind = 'token' AND c.username = '' AND c.address = p_address;
    IF blocked > now() THEN
        RETURN ceil(extract(epoch FROM blocked - now()))::integer;
    END IF;
    DELETE FROM sign_in_counters WHERE forget_at < now();
    INSERT INTO sign_in_counters AS c (kind, address, failures, last_failure_at, blocked_until, forget_at)
    VALUES ('token', p_address, 1, now(), now() + sign_in_delay(1, p_rules->'token'), now() + forget)
    ON CONFLICT (kind, username, address) DO UPDATE SET
        failures = CASE WHEN c.last_failure_at > now() - forget THEN c.failures + 1 ELSE 1 END,
        last_failure_at = now(),
        blocked_until = now() + sign_in_delay(
            CASE WHEN c.last_failure_at > now() - forget THEN c.failures + 1 ELSE 1 END, p_rules->'token'),
        forget_at = greatest(c.forget_at, now() + forget);
    RETURN 0;
END $$;

REVOKE ALL ON FUNCTION resorption.password_sign_in_gate, resorption.record_password_failure,
    resorption.record_password_success, resorption.record_token_failure FROM PUBLIC;
