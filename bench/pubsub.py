"""Real-time changes, measured: latency from commit to MQTT subscriber, and what the publisher
sustains.

    RESORPTION_POSTGRES_PORT=54352 .venv/bin/python bench/pubsub.py [--edits 300] [--backlog 5000]

On the embedded PostgreSQL and Mosquitto (their ports follow RESORPTION_POSTGRES_PORT), in a
database of its own (`resorption_bench_pubsub`, made once with `resorption db setup`). The
publisher runs as in production (`resorption publish`, its own process); a paho-mqtt client
subscribes as a national user (username + API token).

- latency: `--edits` updates of distinct sites, one transaction each, 20 ms apart; for each,
  the time from the commit's return to the message's arrival at the subscriber (p50, p99, max);
- publisher: with the publisher stopped, `--backlog` updates are committed; the publisher is
  started and the time until the last message arrives gives the events per second it drains
  (accounts synced and connections opened before the clock starts).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "resorption_bench_pubsub"


def database_url() -> str:
    from resorption.embedded import resolve_database_url

    if configured := os.environ.get("BENCH_DATABASE_URL"):
        return configured
    return urlunsplit(urlsplit(resolve_database_url())._replace(path=f"/{DATABASE}"))


def prepare(url: str) -> None:
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            admin.execute(f'CREATE DATABASE "{DATABASE}"')
    with psycopg.connect(url) as conn:
        ready = conn.execute("SELECT to_regclass('resorption.outbox') IS NOT NULL").fetchone()[0]
        sites = conn.execute("SELECT count(*) FROM resorption.sites").fetchone()[0] if ready else 0
    if not ready or sites < 1000:
        print("préparation de la base (resorption db setup --sites 2000)…", file=sys.stderr)
        env = {**os.environ, "DATABASE_URL": url}
        subprocess.run(
            [str(Path(sys.executable).parent / "resorption"), "db", "setup", "--sites", "2000"],
            cwd=ROOT,
            env=env,
            check=True,
        )


def national_user(url: str) -> tuple[str, str]:
    from resorption import accounts

    with psycopg.connect(url) as conn:
        org = conn.execute("SELECT id FROM resorption.organisations ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute(
            "INSERT INTO resorption.users (username, organisation_id, role, area_level) "
            "VALUES ('bench-pubsub', %s, 'national_admin', 'nation') ON CONFLICT (username) DO NOTHING",
            (org,),
        )
    return "bench-pubsub", accounts.issue_token(url, "bench-pubsub", label="bench").token


class Publisher:
    def __init__(self, url: str) -> None:
        self.env = {**os.environ, "DATABASE_URL": url}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, url: str) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            began = conn.execute("SELECT clock_timestamp()").fetchone()[0]
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "resorption"), "publish"],
                cwd=ROOT,
                env=self.env,
                stderr=subprocess.DEVNULL,
            )
            while not conn.execute(
                "SELECT 1 FROM resorption.outbox_cursors WHERE name = 'mqtt' AND updated_at >= %s", (began,)
            ).fetchone():
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=300)
    parser.add_argument("--backlog", type=int, default=5000)
    args = parser.parse_args()

    from resorption import broker

    url = database_url()
    prepare(url)
    address = broker.BrokerAddress.parse(broker.ensure_broker())
    username, token = national_user(url)
    with psycopg.connect(url, autocommit=True) as conn:
        site_ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM resorption.sites ORDER BY id LIMIT %s", (max(args.edits, 100),)
            )
        ]
    publisher = Publisher(url)
    publisher.start(url)

    arrivals: dict[int, list[float]] = {}
    count = [0]
    lock = threading.Condition()
    client = broker.connect(broker.BrokerAddress(address.host, address.port, username, token))

    def on_message(_c, _u, message) -> None:  # type: ignore[no-untyped-def]
        if message.topic.endswith("/last"):
            return
        body = json.loads(message.payload)
        with lock:
            arrivals.setdefault(body["item"], []).append(time.perf_counter())
            count[0] += 1
            lock.notify_all()

    client.on_message = on_message
    client.subscribe("resorption/v1/sites/#", qos=1)
    time.sleep(0.5)

    bump = (
        "UPDATE resorption.sites SET population_total = coalesce(population_total, 0) %% 9000 + 1 "
        "WHERE id = %s"
    )
    latencies: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for site_id in site_ids[: args.edits]:
            committed = time.perf_counter()
            conn.execute(bump, (site_id,))
            committed = time.perf_counter()
            with lock:
                lock.wait_for(lambda s=site_id: s in arrivals, timeout=5)
                got = arrivals.pop(site_id, None)
            if got:
                latencies.append((got[0] - committed) * 1000)
            time.sleep(0.02)

    # the publisher's own pace: a backlog committed while it is stopped, then drained
    publisher.stop()
    with lock:
        count[0] = 0
    with psycopg.connect(url) as conn:
        for i in range(args.backlog):
            conn.execute(bump, (site_ids[i % len(site_ids)],))
            if i % 100 == 99:
                conn.commit()
        conn.commit()
    started = time.perf_counter()
    publisher.start(url)
    with lock:
        lock.wait_for(lambda: count[0] >= args.backlog, timeout=300)
        drained = count[0]
    elapsed = time.perf_counter() - started
    publisher.stop()
    client.disconnect()

    q = statistics.quantiles(latencies, n=100)
    print(
        f"latence commit → abonné MQTT ({len(latencies)}/{args.edits} reçues) : "
        f"p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, max {max(latencies):.1f} ms"
    )
    print(
        f"publicateur : {drained} évènements en {elapsed:.2f} s (démarrage compris) = "
        f"{drained / elapsed:.0f} évènements/s"
    )


if __name__ == "__main__":
    main()
