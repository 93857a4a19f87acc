#!/bin/sh
# A streaming replica of the `db` service (docker-compose.yml, README « Passer à l'échelle »).
# First start: a copy of the primary with pg_basebackup -R (it writes standby.signal and the
# primary's address); every start: PostgreSQL as a hot standby that follows it and serves reads.
# To make it again from scratch (after a long outage the primary may have recycled the WAL it
# needs): docker compose rm -sf db-replica && docker volume rm <projet>_pgreplica.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h "$PRIMARY_HOST" -U "$POSTGRES_USER" -d "$POSTGRES_DB"; do sleep 1; done
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  PGPASSWORD="$POSTGRES_PASSWORD" gosu postgres pg_basebackup --host "$PRIMARY_HOST" \
    --username "$POSTGRES_USER" --pgdata "$PGDATA" --write-recovery-conf \
    --wal-method=stream --checkpoint=fast
fi
exec gosu postgres postgres -c hot_standby=on
