"""Synthetic demonstration data: sites, resorption actions and organisations, all FICTIONAL.

Every site, person count, owner, court case, action, budget and organisation
written here is invented. Only the territories are real: sites stand at
random points inside real communes, in the départements where slums really
concentrate (Île-de-France, Nord, the large metropolitan areas of the south
and west, Mayotte and French Guiana), so that maps, filters and figures
behave as they would on real data. The data says it is fictional wherever a
user meets it: site and action references start with `DEMO-`, organisation
names end with « (démo) », and the console summary says so.

The generator is deterministic: the same seed and size give the same rows,
byte for byte, because every draw comes from one `random.Random(seed)`,
PostGIS draws the points with explicit seeds, and every date hangs on a fixed
reference day (`AS_OF`) instead of the clock. Running it again replaces the
previous demonstration data and leaves any other data alone.
"""

import math
import random
import struct
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from resorption.territories import read_table

# The day the fictional data describes. Fixed, so that a run today and a run
# next month give the same rows; earlier clocks fall back to today.
AS_OF = date(2026, 6, 30)
PLATFORM_LAUNCH = date(2019, 5, 15)
FIRST_CLOSING = date(2019, 1, 1)

PREFIX = "DEMO-"
ORG_SUFFIX = " (démo)"
AUTHOR = "generateur-demo"

# Share of sites per département (per cent), after the Dihal's yearly
# inventories: Seine-Saint-Denis and the other Île-de-France départements
# first, then the Nord and the large metropolitan areas. The remaining share
# goes to the other départements in proportion to their population.
DEPARTEMENT_SHARES: dict[str, float] = {
    "93": 11.0, "59": 7.0, "13": 6.0, "33": 5.5, "44": 5.5, "31": 5.0, "69": 5.0,
    "94": 4.0, "91": 4.0, "34": 4.0, "95": 3.0, "77": 3.0, "38": 3.0, "75": 2.0,
    "06": 2.0, "67": 2.0, "35": 2.0, "78": 1.5, "92": 1.5, "83": 1.5, "30": 1.5,
    "973": 1.2, "976": 0.8,
}
TAIL_SHARE = 18.0

OPEN_SHARE = 0.5625  # about 450 open sites out of 800
CLOSED_STATUSES = (
    ("resorbed", 14), ("closed_by_justice", 34), ("closed_by_pref_admin", 20),
    ("closed_by_city_admin", 10), ("other", 10), ("unknown", 12),
)
CLOSING_CONTEXTS = (
    "Incendie du site, mise à l'abri d'urgence des familles",
    "Départ spontané des occupants avant le début de travaux",
    "Inondation du terrain après de fortes pluies",
    "Regroupement des familles sur un site voisin",
    "Démolition par le propriétaire après le départ des occupants",
)
PHASES = (
    "phase_sociological_diagnosis_at", "phase_technical_diagnosis_at",
    "phase_social_assessment_at", "phase_political_validation_at",
    "phase_contract_preparation_at", "phase_land_development_at",
    "phase_family_information_at", "phase_contractualisation_at",
    "phase_official_opening_at",
)

# Size of a settlement: log-normal (median, sigma) and bounds, per kind of département.
SIZES: dict[str, tuple[float, float, int, int]] = {
    "976": (450.0, 0.6, 120, 2500),  # Mayotte: shanty neighbourhoods of hundreds
    "973": (130.0, 0.7, 25, 900),  # French Guiana: large informal settlements
    "overseas": (40.0, 0.8, 5, 400),
    "metropole": (21.0, 1.0, 2, 400),
}

# Place names: each street type with its article, for "Campement du Chemin des Sables".
STREET_TYPES = (
    ("chemin", "du Chemin"), ("rue", "de la Rue"), ("route", "de la Route"),
    ("allée", "de l'Allée"), ("impasse", "de l'Impasse"), ("quai", "du Quai"),
    ("avenue", "de l'Avenue"), ("boulevard", "du Boulevard"), ("sentier", "du Sentier"),
)
STREET_NAMES = (
    "des Sables", "du Moulin", "des Peupliers", "de la Gare", "du Canal", "des Acacias",
    "de la Digue", "du Stade", "des Vignes", "de l'Écluse", "du Port", "des Tanneurs",
    "de la Ferme", "des Saules", "du Lavoir", "de la Briqueterie", "des Jardins",
    "du Pont Vieux", "de la Croix Blanche", "des Carrières", "de la Forge", "des Étangs",
    "du Halage", "des Cheminots", "de la Verrerie", "des Marais", "du Parc",
    "de la Tuilerie", "des Roseaux", "du Fort",
)
OVERSEAS_STREET_NAMES = (
    "des Manguiers", "des Cocotiers", "de la Ravine", "du Morne", "des Filaos",
    "de la Pointe", "des Flamboyants", "de la Mangrove", "du Carbet", "des Bananiers",
)
LAND_KINDS = ("Campement", "Bidonville", "Terrain", "Installation", "Site")
BUILDING_KINDS = ("Squat", "Immeuble", "Bâtiment", "Hangar")
OVERSEAS_KINDS = ("Quartier", "Village", "Installation")
BUILDING_PLACES = (
    "Ancienne clinique", "Ancien collège", "Ancienne usine", "Ancien entrepôt",
    "Ancien hôtel", "Ancienne caserne", "Ancienne imprimerie",
)
ACCESS_DETAILS = (
    "Accès par le portail côté voie ferrée",
    "Entrée par le parking du centre commercial",
    "Accès piéton uniquement, sentier le long du canal",
    "Chemin de terre après le rond-point, praticable en voiture",
    "Accès par l'arrière du bâtiment, porte bleue",
    "Passage sous le pont, stationnement possible sur le bas-côté",
    "Entrée par la rue principale, digicode hors service",
    "Accès en contrebas de la route, prévoir des bottes par temps de pluie",
)
SURNAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
    "Leroy", "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David",
    "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "Andre", "Mercier",
)
PUBLIC_OWNERS = (
    "Commune {de}", "Domaine public ferroviaire", "Domaine public fluvial", "État",
    "Conseil départemental", "Établissement public foncier local",
    "Office public de l'habitat",
)
PRIVATE_OWNERS = (
    "SCI Les Tilleuls", "SCI du Moulin", "SCI Horizon Sud", "{surname} Immobilier SAS",
    "M. {surname}", "Mme {surname}", "Indivision {surname}", "Société foncière {surname}",
)
ASSOCIATION_NAMES = (
    ("Association", "Passerelles"), ("Collectif", "Horizons"), ("Association", "Ancrages"),
    ("Réseau", "Trait d'union"), ("Association", "Main tendue"), ("Collectif", "Toit commun"),
    ("Association", "Relais solidaire"), ("Association", "Cap insertion"),
    ("Fédération", "Entre deux rives"), ("Association", "Les Chemins"),
    ("Association", "Pas à pas"), ("Collectif", "Écoles pour tous"),
)
NATIONAL_ORGANISATIONS = (
    ("Délégation interministérielle à l'hébergement et à l'accès au logement", "Dihal",
     "state_service"),
    ("Ministère de l'Éducation nationale", "MEN", "state_service"),
    ("Office français de l'immigration et de l'intégration", "OFII", "other"),
    ("Fédération nationale Passerelles", "FNP", "association"),
    ("Médiation santé sans frontières", "MSSF", "association"),
)

# Action themes: name template, topics (the first always kept), place types, goals.
THEMES = (
    ("Accompagnement global des familles {de}",
     ("housing", "health", "schooling", "training_employment", "rights_access"),
     ("on_site", "housing"),
     "Accompagner chaque famille vers le droit commun : santé, école, emploi et logement."),
    ("Scolarisation des enfants des sites {de}", ("schooling", "mediation"), ("on_site",),
     "Identifier les enfants, les inscrire à l'école et suivre leur assiduité."),
    ("Médiation sanitaire {de}", ("health", "mediation", "rights_access"), ("on_site",),
     "Ouvrir les droits à l'assurance maladie et orienter vers les soins."),
    ("Insertion professionnelle {de}", ("training_employment", "rights_access"),
     ("on_site", "other"),
     "Accompagner les adultes vers la formation et un contrat de travail."),
    ("Espace temporaire d'insertion {de}",
     ("housing", "training_employment", "stabilisation_safety"), ("eti",),
     "Héberger temporairement des familles et préparer leur accès au logement."),
    ("Sécurisation et stabilisation du site {de}", ("stabilisation_safety", "health"),
     ("on_site",),
     "Installer l'eau, des toilettes et la collecte des déchets ; prévenir les incendies."),
    ("Accès au logement {de}", ("housing", "rights_access"), ("housing",),
     "Mobiliser des logements d'insertion et sociaux pour les ménages prêts au relogement."),
    ("Diagnostic social global {de}", ("rights_access", "mediation"), ("on_site", "other"),
     "Recenser les ménages, leurs besoins et leurs projets ; poser le cadre de l'action."),
)
FUNDING_DETAILS = {
    "state": "Crédits de droit commun de l'État",
    "dedicated_resorption": "Crédits dédiés à la résorption des bidonvilles",
    "local_authority": "Participation des collectivités",
    "european": "Fonds social européen",
    "private": "Fondation privée",
    "other": "Autres financements",
}

SITE_COLUMNS = (
    "id", "name", "address", "access_details", "location", "outline", "commune_code",
    "external_ref", "field_type", "owner_type", "owner_name", "built_at", "declared_at",
    "status", "closed_at", "closed_with_solutions", "closing_context", "is_reinstallation",
    "reinstallation_details", "resorption_target", *PHASES,
    "population_total", "population_women", "population_households", "population_minors",
    "population_girls", "minors_0_3", "minors_3_6", "minors_6_12", "minors_12_16",
    "minors_16_18", "minors_in_school", "population_updated_at", "social_origins",
    "dwellings_caravans", "dwellings_huts", "dwellings_tents", "dwellings_cars",
    "dwellings_mattresses", "census_status", "census_at", "census_by",
    "water_access_type", "water_is_public", "water_is_continuous", "water_is_on_site",
    "water_is_close", "water_is_unequal", "sanitation_open_defecation",
    "sanitation_working_toilets", "sanitation_toilet_types", "sanitation_toilets_lit_lockable",
    "sanitation_hand_washing", "electricity_access", "electricity_types", "waste_piling",
    "waste_collection_point_close", "waste_regular_collection", "waste_bulky", "pests_present",
    "fire_prevention_diagnostic", "heatwave_alert", "owner_complaint", "justice_procedure",
    "justice_decision", "justice_decision_at", "justice_court", "justice_appeal",
    "police_assistance", "police_requested_at", "police_granted_at", "bailiff",
    "evacuation_order", "evacuation_order_at", "evacuation_order_notified_at",
    "evacuation_order_author", "insalubrity_order", "insalubrity_order_type",
    "insalubrity_order_at", "insalubrity_parcels", "created_at", "created_by", "updated_at",
    "updated_by", "confirmed_at",
)
# Columns the database refuses as NULL: each generated row sets them.
SITE_REQUIRED = ("social_origins", "sanitation_toilet_types", "electricity_types")
ACTION_COLUMNS = (
    "id", "name", "reference", "started_at", "ended_at", "goals", "topics", "place_type",
    "departement_code", "created_at", "created_by", "updated_at", "updated_by",
)
INDICATOR_COLUMNS = (
    "action_id", "measured_at", "people", "households", "women", "minors",
    "people_health_care", "people_work_contract", "people_shelter", "households_shelter",
    "people_housing", "households_housing", "minors_identified", "minors_mediation",
    "minors_school_start", "minors_nursery", "minors_primary", "minors_middle", "minors_high",
)


@dataclass(frozen=True, slots=True)
class Commune:
    """A real commune sites may be placed in, weighted by its population."""

    code: str
    name: str
    weight: float


@dataclass(frozen=True, slots=True)
class Departement:
    """A real département, with its communes and the phrases that name it."""

    code: str
    name: str
    de: str  # "de la Gironde"
    region_code: str
    communes: tuple[Commune, ...]
    population: int

    @property
    def overseas(self) -> bool:
        """Whether the département is one of the five overseas ones."""
        return self.code.startswith("97")

    @property
    def seat(self) -> str:
        """Its most populous commune: where the fictional courts sit."""
        return max(self.communes, key=lambda c: c.weight).name


@dataclass(slots=True)
class Site:
    """What later steps (actions, solutions, reinstallations) need to know of a site."""

    id: int
    ref: str
    departement: Departement
    commune: Commune
    x: float
    y: float
    status: str
    declared_at: date
    closed_at: date | None
    field_type: str
    total: int | None
    households: int | None
    women: int | None
    minors: int | None
    name: str | None = None
    origins: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Organisations:
    """Ids of the demonstration organisations, by role."""

    prefecture: dict[str, int] = field(default_factory=dict)
    ddets: dict[str, int] = field(default_factory=dict)
    associations: dict[str, list[int]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    national_associations: list[int] = field(default_factory=list)
    count: int = 0


def generate_demo(
    database_url: str,
    sites: int = 800,
    seed: int = 2019,
    console: Console | None = None,
    as_of: date = AS_OF,
) -> dict[str, int]:
    """Replace the demonstration data with `sites` fictional sites and their actions."""
    if sites < 0:
        raise ValueError("sites must be zero or more")
    as_of = min(as_of, date.today())
    rng = random.Random(seed)
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        _progress(console) as progress,
    ):
        with conn.transaction():
            departements = _load_departements(conn)
            _delete_previous(conn)
            allocation = _allocate(rng, departements, sites)
            points = _draw_points(conn, rng, allocation, progress)
            generated = _write_sites(conn, rng, allocation, points, as_of, progress)
            organisations = _write_organisations(conn, rng, departements, generated)
            _write_site_children(conn, rng, generated)
            _write_actions(conn, rng, generated, organisations, departements, as_of, progress)
        counts = _counts(conn)
    if console:
        _print_summary(console, counts, seed, as_of)
    return counts


# --- territories ------------------------------------------------------------------------------

LOAD_DEPARTEMENTS = sql.SQL("""
    SELECT d.code, d.name, d.region_code, c.code, c.name, c.population
    FROM resorption.departements d
    JOIN resorption.communes c ON c.departement_code = d.code
    WHERE c.geom IS NOT NULL AND NOT ST_IsEmpty(c.geom)
    ORDER BY d.code, c.code
""")


def _load_departements(conn: psycopg.Connection) -> dict[str, Departement]:
    """Real départements and communes with an outline, ordered by code."""
    articles = {row["code"]: row["type_nom"] for row in read_table("departements")}
    rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in conn.execute(LOAD_DEPARTEMENTS):
        rows[row[0]].append(row)
    if not rows:
        raise RuntimeError(
            "Aucune commune en base : chargez d'abord les territoires (load_territories)."
        )
    departements = {}
    for code, members in rows.items():
        _, name, region, *_ = members[0]
        # Mayotte's communes ship without a population: weigh them alike.
        communes = tuple(Commune(c, n, float(p) if p else 10_000.0) for *_, c, n, p in members)
        departements[code] = Departement(
            code=code, name=name, de=_departement_de(name, articles.get(code, "0")),
            region_code=region, communes=communes,
            population=sum(int(c.weight) for c in communes),
        )
    return departements


def _departement_de(name: str, type_nom: str) -> str:
    """"de la Gironde", "du Nord", "de l'Ain", from INSEE's kind of name (TNCC)."""
    article = {"1": "d'", "2": "du ", "3": "de la ", "4": "des ", "5": "de l'"}
    return article.get(type_nom, "de ") + name


def _de(name: str) -> str:
    """"de Montreuil", "du Havre", "des Mureaux", "d'Aubervilliers"."""
    if name.startswith("Le "):
        return "du " + name[3:]
    if name.startswith("Les "):
        return "des " + name[4:]
    if name[0] in "AEIOUYÂÉÈÊÎÔ":
        return "d'" + name
    return "de " + name


# --- previous data ----------------------------------------------------------------------------

DEMO_TABLES = (
    "action_indicators", "action_finances", "action_sites", "action_organisations",
    "action_departements", "actions", "site_reinstallation_origins",
    "site_closing_solutions", "sites",
)


def _delete_previous(conn: psycopg.Connection) -> None:
    """Remove earlier demonstration sites and actions; any other row stays."""
    like = PREFIX + "%"
    others = conn.execute(
        "SELECT (SELECT count(*) FROM resorption.sites WHERE external_ref NOT LIKE %(p)s"
        "        OR external_ref IS NULL)"
        " + (SELECT count(*) FROM resorption.actions WHERE reference NOT LIKE %(p)s"
        "        OR reference IS NULL)",
        {"p": like},
    ).fetchone()
    if others and others[0] == 0:
        # Only demonstration data: truncating is much faster than deleting a
        # million rows, and restarting the identities gives the same ids again.
        # A table of someone else's referencing these refuses the truncation.
        try:
            with conn.transaction():
                conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                    sql.SQL(", ").join(sql.Identifier("resorption", t) for t in DEMO_TABLES)))
            return
        except pg_errors.FeatureNotSupported:
            pass
    conn.execute("DELETE FROM resorption.actions WHERE reference LIKE %s", (like,))
    conn.execute("DELETE FROM resorption.sites WHERE external_ref LIKE %s", (like,))
    for table in ("sites", "actions"):
        # Emptied tables number from 1 again, as after a truncation.
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({name}, 'id'), 1, false)"
                " WHERE NOT EXISTS (SELECT FROM {table})"
            ).format(name=sql.Literal(f"resorption.{table}"),
                     table=sql.Identifier("resorption", table))
        )


# --- where the sites are ----------------------------------------------------------------------


def _allocate(
    rng: random.Random, departements: dict[str, Departement], sites: int
) -> dict[str, Counter[Commune]]:
    """How many sites each commune gets: départements by share, communes by population."""
    tail = [d for code, d in departements.items() if code not in DEPARTEMENT_SHARES]
    tail_population = sum(d.population for d in tail) or 1
    weights = {
        code: DEPARTEMENT_SHARES.get(code, TAIL_SHARE * d.population / tail_population)
        for code, d in departements.items()
    }
    codes = list(departements)
    drawn = Counter(rng.choices(codes, [weights[c] for c in codes], k=sites))
    allocation: dict[str, Counter[Commune]] = {}
    for code in codes:
        if drawn[code]:
            communes = departements[code].communes
            allocation[code] = Counter(
                rng.choices(communes, [c.weight for c in communes], k=drawn[code]))
    return allocation


POINTS_STAGE = sql.SQL("""
    CREATE TEMP TABLE demo_points_request (
        code text PRIMARY KEY, n integer NOT NULL, seed integer NOT NULL) ON COMMIT DROP
""")
DRAW_POINTS = sql.SQL("""
    SELECT r.code, ST_X(p.geom), ST_Y(p.geom)
    FROM demo_points_request r
    JOIN resorption.communes c USING (code),
    LATERAL ST_Dump(ST_GeneratePoints(c.geom, r.n, r.seed)) AS p
    ORDER BY r.code, p.path[1]
""")


def _draw_points(
    conn: psycopg.Connection,
    rng: random.Random,
    allocation: dict[str, Counter[Commune]],
    progress: Progress,
) -> dict[str, list[tuple[float, float]]]:
    """Random points inside each commune, drawn by PostGIS in one query with explicit seeds."""
    task = progress.add_task("Points dans les communes", total=None)
    requests = [
        (commune.code, n, rng.randrange(1, 2**31 - 1))
        for code in sorted(allocation)
        for commune, n in sorted(allocation[code].items(), key=lambda item: item[0].code)
    ]
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with conn.cursor() as cur:
        cur.execute(POINTS_STAGE)
        with cur.copy("COPY demo_points_request (code, n, seed) FROM STDIN") as copy:
            for request in requests:
                copy.write_row(request)
        for code, x, y in cur.execute(DRAW_POINTS):
            points[code].append((x, y))
    progress.update(task, total=1, completed=1)
    return points


# --- sites ------------------------------------------------------------------------------------


def _reserve_ids(conn: psycopg.Connection, table: str, n: int) -> list[int]:
    """Take `n` ids from a table's identity, so that children can refer to rows not yet sent."""
    query = sql.SQL(
        "SELECT nextval(pg_get_serial_sequence({}, 'id')) FROM generate_series(1, %s)"
    ).format(sql.Literal(f"resorption.{table}"))
    return sorted(row[0] for row in conn.execute(query, (n,)))


def _write_sites(
    conn: psycopg.Connection,
    rng: random.Random,
    departements: dict[str, Departement],
    allocation: dict[str, Counter[Commune]],
    points: dict[str, list[tuple[float, float]]],
    as_of: date,
    progress: Progress,
) -> list[Site]:
    """Generate every site, département by département, and stream them through COPY."""
    total = sum(sum(c.values()) for c in allocation.values())
    ids = iter(_reserve_ids(conn, "sites", total))
    task = progress.add_task("Sites", total=total)
    generated: list[Site] = []
    copy_sql = sql.SQL("COPY resorption.sites ({}) FROM STDIN").format(
        sql.SQL(", ").join(map(sql.Identifier, SITE_COLUMNS)))
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for code in sorted(allocation):
            departement = departements[code]
            batch: list[Site] = []
            for commune, n in sorted(allocation[code].items(), key=lambda item: item[0].code):
                for x, y in points[commune.code][:n]:
                    number = len(generated) + len(batch) + 1
                    batch.append(
                        _draw_site(rng, next(ids), number, departement, commune, x, y, as_of))
            _link_reinstallations(rng, batch)
            for done, site in enumerate(batch, start=1):
                row = _site_row(rng, site, as_of)
                copy.write_row([row.get(column) for column in SITE_COLUMNS])
                if done % 1000 == 0:
                    progress.advance(task, 1000)
            progress.advance(task, len(batch) % 1000)
            generated.extend(batch)
    return generated
