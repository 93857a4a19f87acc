"""Versions of concurrent writers never overlap: `record_version` begins a version after the
current one when a transaction that started later wrote the row first.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02

Two writers of one site: B starts, A starts, A locks and writes, B waits for the row lock
then writes. B's `now()` is earlier than the version A just wrote: the former trigger took
A's version for B's own (`since >= now()`), deleted it and began B's before the end of the one
before: an exclusion violation (a 500), or, without it, a lost version. A version is now this
transaction's own only when it began at this transaction's `now()`; otherwise the new one
begins at `greatest(now(), the current version's start + 1 µs)` (sql/080_history.sql).
"""

from resorption.migrate import run_sql

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE OR REPLACE FUNCTION resorption.record_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = resorption, pg_temp AS $$
DECLARE
    history regclass := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME || '_history')::regclass;
    who text := coalesce(nullif(current_setting('resorption.username', true), ''), session_user::text);
    columns text := history_columns(TG_RELID, history);
    same_row text := (SELECT string_agg(format('%1$I = ($1).%1$I', k), ' AND ')
                      FROM unnest(CASE WHEN TG_NARGS = 0 THEN ARRAY['id'] ELSE TG_ARGV END) AS k);
    current_version record;
    replaced boolean := false;
    operation resorption.history_operation := lower(TG_OP)::resorption.history_operation;
    fields text[] := '{}';
    -- When this version begins: now(), or just after the current version when a concurrent
    -- transaction that started later wrote it first (this one waited for its row lock).
    ts timestamptz := now();
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('SELECT version_id, lower(valid) AS since, operation, changed_fields FROM %s '
                       'WHERE %s AND upper_inf(valid) FOR UPDATE', history, same_row)
            INTO current_version USING OLD;
        IF current_version.version_id IS NOT NULL THEN
            -- A version begun at this transaction's now() is this transaction's own: replaced.
            IF current_version.since = now() THEN
                replaced := true;
                EXECUTE format('DELETE FROM %s WHERE version_id = $1', history)
                    USING current_version.version_id;
            ELSE
                ts := greatest(now(), current_version.since + interval '1 microsecond');
                EXECUTE format('UPDATE %s SET valid = tstzrange(lower(valid), $2) '
                               'WHERE version_id = $1', history)
                    USING current_version.version_id, ts;
            END IF;
        END IF;
    END IF;

    IF TG_OP = 'DELETE' THEN
        -- A row inserted and deleted by the same transaction never existed for anyone else.
        IF NOT (replaced AND current_version.operation = 'insert') THEN
            EXECUTE format('INSERT INTO %s (%s, valid, operation, changed_by, changed_fields) '
                           'SELECT %s, $2, $3, $4, $5 FROM (SELECT ($1).*) r', history, columns, columns)
                USING OLD, tstzrange(ts, ts, '[]'), operation, who, '{}'::text[];
        END IF;
        RETURN NULL;
    END IF;

    IF TG_OP = 'UPDATE' THEN
        fields := changed_fields(TG_RELID, to_jsonb(OLD), to_jsonb(NEW));
        IF replaced THEN
            operation := CASE WHEN current_version.operation = 'insert' THEN 'insert' ELSE 'update' END;
            fields := CASE WHEN operation = 'insert' THEN '{}'
                           ELSE in_column_order(TG_RELID, current_version.changed_fields || fields) END;
        END IF;
        IF operation = 'update' AND fields = '{confirmed_at}' THEN
            operation := 'confirm';
        END IF;
    END IF;
    EXECUTE format('INSERT INTO %s (%s, valid, operation, changed_by, changed_fields) '
                   'SELECT %s, $2, $3, $4, $5 FROM (SELECT ($1).*) r', history, columns, columns)
        USING NEW, tstzrange(ts, NULL), operation, who, fields;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    run_sql(UPGRADE)


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
