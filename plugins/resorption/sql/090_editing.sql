-- Editing (OGC API Features Part 4): who may write which rows, enforced by the database.
--
-- The application sets, per transaction (set_config(..., true), from the access policy):
--   resorption.sites_write_scope    where the caller may create and update sites
--   resorption.sites_close_scope    where the caller may close them (a status other than 'open')
--   resorption.sites_delete_scope   where the caller may delete them
--   resorption.actions_write_scope  where the caller may create and update actions
--   resorption.actions_delete_scope where the caller may delete them
-- each '*' for the nation or a comma-separated list of département codes; unset or empty
-- means nowhere (fail closed). Column privileges of the write roles (resorption_write[_…],
-- granted by resorption.privileges) decide which columns may be written.

-- Sites: a row is written, and ends, inside the write scope; deleted inside the delete scope.
CREATE POLICY sites_insert ON resorption.sites FOR INSERT
    WITH CHECK (resorption.in_scope('resorption.sites_write_scope', departement_code));
CREATE POLICY sites_update ON resorption.sites FOR UPDATE
    USING (resorption.in_scope('resorption.sites_write_scope', departement_code))
    WITH CHECK (resorption.in_scope('resorption.sites_write_scope', departement_code));
CREATE POLICY sites_delete ON resorption.sites FOR DELETE
    USING (resorption.in_scope('resorption.sites_delete_scope', departement_code));

CREATE POLICY actions_insert ON resorption.actions FOR INSERT
    WITH CHECK (resorption.in_scope('resorption.actions_write_scope', departement_code));
CREATE POLICY actions_update ON resorption.actions FOR UPDATE
    USING (resorption.in_scope('resorption.actions_write_scope', departement_code))
    WITH CHECK (resorption.in_scope('resorption.actions_write_scope', departement_code));
CREATE POLICY actions_delete ON resorption.actions FOR DELETE
    USING (resorption.in_scope('resorption.actions_delete_scope', departement_code));

-- The main département of an action is copied into action_departements by a trigger that
-- runs as the writer.
CREATE POLICY write ON resorption.action_departements FOR INSERT
    WITH CHECK (resorption.in_scope('resorption.actions_write_scope', departement_code));

-- Who wrote, from the transaction's settings; and closing a site (leaving the 'open' status)
-- needs the close scope. Only for callers under row-level security: the owner's loaders
-- and the demo generator keep their own values.
CREATE FUNCTION resorption.sites_write_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who text := nullif(current_setting('resorption.username', true), '');
BEGIN
    IF NOT row_security_active('resorption.sites') THEN
        RETURN NEW;
    END IF;
    IF NEW.status <> 'open' AND (TG_OP = 'INSERT' OR OLD.status = 'open')
       -- in_scope is NULL for an empty scope: IS NOT TRUE fails closed.
       AND resorption.in_scope('resorption.sites_close_scope', NEW.departement_code) IS NOT TRUE THEN
        RAISE insufficient_privilege USING
            MESSAGE = format('Vous n''avez pas le droit de fermer un site dans le département %s.',
                             NEW.departement_code),
            COLUMN = 'status';
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.created_by := who;
        NEW.created_at := now();
    ELSE
        NEW.created_by := OLD.created_by;
        NEW.created_at := OLD.created_at;
    END IF;
    NEW.updated_by := who;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

-- Named to fire after sites_derive (triggers fire by name), so the département is known.
CREATE TRIGGER sites_write_guard BEFORE INSERT OR UPDATE ON resorption.sites
    FOR EACH ROW EXECUTE FUNCTION resorption.sites_write_guard();

CREATE FUNCTION resorption.actions_write_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who text := nullif(current_setting('resorption.username', true), '');
BEGIN
    IF NOT row_security_active('resorption.actions') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.created_by := who;
        NEW.created_at := now();
    ELSE
        NEW.created_by := OLD.created_by;
        NEW.created_at := OLD.created_at;
    END IF;
    NEW.updated_by := who;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER actions_write_guard BEFORE INSERT OR UPDATE ON resorption.actions
    FOR EACH ROW EXECUTE FUNCTION resorption.actions_write_guard();
