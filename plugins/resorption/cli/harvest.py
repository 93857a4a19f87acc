"""What `resorption moissonner` and `resorption moissonnages` do and print (commands.py parses options).

Tables go to stdout (`out`), messages and progress bars to stderr (`console`), as the
other commands of the project.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from datetime import datetime
from types import FrameType

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from resorption.errors import InvalidParameter, ResorptionError
from resorption.harvest import configured_sources
from resorption.harvest.runs import (
    OUTCOME_LABELS,
    STATUS_LABELS,
    RunReport,
    harvest,
    last_starts,
    recent_runs,
    run_rows,
)
from resorption.harvest.schedule import run_forever
from resorption.harvest.sources import Source, sources_path


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def _stop(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (systemd, docker stop) ends the run like Ctrl-C: the run is recorded as interrupted.
    raise KeyboardInterrupt


def follow_sources(database_url: str, names: Sequence[str], console: Console) -> None:
    """Follow the named sources' changes (Server-Sent Events) until Ctrl-C or SIGTERM."""
    import threading

    from resorption.harvest.follow import follow

    sites, sources = configured_sources(database_url)
    chosen = [s for n, s in sources.items() if not names or n in names]
    if not chosen or any(n not in sources for n in names):
        raise InvalidParameter(
            f"Sources à suivre introuvables ({', '.join(names) or 'aucune configurée'}) : "
            f"voyez {sources_path()}."
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, _stop)
    threads = [
        threading.Thread(
            target=follow,
            args=(database_url, source, sites, stop, lambda r: _print_report(console, r)),
            daemon=True,
        )
        for source in chosen
    ]
    for t in threads:
        t.start()
    console.print(f"Suivi des changements de : {', '.join(s.name for s in chosen)} (Ctrl-C pour arrêter).")
    try:
        while any(t.is_alive() for t in threads):
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        console.print("Suivi arrêté.")


def harvest_sources(
    database_url: str,
    names: Sequence[str],
    simulation: bool,
    scheduled: bool,
    full: bool,
    overwrite: bool,
    console: Console,
    out: Console,
) -> None:
    """Harvest the named sources (all when none is named), once or on their schedule."""
    sites, sources = configured_sources(database_url)
    unknown = [n for n in names if n not in sources]
    if unknown:
        known = ", ".join(sorted(sources)) or f"aucune source dans {sources_path()}"
        raise InvalidParameter(
            f"Source(s) inconnue(s) : {', '.join(unknown)} ; sources configurées : {known}."
        )
    chosen = {n: s for n, s in sources.items() if not names or n in names}
    if not chosen:
        raise InvalidParameter(
            f"Aucune source de moissonnage n'est configurée : ajoutez-en une dans {sources_path()} "
            "(un exemple commenté s'y trouve)."
        )

    def one(source: Source) -> RunReport:
        report = harvest(database_url, source, sites, simulation, console, full, overwrite)
        _print_report(console, report)
        return report

    def scheduled_one(source: Source) -> None:
        try:
            one(source)
        except ResorptionError as exc:  # e.g. a manual run of this source still going: next time
            console.print(f"[red]{escape(exc.message)}[/red]", highlight=False)

    if not scheduled:
        reports = [one(s) for s in chosen.values()]
        if any(r.status != "succeeded" for r in reports):
            raise SystemExit(1)
        return
    if simulation or overwrite:
        raise InvalidParameter("--planifie ne va ni avec --simulation ni avec --ecraser-conflits.")
    planned = {n: s for n, s in chosen.items() if s.every is not None}
    if not planned:
        raise InvalidParameter("Aucune de ces sources n'a de planification ({toutes: 6h}).")
    signal.signal(signal.SIGTERM, _stop)
    listed = ", ".join(f"{n} (toutes les {s.every})" for n, s in planned.items())
    console.print(f"Moissonnage planifié de : {escape(listed)}. Ctrl-C pour arrêter.", highlight=False)
    try:
        run_forever(planned, lambda: last_starts(database_url), scheduled_one)
    except KeyboardInterrupt:
        console.print("Moissonnage planifié arrêté.")


def _print_report(console: Console, report: RunReport) -> None:
    what = "Simulation du moissonnage" if report.simulation else "Moissonnage"
    since = f" (changements depuis le {_when(report.since)})" if report.since else ""
    color = "green" if report.status == "succeeded" else "red"
    console.print(
        f"[{color}]{what} n°{report.id} de « {escape(report.source)} »{since} : "
        f"{STATUS_LABELS[report.status]}[/{color}] — {report.fetched} élément(s) lu(s) en "
        f"{report.pages} page(s) : {report.summary()}.",
        highlight=False,
    )
    if report.message:
        console.print(f"[red]{escape(report.message)}[/red]", highlight=False)
    if report.counts["conflict"] or report.counts["rejected"] or report.counts["outside"]:
        console.print(f"Détail : resorption moissonnages --details {report.id}", highlight=False)


def show_runs(database_url: str, source: str | None, limit: int, details: int | None, out: Console) -> None:
    """Print the latest runs, or the row-level report of one."""
    if details is not None:
        rows = run_rows(database_url, details)
        table = Table("résultat", "identifiant distant", "site", "raison", title=f"Moissonnage n°{details}")
        for row in rows:
            table.add_row(
                OUTCOME_LABELS[row["outcome"]],
                row["remote_id"] or "—",
                str(row["site_id"] or "—"),
                row["reason"] or "",
            )
        out.print(table)
        return
    table = Table(
        "n°",
        "source",
        "début",
        "fin",
        "état",
        "lus",
        "créés",
        "mis à jour",
        "inchangés",
        "conflits",
        "rejetés",
        "hors dép.",
        "absents",
        "message",
        title="Moissonnages",
    )
    for run in recent_runs(database_url, source, limit):
        state = STATUS_LABELS[run["status"]] + (" (simulation)" if run["simulation"] else "")
        table.add_row(
            str(run["id"]),
            run["source"],
            _when(run["started_at"]),
            _when(run["finished_at"]),
            state,
            str(run["fetched"]),
            str(run["created"]),
            str(run["updated"]),
            str(run["unchanged"]),
            str(run["conflicts"]),
            str(run["rejected"]),
            str(run["outside"]),
            str(run["missing"]),
            run["message"] or "",
        )
    out.print(table)
