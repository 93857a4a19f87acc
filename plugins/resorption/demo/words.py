"""The French words the fictional data is written with, and the marks that say it is fictional.

Street and place names, owners, surnames, associations, action themes and
funding details are invented or generic. Site and action references start
with `PREFIX`, organisation names end with `ORG_SUFFIX` and `AUTHOR` signs
every record, so that a user always knows a demonstration row for what it is.
"""

# The marks of fiction: what demonstration rows are recognised, and replaced, by.
PREFIX = "DEMO-"
ORG_SUFFIX = " (démo)"
AUTHOR = "generateur-demo"

CLOSING_CONTEXTS = (
    "Incendie du site, mise à l'abri d'urgence des familles",
    "Départ spontané des occupants avant le début de travaux",
    "Inondation du terrain après de fortes pluies",
    "Regroupement des familles sur un site voisin",
    "Démolition par le propriétaire après le départ des occupants",
)

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


def departement_de(name: str, type_nom: str) -> str:
    """ "de la Gironde", "du Nord", "de l'Ain", from INSEE's kind of name (TNCC)."""
    article = {"1": "d'", "2": "du ", "3": "de la ", "4": "des ", "5": "de l'"}
    return article.get(type_nom, "de ") + name


def de(name: str) -> str:
    """ "de Montreuil", "du Havre", "des Mureaux", "d'Aubervilliers"."""
    if name.startswith("Le "):
        return "du " + name[3:]
    if name.startswith("Les "):
        return "des " + name[4:]
    if name[0] in "AEIOUYÂÉÈÊÎÔ":
        return "d'" + name
    return "de " + name
