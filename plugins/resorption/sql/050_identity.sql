-- Users, API tokens and the audit log. Only the owner and SECURITY DEFINER functions
-- touch these tables: the application's database role has no privilege on them. Each
-- function below is executable by its owner only; the application's login role gets EXECUTE
-- on the few it calls (privileges.APP_FUNCTIONS, each justified there). Sign-in throttling:
-- 055_sign_in_throttle.sql; browser sessions: 110_web_sessions.sql.
CREATE TYPE resorption.app_role AS ENUM (
    'national_admin', 'local_admin', 'national_actor', 'correspondent',
    'institutional_partner', 'operator', 'intervener', 'external_observer');
CREATE TYPE resorption.user_option AS ENUM (
    'create_site', 'close_site', 'access_justice', 'access_finances');
CREATE TYPE resorption.area_level AS ENUM ('nation', 'region', 'departement', 'epci', 'commune');

CREATE TABLE resorption.users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{2,63}$'),
    email           text UNIQUE CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    full_name       text,
    organisation_id bigint NOT NULL REFERENCES resorption.organisations (id),
    role            resorption.app_role NOT NULL,
    options         resorption.user_option[] NOT NULL DEFAULT '{}'
                    CHECK (resorption.has_no_duplicates(options)),
    area_level      resorption.area_level NOT NULL,
    area_code       text,
    -- argon2id hash; NULL for users who sign in only with tokens or OIDC
    password_hash   text,
    oidc_subject    text UNIQUE,
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    deactivated_at  timestamptz,
    -- the version of the charter of use accepted, and when (sql/205_accounts_lifecycle.sql)
    charter_version text,
    charter_accepted_at timestamptz,
    -- the charter version this user was told of by e-mail (resorption comptes entretien)
    charter_notified_version text,
    -- the last browser sign-in, and the warning before deactivation for inactivity
    last_sign_in_at timestamptz,
    inactivity_warned_at timestamptz,
    CONSTRAINT area_code_iff_not_nation CHECK ((area_level = 'nation') = (area_code IS NULL)),
    CONSTRAINT deactivated_when_inactive CHECK (active OR deactivated_at IS NOT NULL)
);

-- An area names a real territory of its level.
CREATE FUNCTION resorption.check_user_area() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    known boolean;
BEGIN
    known := CASE NEW.area_level
        WHEN 'nation' THEN true
        WHEN 'region' THEN EXISTS (SELECT 1 FROM resorption.regions WHERE code = NEW.area_code)
        WHEN 'departement' THEN EXISTS (SELECT 1 FROM resorption.departements WHERE code = NEW.area_code)
        WHEN 'epci' THEN EXISTS (SELECT 1 FROM resorption.epci WHERE code = NEW.area_code)
        WHEN 'commune' THEN EXISTS (SELECT 1 FROM resorption.communes WHERE code = NEW.area_code)
    END;
    IF NOT known THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('territoire %s %s inconnu', NEW.area_level, NEW.area_code),
            COLUMN = 'area_code';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_check_area BEFORE INSERT OR UPDATE OF area_level, area_code
    ON resorption.users FOR EACH ROW EXECUTE FUNCTION resorption.check_user_area();

CREATE TABLE resorption.api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES resorption.users (id) ON DELETE CASCADE,
    -- SHA-256 of the token: tokens are long random strings, a plain hash is enough
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    -- the first characters, to recognise a token in lists without revealing it
    prefix       text NOT NULL,
    label        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX ON resorption.api_tokens (user_id);

CREATE TABLE resorption.audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    user_id    bigint REFERENCES resorption.users (id),
    username   text NOT NULL,
    role       text,
    action     text NOT NULL,
    collection text,
    item_id    text,
    groups     text[] NOT NULL DEFAULT '{}',
    method     text,
    path       text,
    client     text,
    detail     jsonb
);
CREATE INDEX ON resorption.audit_log (at);
CREATE INDEX ON resorption.audit_log (user_id, at);

-- The départements an intervention area reads: a commune or an EPCI widens to its
-- whole département(s), a region to its départements; NULL means the nation.
CREATE FUNCTION resorption.area_departements(p_level resorption.area_level, p_code text)
RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT CASE p_level
        WHEN 'nation' THEN NULL
        WHEN 'region' THEN ARRAY(SELECT d.code FROM departements d WHERE d.region_code = p_code ORDER BY 1)
        WHEN 'departement' THEN ARRAY[p_code]
        WHEN 'epci' THEN ARRAY(SELECT DISTINCT c.departement_code FROM communes c
                               WHERE c.epci_code = p_code ORDER BY 1)
        WHEN 'commune' THEN ARRAY(SELECT c.departement_code FROM communes c WHERE c.code = p_code)
    END
$$;

-- What the application needs to know of an active user, for one of the ways in.
CREATE TYPE resorption.principal_row AS (
    user_id bigint, username text, role text, options text[], area_level text, area_code text,
    area_departements text[], organisation_id bigint, password_hash text);

CREATE FUNCTION resorption.principal_of(u resorption.users) RETURNS resorption.principal_row
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT u.id, u.username, u.role::text, u.options::text[], u.area_level::text, u.area_code,
           area_departements(u.area_level, u.area_code), u.organisation_id, u.password_hash
$$;

-- `SELECT (principal_of(u)).*` would call principal_of once per output column (nine times,
-- each reading the territories): the functions below call it once, laterally (found by
-- profiling, bench/ANALYSIS.md).
CREATE FUNCTION resorption.user_by_username(name text) RETURNS SETOF resorption.principal_row
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT p.* FROM users u CROSS JOIN LATERAL principal_of(u) p
    WHERE u.username = lower(name) AND u.active
$$;

CREATE FUNCTION resorption.user_by_oidc(subject text, mail text)
RETURNS SETOF resorption.principal_row
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    SELECT p.*
    FROM (SELECT u FROM users u
          WHERE u.active AND (u.oidc_subject = subject OR (u.oidc_subject IS NULL AND u.email = lower(mail)))
          ORDER BY u.oidc_subject IS NULL LIMIT 1) found
    CROSS JOIN LATERAL principal_of(found.u) p
$$;

-- A valid token's user; nothing for an unknown, expired or revoked token, or an inactive
-- user. Its use is noted only when the last note is a minute old or more: "last used"
-- keeps its meaning to the minute, without a write (and its WAL) on every request.
CREATE FUNCTION resorption.user_by_token(hash bytea) RETURNS SETOF resorption.principal_row
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    WITH valid AS (
        SELECT t.id, t.user_id, t.last_used_at FROM api_tokens t
        WHERE t.token_hash = hash AND t.revoked_at IS NULL AND t.expires_at > now()
    ), noted AS (
        UPDATE api_tokens t SET last_used_at = now()
        FROM valid
        WHERE t.id = valid.id
          AND (valid.last_used_at IS NULL OR valid.last_used_at <= now() - interval '1 minute')
    )
    SELECT p.* FROM valid JOIN users u ON u.id = valid.user_id
    CROSS JOIN LATERAL principal_of(u) p
    WHERE u.active
$$;

-- The check of a remembered API token (authentication.py keeps a token's principal in each
-- worker): one index lookup, nothing computed from the territories.
--
-- It answers the version of the token's user row (its xmin, which any UPDATE of the row
-- changes: a new role, options or area, a deactivation) while the token is valid (not
-- revoked, not expired) and its user active; NULL otherwise. A worker uses the principal it
-- remembered only when the version is the one it read with it: a revoked token, an expired one
-- or a deactivated user is refused on the very next request, in every worker, and a changed
-- user is looked up again. Like user_by_token, it notes the token's use when the last note is
-- a minute old or more (a write once a minute, not on every request).
CREATE FUNCTION resorption.token_user_version(hash bytea) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
-- PL/pgSQL, not SQL: a session keeps the plans of its statements, where a SQL function's
-- were made again at each call (89 µs a call against 11, on every request with a token).
DECLARE
    token_id bigint;
    used timestamptz;
    version text;
BEGIN
    SELECT t.id, t.last_used_at, u.xmin::text INTO token_id, used, version
    FROM api_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = hash AND t.revoked_at IS NULL AND t.expires_at > now() AND u.active;
    IF token_id IS NOT NULL AND (used IS NULL OR used <= now() - interval '1 minute') THEN
        UPDATE api_tokens SET last_used_at = now() WHERE id = token_id;
    END IF;
    RETURN version;
END $$;

-- The audit log is written only through this function, by the user set in the transaction.
CREATE FUNCTION resorption.audit(
    action text, collection text, item_id text, groups text[], method text, path text,
    client text, detail jsonb)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
    INSERT INTO audit_log (user_id, username, role, action, collection, item_id, groups, method,
                           path, client, detail)
    VALUES (nullif(current_setting('resorption.user_id', true), '')::bigint,
            coalesce(nullif(current_setting('resorption.username', true), ''), 'anonyme'),
            nullif(current_setting('resorption.role', true), ''),
            action, collection, item_id, groups, method, path, client, detail)
$$;

REVOKE ALL ON FUNCTION resorption.area_departements, resorption.principal_of,
    resorption.user_by_username, resorption.user_by_oidc, resorption.user_by_token,
    resorption.token_user_version,
    resorption.audit FROM PUBLIC;
