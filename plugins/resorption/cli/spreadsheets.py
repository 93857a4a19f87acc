"""`resorption import sites`: the import of `load`, run from the command line as a named user."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from resorption import settings as app_settings
from resorption.authentication import principal_of_user
from resorption.caller import Caller
from resorption.errors import InvalidParameter, NotFound
from resorption.identity import Principal
from resorption.progress import progress_bars
from resorption.spreadsheets.load import OUTCOMES, ImportReport, import_sites
from resorption.spreadsheets.readers import FORMATS, check_file_size

STYLES = {"created": "green", "updated": "cyan", "unchanged": "dim", "rejected": "red"}


def user_principal(username: str, settings: app_settings.Settings) -> Principal:
    """The principal of an active user, as if they had signed in."""
    principal = principal_of_user(username, settings)
    if principal is None:
        raise NotFound(
            f"Utilisateur « {username} » inconnu ou désactivé : vérifiez avec `resorption users list`."
        )
    return principal


def run_import(
    database_url: str,
    path: Path,
    dry_run: bool,
    keep_valid: bool,
    username: str,
    console: Console,
    out: Console,
) -> ImportReport:
    """Import `path` with the rights of `username`, showing progress on `console` and the report on `out`."""
    fmt = path.suffix.lower().removeprefix(".")
    if fmt not in FORMATS:
        raise InvalidParameter(f"{path.name} : seuls les fichiers .xlsx, .csv et .gpkg s'importent.")
    settings = app_settings.Settings.from_env(database_url)
    check_file_size(path.stat().st_size, settings.limits)  # before reading it
    caller = Caller.of(user_principal(username, settings), settings)
    with progress_bars(console) as bars:
        task = bars.add_task(f"Import de {path.name}", total=None)

        def advance(done: int, total: int) -> None:
            bars.update(task, completed=done, total=total)

        report = import_sites(caller, path, fmt, dry_run, keep_valid, advance)
    table = Table("ligne", "résultat", "site", "raison", title=f"Import de {path.name}")
    for r in report.rows:
        style = STYLES[r.outcome]
        table.add_row(
            str(r.row), f"[{style}]{OUTCOMES[r.outcome]}[/{style}]", str(r.site or ""), r.reason or ""
        )
    out.print(table)
    console.print(report.message, highlight=False)
    return report
