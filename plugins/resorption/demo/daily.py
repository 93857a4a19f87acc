"""The daily work of the demonstration accounts: journal messages on demo sites and actions
(varied tags and visibilities, FICTIONAL French texts), site actors and followed sites, so
that `make demo` shows what users do every week, not only the data.

It runs after the demonstration accounts exist (`demo.accounts.ensure_demo_accounts`), as
the owner, in one transaction; it first removes what it wrote before, so running it again
gives the same rows. The draw is seeded and the dates are counted back from `AS_OF`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import psycopg

from resorption import statements
from resorption.demo.accounts import ACCOUNTS
from resorption.demo.dates import AS_OF
from resorption.demo.words import PREFIX

SQL = statements.load("demo_daily")

USERNAMES = [a.username for a in ACCOUNTS]
# What the accounts do on their territory's first open sites and actions.
SITES_PER_ACCOUNT = 5
ACTIONS_PER_ACCOUNT = 3
MESSAGES_PER_SITE = (1, 3)
MESSAGES_PER_ACTION = (1, 2)
# The national account's territory for its messages, and who reads a « chosen » message.
NATIONAL_DEPARTEMENT = "33"
CHOSEN_AUDIENCE = ["demo-national"]

# (tags, text): fictional messages of a site's journal.
SITE_MESSAGES = (
    (["suivi_social"], "Passage de l'équipe sociale : deux familles orientées vers la PMI."),
    (["scolarisation"], "Trois enfants inscrits à l'école élémentaire du quartier ; transport à organiser."),
    (["sante"], "Campagne de vaccination prévue mardi avec le centre de santé, affiches déposées."),
    (["incident"], "Départ de feu maîtrisé près des caravanes, pas de blessé. Extincteurs à remplacer."),
    (["evacuation"], "Arrêté d'évacuation notifié ; réunion de coordination en préfecture jeudi."),
    (
        ["mediation", "scolarisation"],
        "La médiatrice a accompagné les parents à la mairie pour les inscriptions.",
    ),
    (["logement"], "Une famille relogée en logement accompagné, une autre en attente de place."),
    (["securisation"], "Bennes posées pour les déchets encombrants, collecte convenue avec la métropole."),
    (
        ["emploi", "suivi_social"],
        "Deux personnes inscrites à France Travail, entretiens fixés la semaine prochaine.",
    ),
    (["autre"], "Visite de repérage avec la DDETS : point d'eau à déplacer, 25 personnes environ."),
)
ACTION_MESSAGES = (
    (["emploi"], "Comité de suivi : cinq contrats signés depuis le dernier relevé."),
    (["scolarisation"], "Bilan de rentrée : douze enfants scolarisés, deux en attente d'affectation."),
    (["logement"], "Point avec le bailleur : trois logements disponibles au prochain trimestre."),
    (["sante", "mediation"], "Permanence santé bimensuelle confirmée jusqu'à la fin de l'année."),
    (["suivi_social"], "Rapport d'activité transmis aux financeurs ; relevé d'indicateurs à mettre à jour."),
)
VISIBILITIES = ("everyone", "everyone", "everyone", "state_services", "chosen")
THEMES = ("health", "schooling", "social_support", "employment", "housing", "safety", "other")


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    username: str
    organisation_id: int
    departement: str


def _instant(as_of: date, days_back: int, rng: random.Random) -> datetime:
    """A working hour `days_back` days before `as_of`."""
    day = as_of - timedelta(days=days_back)
    return datetime.combine(day, time(rng.randint(8, 18), rng.choice((0, 15, 30, 45))), UTC)


def _accounts(conn: psycopg.Connection) -> list[Account]:
    rows = conn.execute(SQL.accounts, (USERNAMES,)).fetchall()
    return [Account(i, u, o, code or NATIONAL_DEPARTEMENT) for i, u, o, code in rows]


def remove_daily_work(conn: psycopg.Connection) -> None:
    """What the demonstration accounts wrote before (messages and their versions, actors, follows)."""
    for statement in (
        SQL.delete_site_comments,
        SQL.delete_site_comment_versions,
        SQL.delete_action_comments,
        SQL.delete_action_comment_versions,
        SQL.delete_actors,
        SQL.delete_followers,
    ):
        conn.execute(statement, (USERNAMES,))


def _message(
    conn: psycopg.Connection,
    statement: object,
    parent: int,
    who: Account,
    pool: tuple,
    at: datetime,
    rng: random.Random,
) -> None:
    tags, text = rng.choice(pool)
    visibility = rng.choice(VISIBILITIES)
    conn.execute(
        statement,  # type: ignore[arg-type]
        {
            "parent": parent,
            "message": text,
            "tags": tags,
            "visibility": visibility,
            "audience": CHOSEN_AUDIENCE if visibility == "chosen" else [],
            "author": who.id,
            "organisation": who.organisation_id,
            "at": at,
            "username": who.username,
        },
    )


def _work(conn: psycopg.Connection, who: Account, rng: random.Random, as_of: date) -> None:
    """One account's weeks: messages on its sites and actions; it acts on and follows sites."""
    sites = [
        r[0]
        for r in conn.execute(
            SQL.open_sites, {"d": who.departement, "p": PREFIX + "%", "n": SITES_PER_ACCOUNT}
        )
    ]
    actions = [
        r[0]
        for r in conn.execute(
            SQL.actions_in, {"d": who.departement, "p": PREFIX + "%", "n": ACTIONS_PER_ACCOUNT}
        )
    ]
    observer = who.username.startswith("demo-observateur")
    for n, site in enumerate(sites):
        for _ in range(rng.randint(*MESSAGES_PER_SITE)):
            _message(
                conn,
                SQL.insert_site_comment,
                site,
                who,
                SITE_MESSAGES,
                _instant(as_of, rng.randint(1, 60), rng),
                rng,
            )
        at = _instant(as_of, rng.randint(60, 120), rng)
        if n < 3:
            conn.execute(SQL.insert_follower, (who.id, site, at))
        # An observer only reads and writes in the journal; the others work on the sites.
        if observer:
            continue
        themes = sorted(rng.sample(THEMES[:-1], rng.randint(1, 2)))
        person = n % 2 == 0
        conn.execute(
            SQL.insert_actor,
            {
                "site": site,
                "user": who.id if person else None,
                "person": "Compte de démonstration" if person else None,
                "organisation": who.organisation_id,
                "themes": themes,
                "username": who.username,
                "at": at,
            },
        )
    for action in actions:
        for _ in range(rng.randint(*MESSAGES_PER_ACTION)):
            _message(
                conn,
                SQL.insert_action_comment,
                action,
                who,
                ACTION_MESSAGES,
                _instant(as_of, rng.randint(1, 90), rng),
                rng,
            )


def write_daily_work(database_url: str, seed: int = 2019, as_of: date = AS_OF) -> dict[str, int]:
    """Replace the daily work of the demonstration accounts; the counts of rows it left:
    site_messages, action_messages, actors, followed."""
    rng = random.Random(seed)
    as_of = min(as_of, date.today())
    with psycopg.connect(database_url) as conn, conn.transaction():
        remove_daily_work(conn)
        for who in _accounts(conn):
            _work(conn, who, rng, as_of)
        row = conn.execute(SQL.count_daily, {"u": USERNAMES}).fetchone()
    assert row is not None
    return dict(zip(("site_messages", "action_messages", "actors", "followed"), row, strict=True))
