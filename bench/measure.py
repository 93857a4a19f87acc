"""Measuring: wrk for the HTTP servers, pgbench for the SQL floor, /proc for CPU time."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
PGBENCH = next(
    (p for p in ("/usr/lib/postgresql/15/bin/pgbench", "/usr/bin/pgbench") if Path(p).exists()), "pgbench"
)


@dataclass
class Result:
    """One measured request on one server at one concurrency."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    bytes_per_response: float
    server_cpu_ms: float | None  # CPU of the server's processes per request
    db_cpu_ms: float | None  # CPU of the PostgreSQL backends per request
    runs: str = ""  # a mean's runs, req/s each ("212 / 220")


def cpu_ms(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each live process, in milliseconds."""
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) * TICK_MS
    return times


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two samples; a process born in between counts from zero."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def wrk(
    url: str,
    headers: dict[str, str],
    connections: int,
    duration: int,
    server_pids: list[int],
    db_pids: callable,  # type: ignore[valid-type]
    lua: str | None = None,
) -> Result:
    """Run wrk on one URL; CPU is sampled around the run.

    `lua`: a mix of requests (its `request` function, and `on_response`), run before the
    reporter; wrk then gets one thread per connection, so that each connection keeps its own
    state (the ETag a write sends back in If-Match).
    """
    script = BENCH / "report.lua"
    threads = min(connections, 2)
    if lua is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
            handle.write(lua + "\n" + script.read_text())
        script, threads = Path(handle.name), connections
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
    ]
    # `Connection: close` for every server alike: a new connection per request is accepted by
    # whichever worker is free, where a keep-alive connection stays with the worker that
    # accepted it (4 connections on 2 workers could land 3 on one).
    for name, value in {**headers, "Connection": "close"}.items():
        command += ["-H", f"{name}: {value}"]
    db_before, server_before = cpu_ms(db_pids()), cpu_ms(server_pids)
    try:
        out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    finally:
        if lua is not None:
            script.unlink()
    db_after, server_after = cpu_ms(db_pids()), cpu_ms(server_pids)
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    data = json.loads(line.removeprefix("BENCH_JSON "))
    n = max(data["requests"], 1)
    return Result(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["http_errors"] + data["socket_errors"],
        bytes_per_response=data["bytes"] / n,
        server_cpu_ms=spent(server_before, server_after) / n,
        db_cpu_ms=spent(db_before, db_after) / n,
    )


def pgbench(url: str, script: str, connections: int, duration: int, db_pids: callable) -> Result:  # type: ignore[valid-type]
    """PostgreSQL alone running `script` (one request's statements), prepared as psycopg does.

    pgbench's backends exit with it, so their CPU is sampled inside the run, over a window
    that leaves out the first and the last second, and divided by the transactions of that
    window (from pgbench's per-transaction log).
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "request.sql"
        path.write_text(script)
        command = [
            PGBENCH,
            "-n",
            "-M",
            "prepared",
            "-c",
            str(connections),
            "-j",
            str(min(connections, 2)),
            "-T",
            str(duration),
            "-f",
            str(path),
            "--log",
            f"--log-prefix={tmp}/tx",
            url,
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp
        )
        window = max(duration - 2, 1)
        time.sleep(1)
        t1, before = time.time(), cpu_ms(db_pids())
        time.sleep(window)
        t2, after = time.time(), cpu_ms(db_pids())
        stdout, stderr = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"pgbench a échoué :\n{stderr[-2000:]}")
        rows = [line.split() for log in Path(tmp).glob("tx*") for line in log.read_text().splitlines()]
    latencies = sorted(int(r[2]) for r in rows)
    in_window = sum(1 for r in rows if t1 <= int(r[4]) + int(r[5]) / 1e6 <= t2)
    tps = next(float(x.split("=")[1].split()[0]) for x in stdout.splitlines() if x.startswith("tps ="))
    return Result(
        rps=tps,
        p50_ms=statistics.median(latencies) / 1000 if latencies else 0.0,
        p99_ms=latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] / 1000 if latencies else 0.0,
        errors=0,
        bytes_per_response=0.0,
        server_cpu_ms=None,
        db_cpu_ms=spent(before, after) / max(in_window, 1),
    )
