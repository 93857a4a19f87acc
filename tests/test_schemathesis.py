"""Every operation of our OpenAPI document, fuzzed by schemathesis: no request may get a 5xx.

schemathesis reads the document the server serves (self-contained, so it needs
no network), generates valid and invalid requests for every operation (its
examples and coverage phases) and checks that none is answered with a server
error. It runs as its own process, with a few workers, a fixed seed and a
bounded number of examples per operation, so the run is reproducible and stays
within a couple of minutes. When it fails, the message carries schemathesis'
summary (with a `curl` line to replay each failure) and the tracebacks the
server logged meanwhile.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MAX_EXAMPLES = 15
WORKERS = 4
SEED = 2019
TIMEOUT_S = 600


def _tracebacks(text: str, limit: int = 6) -> str:
    """The distinct tracebacks of 500s in a server log excerpt (not those of handled 4xx)."""
    blocks: list[str] = []
    current: list[str] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("Traceback"):
            # Our handler logs "unexpected error on …", Flask "Exception on …", just before.
            after_500 = "unexpected error" in previous or "Exception on" in previous
            current = [previous, line] if after_500 else []
        elif current:
            current.append(line)
            if not line.startswith(" "):
                blocks.append("\n".join(current))
                current = []
        previous = line
    unique = list(dict.fromkeys(blocks))
    return "\n\n".join(unique[-limit:])


def test_no_operation_answers_a_server_error(
    base_url: str, tmp_path: Path, server_log: Path, users: dict
) -> None:
    log = server_log
    log_start = log.stat().st_size
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{base_url}/openapi?f=json",
        "--url",
        base_url,
        # The schema's examples, then the coverage phase: boundaries, missing and mistyped
        # values of every parameter, deterministic (2 minutes). The random fuzzing phase added
        # a minute and a quarter to a CI already near its 30 minutes, for samples of the
        # same kinds of values.
        "--phases",
        "examples,coverage",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        str(WORKERS),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--request-timeout",
        "60",
        "--no-color",
        # Every failure of an operation, not only its first: one run tells all.
        "--continue-on-failure",
        # The write processes would close and change the demo sites other modules count
        # (tests/test_processes.py and tests/test_actors.py cover them); territory-statistics
        # only reads, it is fuzzed.
        # The open-data files take no parameter and are whole files (GDAL for the GeoPackage):
        # tests/test_dcat.py reads each one back; fuzzing them would only repeat that work.
        # The streams of changes last 25 s each (tests/test_pubsub_sse.py covers them).
        "--exclude-path-regex",
        "^(/processes/(close-site|record-census|advance-resorption|declare-actor|remove-actor|follow-site"
        "|unfollow-site)/execution|/donnees-ouvertes/stats_[a-z]+(\\.csv|-excel\\.csv|\\.geojson|\\.gpkg)"
        "|(/collections/[^/]+)?/events)$",
        # Signed in as a user who reads everything, so that every operation goes all the way
        # down to PostgreSQL (anonymous calls to sites and actions stop at 401).
        "--header",
        f"Authorization: Bearer {users['national-admin-nation'].token}",
    ]
    # Its working directory is ours: schemathesis leaves nothing in the repository.
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        with log.open(encoding="utf-8", errors="replace") as fh:
            fh.seek(log_start)
            logged = _tracebacks(fh.read())
        pytest.fail(
            f"schemathesis a trouvé des erreurs serveur (code {result.returncode}) :\n"
            f"{result.stdout[-12000:]}\n{result.stderr[-3000:]}\n"
            f"--- tracebacks du serveur ---\n{logged}",
            pytrace=False,
        )
    assert "Tested:" in result.stdout, result.stdout[-3000:]
