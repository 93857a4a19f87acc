"""Peak memory (RSS) and time of the exports at 100,000 sites: each export in a process of its
own, as a national administrator (every row, every field), on the bench's dataset.

    .venv/bin/python bench/export_memory.py [--size 100k] [--formats csv,xlsx,gpkg,fgb,geojson]

The dataset is `resorption_bench_<size>` of the embedded cluster (made once by bench/run,
or by `servers.ensure_dataset`). One line per format: rows, file size, seconds, peak RSS
(the process's own `ru_maxrss`, Python and the libraries included: the baseline line gives
what an idle process of the app already holds).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(url: str, fmt: str) -> dict:
    """Run one export in this process; what it measured."""
    from resorption.app import create_app
    from resorption.authentication import principal_of_user
    from resorption.caller import Caller
    from resorption.settings import Settings

    settings = Settings.from_env(url)
    app = create_app(settings)
    with app.app_context():
        caller = Caller.of(principal_of_user("demo-national", settings), settings)
        baseline = _peak_mib()
        started = time.perf_counter()
        if fmt in ("xlsx", "csv"):
            from resorption.spreadsheets.export import ExportRequest, export_sites

            made = export_sites(caller, ExportRequest(fmt=fmt))
            size, rows = made.file.path.stat().st_size, made.rows
            made.file.discard()
        elif fmt == "baseline":
            size, rows = 0, 0
        else:
            from resorption import geoexport
            from resorption.crs import parse_crs
            from resorption.job_files import temporary
            from resorption.params import parse_items

            sites = caller.sites
            fq = parse_items(sites, caller.readable_fields(sites), {}, settings.limits)
            key = {"fgb": "flatgeobuf"}.get(fmt, fmt)
            made = temporary(f".{fmt}")
            crs = parse_crs("http://www.opengis.net/def/crs/EPSG/0/2154", "crs")
            with caller.exporting() as conn:
                rows = geoexport.export(conn, fq, geoexport.FORMATS[key], crs, made.path)
            size = made.path.stat().st_size
            made.discard()
        seconds = time.perf_counter() - started
    return {"format": fmt, "rows": rows, "bytes": size, "seconds": round(seconds, 1),
            "baseline_mib": round(baseline), "peak_mib": round(_peak_mib())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k")
    parser.add_argument("--formats", default="baseline,csv,xlsx,gpkg,fgb,geojson")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.url, args.one)))
        return
    import servers

    url = servers.with_db(servers.server_url(), f"resorption_bench_{args.size}")
    print("| format | lignes | fichier (Mo) | durée (s) | RSS au départ (Mio) | RSS max (Mio) |")
    print("|---|---:|---:|---:|---:|---:|")
    for fmt in args.formats.split(","):
        done = subprocess.run(
            [sys.executable, __file__, "--one", fmt, "--url", url],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"| {fmt} | échec : {done.stderr.strip().splitlines()[-1]} |")
            continue
        m = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {fmt} | {m['rows']} | {m['bytes'] / 1e6:.1f} | {m['seconds']} | {m['baseline_mib']} | "
              f"{m['peak_mib']} |", flush=True)


if __name__ == "__main__":
    main()
