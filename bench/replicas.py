"""One primary against one primary and one streaming replica, under a read-heavy mix.

    .venv/bin/python bench/replicas.py [--sites 100000] [--duration 15] [--connections 8] [--rounds 2]

Our server (one gunicorn worker per core, 4 threads each, as bench/bench.py runs it) on the
bench dataset, as `demo-national`, once alone on the primary and once with
DATABASE_REPLICA_URLS naming a replica made now (`pg_basebackup -R` on the next port, deleted
at the end); the two take turns, `--rounds` times. The mix, per 20 requests: 8 single items (ids
cycling over 200 sites), 5 first pages of 10, 3 pages of 100 in a bbox (Gironde), 2 tiles z10,
1 national count (`resulttype=hits`), 1 PATCH (5 % of writes; wrk keeps no cookie: writers that
do not read back). The CPU of each PostgreSQL cluster (every process of it) and of the server,
per request, is sampled around each run; /metrics says where the reads went. README « Passer à
l'échelle » reports the figures. On a machine of few cores the replica takes its CPU from the
same cores as the primary and the server: the table shows how the work moves, not a gain in
capacity that only a second machine gives.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import servers
from measure import cpu_ms, spent

from bench import BBOX, BORDEAUX, tile
from resorption.embedded import default_root, replica_home, start_replica, stop_replica

BENCH = Path(__file__).resolve().parent


def cluster_pids(pgdata: Path) -> list[int]:
    """Every process of the PostgreSQL cluster of `pgdata`: its postmaster and descendants."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [postmaster]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def mix_script(ids: list[int]) -> str:
    """The wrk script: the mix of requests in turn, then report.lua's JSON line."""
    z, x, y = tile(10, *BORDEAUX)
    bbox = ",".join(str(v) for v in BBOX)
    items = "/collections/sites/items"
    gets = (
        ["ITEM"] * 8
        + [f"{items}?limit=10"] * 5
        + [f"{items}?bbox={bbox}&limit=100"] * 3
        + [f"/collections/sites/tiles/WebMercatorQuad/{z}/{y}/{x}"] * 2
        + [f"{items}?resulttype=hits"]
    )
    order = [*gets, "PATCH"]
    return (
        f"local order = {{{', '.join(json.dumps(p) for p in order)}}}\n"
        f"local ids = {{{', '.join(map(str, ids))}}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        "  local kind = order[(i - 1) % #order + 1]\n"
        "  local id = ids[(i - 1) % #ids + 1]\n"
        "  if kind == 'ITEM' then return wrk.format('GET', '" + items + "/' .. id) end\n"
        "  if kind == 'PATCH' then\n"
        "    local h = {}\n"
        "    for k, v in pairs(wrk.headers) do h[k] = v end\n"
        "    h['Content-Type'] = 'application/merge-patch+json'\n"
        "    return wrk.format('PATCH', '" + items + "/' .. id, h,\n"
        '      \'{"properties": {"name": "Site mesuré \' .. i .. \'"}}\')\n'
        "  end\n"
        "  return wrk.format('GET', kind)\n"
        "end\n" + (BENCH / "report.lua").read_text()
    )


def reads(base: str) -> dict[str, float]:
    text = requests.get(f"{base}/metrics", timeout=30).text
    found = re.findall(r'^resorption_db_reads_total\{server="(\w+)"\} (\S+)$', text, re.MULTILINE)
    return {"primary": 0.0, "replica": 0.0} | {s: float(v) for s, v in found}


def run(server: servers.Server, script: Path, token: str, args: argparse.Namespace, clusters: dict) -> dict:
    command = [
        *("wrk", f"-t{min(args.connections, 2)}", f"-c{args.connections}", f"-d{args.duration}s"),
        *("--timeout", "30s", "-s", str(script)),
        *("-H", f"Authorization: Bearer {token}", "-H", "Connection: close"),
        server.base + "/collections/sites/items",
    ]
    pids = {name: cluster_pids(pgdata) for name, pgdata in clusters.items()} | {"app": server.pids()}
    before = {name: cpu_ms(p) for name, p in pids.items()}
    routed = reads(server.base)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    pids = {name: cluster_pids(pgdata) for name, pgdata in clusters.items()} | {"app": server.pids()}
    after = {name: cpu_ms(p) for name, p in pids.items()}
    routed_after = reads(server.base)
    data = json.loads(
        next(x for x in out.splitlines() if x.startswith("BENCH_JSON ")).removeprefix("BENCH_JSON ")
    )
    n = max(data["requests"], 1)
    return {
        "rps": data["requests"] / (data["duration_us"] / 1e6),
        "p50": data["p50_us"] / 1000,
        "p99": data["p99_us"] / 1000,
        "errors": data["http_errors"] + data["socket_errors"],
        "cpu": {name: spent(before[name], after[name]) / n for name in after},
        "replica_share": (routed_after["replica"] - routed["replica"])
        / max(1.0, sum(routed_after.values()) - sum(routed.values())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Primaire seule contre primaire + réplique (lectures surtout)."
    )
    parser.add_argument("--sites", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    servers.require_tools()
    work = Path(tempfile.mkdtemp(prefix="bench-repliques-"))
    server = servers.server_url()
    label = f"{args.sites // 1000}k" if args.sites < 1_000_000 else f"{args.sites // 1_000_000}m"
    url = servers.ensure_dataset(server, args.sites, work / "dataset.log")
    token = servers.issue_tokens(url)["demo-national"]
    with psycopg.connect(url) as conn:
        ids = [
            r[0] for r in conn.execute("SELECT id FROM resorption.sites ORDER BY id LIMIT 200 OFFSET 1000")
        ]
    script = work / "mix.lua"
    script.write_text(mix_script(ids))
    primary_port = urlsplit(server).port or 5432
    replica_port = primary_port + 1
    started = time.monotonic()
    start_replica(replica_port, primary_port=primary_port)
    print(f"réplique prête en {time.monotonic() - started:.1f} s (pg_basebackup -R, port {replica_port})")
    replica_url = servers.with_db(f"postgresql://postgres@127.0.0.1:{replica_port}/", urlsplit(url).path[1:])
    clusters = {
        "primaire": default_root().resolve() / "pgdata",
        "réplique": replica_home(replica_port) / "pgdata",
    }
    variants = {"primaire seule": {}, "primaire + 1 réplique": {"DATABASE_REPLICA_URLS": replica_url}}
    results: dict[str, list[dict]] = {name: [] for name in variants}
    try:
        for _ in range(args.rounds):
            for name, extra in variants.items():
                # On the port after the replica's (the range of the cluster's port).
                ours = servers.start_ours(url, work, port=replica_port + 1, extra_env=extra)
                try:
                    check = requests.patch(
                        f"{ours.base}/collections/sites/items/{ids[0]}",
                        json={"properties": {"name": "Site mesuré"}},
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Content-Type": "application/merge-patch+json",
                        },
                        timeout=60,
                    )
                    if check.status_code != 204:
                        sys.exit(f"le PATCH du mélange échoue ({check.status_code}) : {check.text[:300]}")
                    run(ours, script, token, argparse.Namespace(**{**vars(args), "duration": 3}), clusters)
                    results[name].append(run(ours, script, token, args, clusters))
                finally:
                    ours.stop()
                servers.settle(url)
    finally:
        stop_replica(replica_port)
    print(
        f"\n{args.sites} sites ({label}), {args.connections} connexions, {args.duration} s × {args.rounds}, "
        f"{servers.WORKERS} workers gunicorn (une requête à la fois chacun), demo-national ; "
        "mélange : 40 % élément, 25 % page de 10, 15 % bbox 100, 10 % tuile z10, 5 % hits national, "
        "5 % PATCH\n"
    )
    print(
        "| configuration | req/s (tours) | p50 ms | p99 ms | erreurs | lectures sur la réplique "
        "| CPU ms/req app | primaire | réplique |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for name, rows in results.items():
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("rps", "p50", "p99", "replica_share")}
        cpu = {k: sum(r["cpu"][k] for r in rows) / len(rows) for k in rows[0]["cpu"]}
        runs = " / ".join(f"{r['rps']:.0f}" for r in rows)
        print(
            f"| {name} | {mean['rps']:.0f} ({runs}) | {mean['p50']:.1f} | {mean['p99']:.0f} "
            f"| {sum(r['errors'] for r in rows)} | {mean['replica_share']:.1%} | {cpu['app']:.1f} "
            f"| {cpu['primaire']:.1f} | {cpu['réplique']:.1f} |"
        )


if __name__ == "__main__":
    main()
