-- Accounts people get and manage themselves (resorption.lifecycle, resorption.web.accounts).
--
-- Access requests, one-time links (activation, password reset: only their SHA-256 kept,
-- expiring, used once), the charter each user accepted, e-mail subscriptions. Every table is
-- private, as users and tokens are: the application's login role reaches them only through
-- the SECURITY DEFINER functions below (privileges.APP_FUNCTIONS), each of which checks inside
-- who acts and where:
-- - the acting user is the transaction's `resorption.user_id`, and must be an active user;
-- - an administrator's reach is `resorption.manage_scope` ('*' the nation, else the codes of
--   départements) and what they may grant `resorption.grantable_roles` / `grantable_options`,
--   all set by `Caller.account()` from the access policy (`manage_users`, `grantable_roles`);
-- - a user is within an administrator's reach when every département of their intervention
--   area is (a national user: only for national administrators).
-- Every e-mail an event causes goes to the outbox (sql/200_mail_outbox.sql) in the event's
-- own transaction; every decision lands in the audit log (collection `users`). The charter
-- accepted, the last sign-in and the inactivity warning are columns of users (sql/050_identity.sql).
CREATE TABLE resorption.access_requests (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    full_name        text NOT NULL CHECK (length(full_name) BETWEEN 2 AND 200),
    email            text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' AND length(email) <= 254),
    organisation     text NOT NULL CHECK (length(organisation) BETWEEN 2 AND 200),
    departement_code text NOT NULL REFERENCES resorption.departements (code),
    role_wished      resorption.app_role NOT NULL,
    reason           text NOT NULL CHECK (length(reason) BETWEEN 10 AND 2000),
    client           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'refused')),
    decided_at       timestamptz,
    decided_by       bigint REFERENCES resorption.users (id),
    decision_note    text CHECK (length(decision_note) <= 2000),
    user_id          bigint REFERENCES resorption.users (id) ON DELETE SET NULL,
    -- the last reminder to the territory's administrators (`resorption comptes entretien`)
    reminded_at      timestamptz,
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX access_requests_pending_idx ON resorption.access_requests (departement_code, created_at)
    WHERE status = 'pending';
CREATE INDEX access_requests_client_idx ON resorption.access_requests (client, created_at);
CREATE INDEX access_requests_email_idx ON resorption.access_requests (lower(email), created_at);

CREATE TABLE resorption.account_links (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    bigint NOT NULL REFERENCES resorption.users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('activation', 'reset')),
    client     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX account_links_user_idx ON resorption.account_links (user_id, created_at);

CREATE TABLE resorption.mail_subscriptions (
    user_id      bigint NOT NULL REFERENCES resorption.users (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('weekly_digest', 'site_alerts', 'indicator_reminder')),
    -- alerts: events up to this instant were looked at; digests and reminders: last sent
    watermark    timestamptz NOT NULL DEFAULT now(),
    -- alerts: the ids of the events already alerted within the overlap of the next poll
    alerted      text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (user_id, kind)
);

-- A browser sign-in is a sign-in: the inactivity of an account counts from the last one.
CREATE FUNCTION resorption.note_sign_in() RETURNS trigger
LANGUAGE plpgsql SET search_path = resorption, pg_temp AS $$
BEGIN
    UPDATE users SET last_sign_in_at = now(), inactivity_warned_at = NULL WHERE id = NEW.user_id;
    RETURN NEW;
END $$;
CREATE TRIGGER web_sessions_note_sign_in AFTER INSERT ON resorption.web_sessions
    FOR EACH ROW EXECUTE FUNCTION resorption.note_sign_in();

-- -- who acts, and where ---------------------------------------------------------------------

-- The acting user (resorption.user_id) when active, else NULL.
CREATE FUNCTION resorption.acting_user_id() RETURNS bigint
LANGUAGE sql STABLE SET search_path = resorption, pg_temp AS $$
    SELECT u.id FROM users u
    WHERE u.id = nullif(current_setting('resorption.user_id', true), '')::bigint AND u.active
$$;

-- Whether the acting administrator's reach covers all of `departements` (NULL: the nation).
CREATE FUNCTION resorption.manages(departements text[]) RETURNS boolean
LANGUAGE sql STABLE SET search_path = resorption, pg_temp AS $$
    SELECT acting_user_id() IS NOT NULL AND CASE
        WHEN coalesce(current_setting('resorption.manage_scope', true), '') = '' THEN false
        WHEN current_setting('resorption.manage_scope', true) = '*' THEN true
        WHEN departements IS NULL OR cardinality(departements) = 0 THEN false
        ELSE departements <@ string_to_array(current_setting('resorption.manage_scope', true), ',')
    END
$$;

-- Whether the acting administrator may grant `role` with `options`.
CREATE FUNCTION resorption.may_grant(role text, options text[]) RETURNS boolean
LANGUAGE sql STABLE SET search_path = resorption, pg_temp AS $$
    SELECT role = ANY(string_to_array(coalesce(current_setting('resorption.grantable_roles', true), ''), ','))
       AND coalesce(options, '{}') <@ string_to_array(
               coalesce(current_setting('resorption.grantable_options', true), ''), ',')
$$;

-- The active administrators whose reach covers `departement` (`managers`: role → 'nation' or
-- 'area', from the policy's manage_users), with an address to write to.
CREATE FUNCTION resorption.managers_of(departement text, managers jsonb) RETURNS SETOF resorption.users
LANGUAGE sql STABLE SET search_path = resorption, pg_temp AS $$
    SELECT u.* FROM users u
    WHERE u.active AND u.email IS NOT NULL AND managers ? u.role::text
      AND (managers->>u.role::text = 'nation'
           OR u.area_level = 'nation'
           OR departement = ANY(area_departements(u.area_level, u.area_code)))
$$;

-- One audit row about a user (collection `users`), by the acting user or by `actor`.
CREATE FUNCTION resorption.audit_account(action text, user_id bigint, detail jsonb, actor bigint DEFAULT NULL)
RETURNS void
LANGUAGE sql VOLATILE SET search_path = resorption, pg_temp AS $$
    INSERT INTO audit_log (user_id, username, role, action, collection, item_id, detail)
    SELECT a.id, coalesce(a.username, 'anonyme'), a.role::text, action, 'users', user_id::text, detail
    FROM (SELECT NULL) dummy
    LEFT JOIN users a ON a.id = coalesce(actor, acting_user_id())
$$;

-- Close every browser session of a user and revoke every valid token (but the session `keep`).
CREATE FUNCTION resorption.end_credentials(p_user_id bigint, keep bytea DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = resorption, pg_temp AS $$
DECLARE
    sessions integer;
    tokens integer;
BEGIN
    DELETE FROM web_sessions WHERE user_id = p_user_id AND id_hash IS DISTINCT FROM keep;
    GET DIAGNOSTICS sessions = ROW_COUNT;
    UPDATE api_tokens SET revoked_at = now() WHERE user_id = p_user_id AND revoked_at IS NULL;
    GET DIAGNOSTICS tokens = ROW_COUNT;
    UPDATE account_links SET used_at = now() WHERE user_id = p_user_id AND used_at IS NULL;
    RETURN jsonb_build_object('sessions', sessions, 'tokens', tokens);
END $$;

-- -- access requests ---------------------------------------------------------------------------

-- A request of the public form. Throttled here, whatever the front: an address sends at most
-- 3 requests an hour and 10 a day; an e-mail address has one pending request at a time. Every
-- refusal for abuse answers like a success ('ok'): a robot learns nothing. 'territoire' when
-- the département does not exist. The requester gets `ack`; each administrator of the
-- territory gets `notice`, for the first 10 requests of a département within an hour only:
-- robots spread over many addresses fill the queue, never the administrators' mailboxes (the
-- requests beyond are in the queue, and in the reminder of `resorption comptes entretien`).
CREATE FUNCTION resorption.submit_access_request(
    p_request jsonb, p_client text, p_ack jsonb, p_notice jsonb, p_managers jsonb)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    mail text := lower(trim(p_request->>'email'));
    departement text := upper(trim(p_request->>'departement'));
    new_id bigint;
    manager users;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM departements WHERE code = departement) THEN
        RETURN 'territoire';
    END IF;
    IF (SELECT count(*) FROM access_requests
        WHERE client = p_client AND created_at > now() - interval '1 hour') >= 3
       OR (SELECT count(*) FROM access_requests
           WHERE client = p_client AND created_at > now() - interval '1 day') >= 10
       OR EXISTS (SELECT 1 FROM access_requests WHERE lower(email) = mail AND status = 'pending')
       OR EXISTS (SELECT 1 FROM users WHERE email = mail) THEN
        RETURN 'ok';
    END IF;
    INSERT INTO access_requests (full_name, email, organisation, departement_code, role_wished, reason, client)
    VALUES (trim(p_request->>'full_name'), mail, trim(p_request->>'organisation'), departement,
            (p_request->>'role')::app_role, trim(p_request->>'reason'), p_client)
    RETURNING id INTO new_id;
    PERFORM queue_mail('access_request_received', NULL, mail, p_ack);
    IF (SELECT count(*) FROM access_requests
        WHERE departement_code = departement AND created_at > now() - interval '1 hour') <= 10 THEN
        FOR manager IN SELECT * FROM managers_of(departement, p_managers) LOOP
            PERFORM queue_mail('access_request_notice', manager.id, manager.email, p_notice);
        END LOOP;
    END IF;
    RETURN 'ok';
END $$;

-- The requests the acting administrator may decide (pending first, then the latest decided).
CREATE FUNCTION resorption.access_requests_in_scope() RETURNS SETOF jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT jsonb_build_object(
        'id', r.id, 'full_name', r.full_name, 'email', r.email, 'organisation', r.organisation,
        'departement_code', r.departement_code, 'departement_name', d.name,
        'role_wished', r.role_wished, 'reason', r.reason, 'created_at', r.created_at,
        'status', r.status, 'decided_at', r.decided_at, 'decided_by', b.username,
        'decision_note', r.decision_note, 'user_id', r.user_id)
    FROM access_requests r
    JOIN departements d ON d.code = r.departement_code
    LEFT JOIN users b ON b.id = r.decided_by
    WHERE manages(ARRAY[r.departement_code])
    ORDER BY r.status <> 'pending', r.created_at DESC
    LIMIT 500
$$;

-- Accept (a user is created, active without a password, with a one-time activation link
-- mailed to the requester) or refuse (the requester is told) a pending request within the
-- acting administrator's reach. Returns {"user_id": …} or {"error": …} (introuvable, role,
-- identifiant, email).
CREATE FUNCTION resorption.decide_access_request(
    p_id bigint, p_accept boolean, p_username text, p_role text, p_options text[], p_note text,
    p_link_hash bytea, p_link_seconds integer, p_mail jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    r access_requests;
    organisation_id bigint;
    new_user bigint;
BEGIN
    SELECT * INTO r FROM access_requests WHERE id = p_id AND status = 'pending' FOR UPDATE;
    IF NOT FOUND OR NOT manages(ARRAY[r.departement_code]) THEN
        RETURN jsonb_build_object('error', 'introuvable');
    END IF;
    IF NOT p_accept THEN
        UPDATE access_requests SET status = 'refused', decided_at = now(), decided_by = acting_user_id(),
                                   decision_note = p_note
        WHERE id = p_id;
        PERFORM queue_mail('access_request_refused', NULL, r.email, p_mail);
        INSERT INTO audit_log (user_id, username, role, action, collection, item_id, detail)
        SELECT a.id, a.username, a.role::text, 'access_request_refused', 'access_requests', p_id::text,
               jsonb_build_object('email', r.email, 'note', p_note)
        FROM users a WHERE a.id = acting_user_id();
        RETURN jsonb_build_object('refused', p_id);
    END IF;
    IF NOT may_grant(p_role, p_options) THEN
        RETURN jsonb_build_object('error', 'role');
    END IF;
    INSERT INTO organisations (name, kind, departement_code)
    VALUES (r.organisation, 'other', r.departement_code)
    ON CONFLICT (name, departement_code) DO NOTHING;
    SELECT o.id INTO organisation_id FROM organisations o
    WHERE o.name = r.organisation AND o.departement_code = r.departement_code;
    BEGIN
        INSERT INTO users (username, email, full_name, organisation_id, role, options, area_level, area_code)
        VALUES (p_username, r.email, r.full_name, organisation_id, p_role::app_role,
                coalesce(p_options, '{}')::user_option[], 'departement', r.departement_code)
        RETURNING id INTO new_user;
    EXCEPTION WHEN unique_violation OR check_violation THEN
        RETURN jsonb_build_object('error', CASE WHEN SQLERRM LIKE '%email%' THEN 'email' ELSE 'identifiant' END);
    END;
    INSERT INTO account_links (token_hash, user_id, purpose, expires_at)
    VALUES (p_link_hash, new_user, 'activation', now() + make_interval(secs => p_link_seconds));
    PERFORM queue_mail('activation', new_user, r.email, p_mail, true);
    UPDATE access_requests SET status = 'accepted', decided_at = now(), decided_by = acting_user_id(),
                               decision_note = p_note, user_id = new_user
    WHERE id = p_id;
    PERFORM audit_account('user_created', new_user, jsonb_build_object(
        'demande', p_id, 'role', p_role, 'options', coalesce(p_options, '{}'),
        'zone', 'departement:' || r.departement_code, 'note', p_note));
    RETURN jsonb_build_object('user_id', new_user);
END $$;

-- -- users within reach ------------------------------------------------------------------------

CREATE FUNCTION resorption.user_summary(u resorption.users) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = resorption, pg_temp AS $$
    SELECT jsonb_build_object(
        'id', u.id, 'username', u.username, 'email', u.email, 'full_name', u.full_name,
        'role', u.role, 'options', u.options, 'area_level', u.area_level, 'area_code', u.area_code,
        'organisation', (SELECT o.name FROM organisations o WHERE o.id = u.organisation_id),
        'active', u.active, 'created_at', u.created_at, 'deactivated_at', u.deactivated_at,
        'last_sign_in_at', u.last_sign_in_at, 'charter_version', u.charter_version,
        'charter_accepted_at', u.charter_accepted_at, 'has_password', u.password_hash IS NOT NULL)
$$;

-- The users the acting administrator manages, by username.
CREATE FUNCTION resorption.users_in_scope() RETURNS SETOF jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT user_summary(u) FROM users u
    WHERE manages(area_departements(u.area_level, u.area_code))
    ORDER BY u.username
    LIMIT 2000
$$;

-- One user within reach, with the decisions about them (audit log, newest first); NULL otherwise.
CREATE FUNCTION resorption.user_in_scope(p_id bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT user_summary(u) || jsonb_build_object('history', coalesce((
        SELECT jsonb_agg(jsonb_build_object('at', l.at, 'by', l.username, 'action', l.action,
                                            'detail', l.detail) ORDER BY l.id DESC)
        FROM audit_log l WHERE l.collection = 'users' AND l.item_id = u.id::text), '[]'))
    FROM users u
    WHERE u.id = p_id AND manages(area_departements(u.area_level, u.area_code))
$$;

-- Change a user within reach: role and options (both grantable by the administrator, as the
-- role they had), active or not (deactivating ends every session and token). Never oneself.
-- Returns {"ok": true} or {"error": introuvable | role | soi-meme}.
CREATE FUNCTION resorption.update_user_in_scope(
    p_id bigint, p_role text, p_options text[], p_active boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    u users;
    ended jsonb;
BEGIN
    SELECT * INTO u FROM users WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR NOT manages(area_departements(u.area_level, u.area_code)) THEN
        RETURN jsonb_build_object('error', 'introuvable');
    END IF;
    IF u.id = acting_user_id() THEN
        RETURN jsonb_build_object('error', 'soi-meme');
    END IF;
    IF NOT may_grant(u.role::text, '{}') OR NOT may_grant(p_role, p_options) THEN
        RETURN jsonb_build_object('error', 'role');
    END IF;
    IF u.role::text <> p_role OR u.options::text[] IS DISTINCT FROM coalesce(p_options, '{}') THEN
        UPDATE users SET role = p_role::app_role, options = coalesce(p_options, '{}')::user_option[]
        WHERE id = p_id;
        PERFORM audit_account('user_rights_changed', p_id, jsonb_build_object(
            'avant', jsonb_build_object('role', u.role, 'options', u.options),
            'apres', jsonb_build_object('role', p_role, 'options', coalesce(p_options, '{}'))));
    END IF;
    IF u.active AND NOT p_active THEN
        UPDATE users SET active = false, deactivated_at = now() WHERE id = p_id;
        ended := end_credentials(p_id);
        PERFORM audit_account('user_deactivated', p_id, ended);
    ELSIF NOT u.active AND p_active THEN
        UPDATE users SET active = true, deactivated_at = NULL, inactivity_warned_at = NULL WHERE id = p_id;
        PERFORM audit_account('user_reactivated', p_id, NULL);
    END IF;
    RETURN jsonb_build_object('ok', true);
END $$;

-- -- one-time links ------------------------------------------------------------------------------

-- What a valid link (unused, unexpired, of an active user) is for, and the charter version its
-- account accepted (a reset link of an account that never accepted the charter asks for it);
-- NULL otherwise.
CREATE FUNCTION resorption.account_link(p_hash bytea) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT jsonb_build_object('purpose', l.purpose, 'username', u.username, 'full_name', u.full_name,
                              'user_id', u.id, 'charter_version', u.charter_version)
    FROM account_links l JOIN users u ON u.id = l.user_id
    WHERE l.token_hash = p_hash AND l.used_at IS NULL AND l.expires_at > now() AND u.active
$$;

-- Use a valid link once: the new password (argon2id hash, checked in Python), the charter
-- version accepted (activation); every session, token and other link of the account ends.
CREATE FUNCTION resorption.use_account_link(p_hash bytea, p_password_hash text, p_charter text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    l account_links;
    ended jsonb;
BEGIN
    SELECT k.* INTO l FROM account_links k JOIN users u ON u.id = k.user_id
    WHERE k.token_hash = p_hash AND k.used_at IS NULL AND k.expires_at > now() AND u.active
    FOR UPDATE OF k;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    ended := end_credentials(l.user_id);
    UPDATE users SET password_hash = p_password_hash,
                     charter_version = coalesce(p_charter, charter_version),
                     charter_accepted_at = CASE WHEN p_charter IS NULL THEN charter_accepted_at ELSE now() END
    WHERE id = l.user_id;
    PERFORM audit_account(CASE l.purpose WHEN 'activation' THEN 'account_activated' ELSE 'password_reset' END,
                          l.user_id, ended || jsonb_build_object('charte', p_charter), l.user_id);
    RETURN jsonb_build_object('purpose', l.purpose, 'user_id', l.user_id) || ended;
END $$;

-- A reset link for the active account of `p_email`, mailed to it; nothing (and the same
-- answer) for an unknown address. At most one link per account every 10 minutes, and 5 an
-- hour from one address.
CREATE FUNCTION resorption.request_password_reset(
    p_email text, p_hash bytea, p_link_seconds integer, p_mail jsonb, p_client text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    u users;
BEGIN
    SELECT * INTO u FROM users WHERE email = lower(trim(p_email)) AND active;
    IF NOT FOUND
       OR EXISTS (SELECT 1 FROM account_links WHERE user_id = u.id AND purpose = 'reset'
                  AND created_at > now() - interval '10 minutes')
       OR (SELECT count(*) FROM account_links WHERE client = p_client
           AND created_at > now() - interval '1 hour') >= 5 THEN
        RETURN;
    END IF;
    INSERT INTO account_links (token_hash, user_id, purpose, client, expires_at)
    VALUES (p_hash, u.id, 'reset', p_client, now() + make_interval(secs => p_link_seconds));
    PERFORM queue_mail('password_reset', u.id, u.email, p_mail, true);
END $$;

-- -- « Mon compte » : the acting user's own account -------------------------------------------------

-- The acting user's profile, browser sessions (`current` marks the one of `p_session`),
-- tokens (never their value) and subscriptions; NULL without an active acting user.
CREATE FUNCTION resorption.my_account(p_session bytea) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT user_summary(u) || jsonb_build_object(
        'sessions', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'created_at', s.created_at, 'last_seen_at', s.last_seen_at, 'client', s.client,
                'current', s.id_hash = p_session) ORDER BY s.created_at DESC)
            FROM web_sessions s WHERE s.user_id = u.id AND s.expires_at > now()
              AND s.last_seen_at + s.idle_timeout > now()), '[]'),
        'tokens', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'id', t.id, 'prefix', t.prefix, 'label', t.label, 'created_at', t.created_at,
                'expires_at', t.expires_at, 'revoked_at', t.revoked_at, 'last_used_at', t.last_used_at)
                ORDER BY t.created_at DESC) FROM api_tokens t WHERE t.user_id = u.id), '[]'),
        'subscriptions', coalesce((SELECT jsonb_agg(m.kind ORDER BY m.kind)
            FROM mail_subscriptions m WHERE m.user_id = u.id), '[]'))
    FROM users u WHERE u.id = acting_user_id()
$$;

CREATE FUNCTION resorption.accept_charter(p_version text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
BEGIN
    UPDATE users SET charter_version = p_version, charter_accepted_at = now() WHERE id = acting_user_id();
    IF FOUND THEN
        PERFORM audit_account('charter_accepted', acting_user_id(), jsonb_build_object('charte', p_version));
    END IF;
    RETURN FOUND;
END $$;

CREATE FUNCTION resorption.update_my_profile(p_full_name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
BEGIN
    UPDATE users SET full_name = nullif(trim(p_full_name), '') WHERE id = acting_user_id();
    RETURN FOUND;
END $$;

-- A token of the acting user (its hash and first characters), valid from an hour to 3 years.
CREATE FUNCTION resorption.create_my_token(p_hash bytea, p_prefix text, p_label text, p_lifetime interval)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    new_id bigint;
BEGIN
    IF acting_user_id() IS NULL OR p_lifetime < interval '1 hour' OR p_lifetime > interval '1098 days' THEN
        RETURN NULL;
    END IF;
    INSERT INTO api_tokens (user_id, token_hash, prefix, label, expires_at)
    VALUES (acting_user_id(), p_hash, p_prefix, nullif(trim(p_label), ''), now() + p_lifetime)
    RETURNING id INTO new_id;
    PERFORM audit_account('token_created', acting_user_id(), jsonb_build_object('jeton', new_id, 'libelle', p_label));
    RETURN new_id;
END $$;

CREATE FUNCTION resorption.revoke_my_token(p_id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
BEGIN
    UPDATE api_tokens SET revoked_at = now()
    WHERE id = p_id AND user_id = acting_user_id() AND revoked_at IS NULL;
    IF FOUND THEN
        PERFORM audit_account('token_revoked', acting_user_id(), jsonb_build_object('jeton', p_id));
    END IF;
    RETURN FOUND;
END $$;

-- Sign out every other browser of the acting user (the session `p_session` stays).
CREATE FUNCTION resorption.close_my_other_sessions(p_session bytea) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    closed integer;
BEGIN
    DELETE FROM web_sessions WHERE user_id = acting_user_id() AND id_hash <> p_session;
    GET DIAGNOSTICS closed = ROW_COUNT;
    RETURN closed;
END $$;

-- A new password for the acting user (its old one checked in Python): every other session,
-- every token and every pending link end.
CREATE FUNCTION resorption.change_my_password(p_hash text, p_session bytea) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    me bigint := acting_user_id();
    ended jsonb;
BEGIN
    IF me IS NULL THEN
        RETURN NULL;
    END IF;
    ended := end_credentials(me, p_session);
    UPDATE users SET password_hash = p_hash WHERE id = me;
    PERFORM audit_account('password_changed', me, ended);
    RETURN ended;
END $$;

CREATE FUNCTION resorption.set_my_subscriptions(p_kinds text[]) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    me bigint := acting_user_id();
BEGIN
    IF me IS NULL THEN
        RETURN false;
    END IF;
    DELETE FROM mail_subscriptions WHERE user_id = me AND NOT kind = ANY(p_kinds);
    INSERT INTO mail_subscriptions (user_id, kind)
    SELECT me, k FROM unnest(p_kinds) k ON CONFLICT DO NOTHING;
    RETURN true;
END $$;

REVOKE ALL ON FUNCTION resorption.note_sign_in, resorption.acting_user_id, resorption.manages,
    resorption.may_grant, resorption.managers_of, resorption.audit_account, resorption.end_credentials,
    resorption.user_summary, resorption.submit_access_request, resorption.access_requests_in_scope,
    resorption.decide_access_request, resorption.users_in_scope, resorption.user_in_scope,
    resorption.update_user_in_scope, resorption.account_link, resorption.use_account_link,
    resorption.request_password_reset, resorption.my_account, resorption.accept_charter,
    resorption.update_my_profile, resorption.create_my_token, resorption.revoke_my_token,
    resorption.close_my_other_sessions, resorption.change_my_password, resorption.set_my_subscriptions
    FROM PUBLIC;
