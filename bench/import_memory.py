"""Peak memory (RSS) and time of the imports at 100,000 sites: each import in a process of its
own, as a national administrator, on the bench's dataset.

    .venv/bin/python bench/import_memory.py [--size 100k] [--formats baseline,csv,csv-new,xlsx,gpkg]
        [--rows N] [--read]

The files are the exports of the same sites (export-sites in CSV and XLSX, export-collection
in GeoPackage), made once into bench/.import-files/; each is imported as a dry run (every row
read, checked and written through the one write path, then rolled back: the dataset stays as
it is). One line per format: rows, file size, seconds, peak RSS (the process's own
`ru_maxrss`; the baseline line gives what an idle process of the app already holds). The
limits of an import are raised for the run (RESORPTION_IMPORT_MAX_*).

Format `csv-new` is the CSV export with its ids and external references emptied: every row
creates a site (the costlier path: placement, insert, history, outbox), rolled back too.

`--read` measures the reading of the file alone (every row read and counted, what the import
does before it writes: the part whose memory grew with the file), without the write path.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
FILES = BENCH / ".import-files"
LIMITS = {
    "RESORPTION_IMPORT_MAX_ROWS": "1000000",
    "RESORPTION_IMPORT_MAX_BYTES": str(1024**3),
    "RESORPTION_IMPORT_MAX_UNCOMPRESSED_BYTES": str(4 * 1024**3),
    "RESORPTION_MAX_BODY_BYTES": str(2 * 1024**3),
}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _caller(url: str):
    from resorption.app import create_app
    from resorption.authentication import principal_of_user
    from resorption.caller import Caller
    from resorption.settings import Settings

    settings = Settings.from_env(url)
    app = create_app(settings)
    context = app.app_context()
    context.push()
    return Caller.of(principal_of_user("demo-national", settings), settings)


def make_file(url: str, fmt: str, rows: int) -> Path:
    """The export of the first `rows` sites in `fmt`, made once."""
    path = FILES / f"sites-{rows}.{fmt}"
    if path.exists():
        return path
    FILES.mkdir(exist_ok=True)
    if fmt == "csv-new":
        return _without_ids(make_file(url, "csv", rows), path)
    caller = _caller(url)
    with caller.reading() as conn:
        first = "SELECT id FROM resorption.sites ORDER BY id LIMIT %s"
        last_id = conn.execute(f"SELECT max(id) FROM ({first}) s", (rows,)).fetchone()[0]
    within = f"id <= {last_id}"
    if fmt in ("csv", "xlsx"):
        from resorption.spreadsheets.export import ExportRequest, export_sites

        made = export_sites(caller, ExportRequest(fmt=fmt, filter=within))
        made.file.path.rename(path)
    else:
        from resorption import geoexport
        from resorption.crs import parse_crs
        from resorption.params import parse_items

        sites = caller.sites
        fq = parse_items(sites, caller.readable_fields(sites), {"filter": within}, caller.settings.limits)
        crs = parse_crs("http://www.opengis.net/def/crs/EPSG/0/4326", "crs")
        with caller.exporting() as conn:
            geoexport.export(conn, fq, geoexport.FORMATS["gpkg"], crs, path)
    return path


def _without_ids(source: Path, path: Path) -> Path:
    """The CSV at `source` with its ids and external references emptied, row by row."""
    with (
        source.open(encoding="utf-8-sig", newline="") as inp,
        path.open("w", encoding="utf-8", newline="") as out,
    ):
        reader, writer = csv.reader(inp, delimiter=";"), csv.writer(out, delimiter=";")
        header = next(reader)
        emptied = [i for i, h in enumerate(header) if h.endswith(("– Identifiant", "– Référence externe"))]
        writer.writerow(header)
        for row in reader:
            for i in emptied:
                row[i] = ""
            writer.writerow(row)
    return path


def one(url: str, fmt: str, path: Path, read_only: bool) -> dict:
    """Import one file (dry run), or only read it, in this process; what it measured."""
    caller = _caller(url)
    baseline = _peak_mib()
    started = time.perf_counter()
    if fmt == "baseline":
        rows = 0
    elif read_only:
        from resorption.spreadsheets import readers

        if hasattr(readers, "rows"):  # the code after streaming: a generator over the file
            rows = sum(1 for _ in readers.rows(path, fmt, caller.settings.limits))
        else:  # before: every row of the file's bytes, in a list
            rows = len(readers.read_rows(path.read_bytes(), fmt, caller.settings.limits))
    else:
        from resorption.spreadsheets.load import import_sites

        # The code before streaming took the file's bytes; the code after, its path.
        source = path if "path" in inspect.signature(import_sites).parameters else path.read_bytes()
        report = import_sites(caller, source, fmt.removesuffix("-new"), dry_run=True)
        rows = len(report.rows)
        rejected = report.count("rejected")
        if rejected:
            print(f"{rejected} lignes refusées, par exemple : {report.rows[0].reason}", file=sys.stderr)
    seconds = time.perf_counter() - started
    return {
        "format": fmt,
        "rows": rows,
        "bytes": path.stat().st_size if fmt != "baseline" else 0,
        "seconds": round(seconds, 1),
        "baseline_mib": round(baseline),
        "peak_mib": round(_peak_mib()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k")
    parser.add_argument("--formats", default="baseline,csv,csv-new,xlsx,gpkg")
    parser.add_argument("--rows", type=int, default=100_000, help="sites importés (les premiers du jeu)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--read", action="store_true", help="la lecture seule du fichier")
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--make", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.update(LIMITS)
    if args.make:
        print(make_file(args.url, args.make, args.rows))
        return
    if args.one:
        print(json.dumps(one(args.url, args.one, Path(args.file), args.read)))
        return
    import servers

    url = servers.with_db(servers.server_url(), f"resorption_bench_{args.size}")
    print("| format | lignes | fichier (Mo) | durée (s) | RSS au départ (Mio) | RSS max (Mio) |")
    print("|---|---:|---:|---:|---:|---:|")
    for fmt in args.formats.split(","):
        path = Path(os.devnull)
        if fmt != "baseline":
            # Made in a process of its own, with the current code (not measured).
            made = subprocess.run(
                [sys.executable, __file__, "--make", fmt, "--url", url, "--rows", str(args.rows)],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "PYTHONPATH": ""},
            )
            if made.returncode != 0:
                print(f"| {fmt} | échec de l'export : {made.stderr.strip().splitlines()[-1]} |")
                continue
            path = Path(made.stdout.strip().splitlines()[-1])
        done = subprocess.run(
            [sys.executable, __file__, "--one", fmt, "--url", url, "--file", str(path)]
            + (["--read"] if args.read else []),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"| {fmt} | échec : {done.stderr.strip().splitlines()[-1]} |")
            continue
        m = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"| {fmt} | {m['rows']} | {m['bytes'] / 1e6:.1f} | {m['seconds']} | {m['baseline_mib']} | "
            f"{m['peak_mib']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
