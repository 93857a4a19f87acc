#!/bin/sh
# The primary's first start (docker-entrypoint-initdb.d): streaming replicas may connect.
# The image's pg_hba.conf admits every database from the network, but a replication
# connection matches only the `replication` keyword: one line for it, with the same password
# check. (wal_level = replica and max_wal_senders = 10 are PostgreSQL's defaults.)
set -eu
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
