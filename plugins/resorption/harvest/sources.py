"""The harvest sources: `config/harvest-sources.yml`, read and validated once.

Each source is a remote OGC API Features collection of sites belonging to one
département, with how to sign in (secrets come from environment variables named in
the file, never from the file), how its properties map to our catalog's fields, its
page size, its schedule and how to ask only for what changed since the last harvest.
Every mistake in the file is reported in French with the source and the key concerned.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from resorption.catalog import Collection
from resorption.errors import ConfigurationError
from resorption.settings import PROJECT_ROOT
from resorption.urls import origin

ENV_PATH = "RESORPTION_HARVEST_SOURCES"
DEFAULT_PATH = PROJECT_ROOT / "config" / "harvest-sources.yml"
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
DURATION = re.compile(r"\s*(\d+)\s*(min|m|h|j|d|sem|w)\s*", re.IGNORECASE)
UNITS = {
    "min": "minutes",
    "m": "minutes",
    "h": "hours",
    "j": "days",
    "d": "days",
    "sem": "weeks",
    "w": "weeks",
}
# Never copied by `recopier_memes_noms`: the reference of spreadsheet imports is local.
LOCAL_ONLY = frozenset({"external_ref"})
SOURCE_KEYS = frozenset(
    {
        "url",
        "collection",
        "departement",
        "authentification",
        "identifiant",
        "taille_page",
        "planification",
        "modifications",
        "filtre",
        "recopier_memes_noms",
        "champs",
        "delai",
        "taille_max",
        "pages_max",
    }
)
# What one harvest may take from a source, unless its description says otherwise: megabytes
# per response (a page of 10,000 sites with outlines is a few megabytes) and pages per run.
DEFAULT_MAX_MEGABYTES = 20
DEFAULT_MAX_PAGES = 1_000


def parse_duration(text: Any, where: str) -> timedelta:
    """`30min`, `6h`, `1j` (or `1d`), `2sem` (or `2w`) as a positive duration."""
    match = DURATION.fullmatch(str(text))
    if match is None or int(match.group(1)) == 0:
        raise ConfigurationError(
            f"{where} : durée « {text} » invalide ; écrivez par exemple 30min, 6h, 1j ou 2sem."
        )
    return timedelta(**{UNITS[match.group(2).lower()]: int(match.group(1))})


@dataclass(frozen=True, slots=True)
class Credentials:
    """How to sign in at the source: HTTP Basic or a bearer token, read from the environment."""

    kind: str  # "basic" or "bearer"
    user_env: str | None = None
    password_env: str | None = None
    token_env: str | None = None

    def headers_and_auth(self, source: str) -> tuple[dict[str, str], tuple[str, str] | None]:
        """The request headers and Basic pair; a missing variable is said by its name."""

        def read(name: str | None) -> str:
            value = os.environ.get(name or "")
            if not value:
                raise ConfigurationError(
                    f"Source « {source} » : la variable d'environnement {name} n'est pas définie "
                    "(elle doit contenir l'identifiant, le mot de passe ou le jeton de la source)."
                )
            return value

        if self.kind == "bearer":
            return {"Authorization": f"Bearer {read(self.token_env)}"}, None
        return {}, (read(self.user_env), read(self.password_env))


# A remote property the feature does not carry: it says nothing, our value stays.
ABSENT: Any = object()


@dataclass(frozen=True, slots=True)
class FieldRule:
    """How one of our fields is filled: from a remote property (with a value map) or a constant."""

    target: str
    remote: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    constant: Any = None

    def value(self, properties: Mapping[str, Any]) -> Any:
        """Our value for this field from the remote properties (ABSENT when not there)."""
        if self.remote is None:
            return self.constant
        if self.remote not in properties:
            return ABSENT
        value = properties[self.remote]
        if isinstance(value, list):
            return [self.values.get(str(v), v) for v in value]
        if value is not None and str(value) in self.values:
            return self.values[str(value)]
        return value


@dataclass(frozen=True, slots=True)
class Incremental:
    """How to ask only for the changes since the last successful harvest."""

    mode: str  # "datetime" (datetime=<since>/..) or "filtre" (CQL2 on `field`)
    field: str | None
    margin: timedelta  # clocks differ: ask a little earlier, hashes make it harmless


@dataclass(frozen=True, slots=True)
class Source:
    """One remote collection of sites to harvest into one département."""

    name: str
    url: str
    collection: str
    departement: str
    credentials: Credentials | None
    id_property: str | None
    page_size: int
    every: timedelta | None
    incremental: Incremental | None
    static_filter: str | None
    rules: tuple[FieldRule, ...]
    timeout: float = 60.0  # seconds for one response, from the request to its last byte
    max_bytes: int = DEFAULT_MAX_MEGABYTES * 1_000_000  # per response
    max_pages: int = DEFAULT_MAX_PAGES  # per harvest

    @property
    def writer(self) -> str:
        """Who the audit columns and the history name as the author of harvested writes."""
        return f"moissonnage:{self.name}"

    @property
    def origin(self) -> tuple[str, str, int]:
        """Where the source lives: scheme, host and port of its url (the only place we send requests)."""
        return origin(self.url)

    @property
    def items_url(self) -> str:
        """The items of the remote collection, by the standard path from the landing page."""
        return f"{self.url.rstrip('/')}/collections/{self.collection}/items"

    def mapped(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        """Our properties from the remote ones: the fields this source fills and the feature carries."""
        values = {rule.target: rule.value(properties) for rule in self.rules}
        return {name: value for name, value in values.items() if value is not ABSENT}


def sources_path() -> Path:
    """The sources file: $RESORPTION_HARVEST_SOURCES, else config/harvest-sources.yml."""
    return Path(os.environ.get(ENV_PATH) or DEFAULT_PATH)


def load_sources(path: Path, sites: Collection, writable: frozenset[str]) -> dict[str, Source]:
    """Every source of `path`, keyed by name; `writable` are the fields a harvest may fill."""
    if not path.is_file():
        raise ConfigurationError(
            f"Le fichier des sources de moissonnage {path} est introuvable : créez-le (voir "
            f"config/harvest-sources.yml) ou indiquez son chemin dans {ENV_PATH}."
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path.name} : YAML invalide ({exc}).") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get("sources") or {}, Mapping):
        raise ConfigurationError(
            f"{path.name} : la clé « sources » associe à chaque nom de source sa description."
        )
    found = {}
    for name, spec in (raw.get("sources") or {}).items():
        found[str(name)] = _source(str(name), spec, sites, writable)
    return found


def _source(name: str, spec: Any, sites: Collection, writable: frozenset[str]) -> Source:
    where = f"source « {name} »"
    if not NAME.fullmatch(name):
        raise ConfigurationError(
            f"{where} : nom invalide (minuscules, chiffres, - et _, 40 caractères au plus)."
        )
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"{where} : une description (url, collection, departement…) est attendue.")
    unknown = sorted(set(spec) - SOURCE_KEYS)
    if unknown:
        raise ConfigurationError(
            f"{where} : clé(s) inconnue(s) {', '.join(unknown)} ; "
            f"clés permises : {', '.join(sorted(SOURCE_KEYS))}."
        )
    for key in ("url", "collection", "departement"):
        if not isinstance(spec.get(key), str | int) or not str(spec[key]).strip():
            raise ConfigurationError(f"{where} : la clé « {key} » est obligatoire.")
    url = str(spec["url"]).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{where} : l'url doit commencer par http:// ou https://, reçu « {url} ».")
    if parts.username or parts.password:
        raise ConfigurationError(
            f"{where} : l'url ne doit contenir ni identifiant ni mot de passe ; "
            "donnez-les par « authentification »."
        )
    credentials = _credentials(where, spec.get("authentification"))
    # Credentials never travel in clear, not even to a local address: a test server or a
    # proxy on the same machine serves https as well (the tests' own servers do).
    if credentials is not None and parts.scheme != "https":
        raise ConfigurationError(
            f"{where} : avec une authentification, l'url doit commencer par https:// (reçu « {url} ») : "
            "en http://, l'identifiant, le mot de passe ou le jeton circuleraient en clair."
        )
    page_size = spec.get("taille_page", 100)
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 10_000:
        raise ConfigurationError(f"{where} : taille_page doit être un entier de 1 à 10 000.")
    timeout = spec.get("delai", 60)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigurationError(
            f"{where} : delai (secondes d'attente d'une page) doit être un nombre positif."
        )
    megabytes = spec.get("taille_max", DEFAULT_MAX_MEGABYTES)
    if isinstance(megabytes, bool) or not isinstance(megabytes, int | float) or not 0 < megabytes <= 1000:
        raise ConfigurationError(
            f"{where} : taille_max (mégaoctets d'une réponse au plus) doit être un nombre de 0 à 1000."
        )
    max_pages = spec.get("pages_max", DEFAULT_MAX_PAGES)
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or not 1 <= max_pages <= 1_000_000:
        raise ConfigurationError(
            f"{where} : pages_max (pages lues au plus) doit être un entier de 1 à 1 000 000."
        )
    return Source(
        name=name,
        url=url,
        collection=str(spec["collection"]).strip(),
        departement=str(spec["departement"]).strip(),
        credentials=credentials,
        id_property=str(spec["identifiant"]) if spec.get("identifiant") else None,
        page_size=page_size,
        every=_schedule(where, spec.get("planification")),
        incremental=_incremental(where, spec.get("modifications")),
        static_filter=str(spec["filtre"]) if spec.get("filtre") else None,
        rules=_rules(where, spec, sites, writable),
        timeout=float(timeout),
        max_bytes=int(megabytes * 1_000_000),
        max_pages=max_pages,
    )


def _credentials(where: str, spec: Any) -> Credentials | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping) or spec.get("type") not in ("basic", "bearer"):
        raise ConfigurationError(f"{where} : authentification.type vaut basic ou bearer.")
    if any(k in spec for k in ("mot_de_passe", "jeton", "password", "token")):
        raise ConfigurationError(
            f"{where} : aucun secret dans ce fichier ; nommez la variable d'environnement qui le contient "
            "(mot_de_passe_env, jeton_env)."
        )
    needed = ("utilisateur_env", "mot_de_passe_env") if spec["type"] == "basic" else ("jeton_env",)
    for key in needed:
        if not spec.get(key):
            raise ConfigurationError(
                f"{where} : authentification.{key} (nom d'une variable d'environnement) manque."
            )
    return Credentials(
        kind=spec["type"],
        user_env=spec.get("utilisateur_env"),
        password_env=spec.get("mot_de_passe_env"),
        token_env=spec.get("jeton_env"),
    )


def _schedule(where: str, spec: Any) -> timedelta | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping) or "toutes" not in spec:
        raise ConfigurationError(f"{where} : planification s'écrit {{toutes: 6h}}.")
    return parse_duration(spec["toutes"], f"{where}, planification")


def _incremental(where: str, spec: Any) -> Incremental | None:
    if spec is None or spec is False:
        return None
    if not isinstance(spec, Mapping) or spec.get("mode") not in ("datetime", "filtre"):
        raise ConfigurationError(
            f"{where} : modifications.mode vaut « datetime » (paramètre datetime=<depuis>/..) "
            "ou « filtre » (filtre CQL2 sur le champ de mise à jour de la source, avec « champ »)."
        )
    column = spec.get("champ")
    if spec["mode"] == "filtre" and not (
        isinstance(column, str) and re.fullmatch(r"[A-Za-z_][\w.]*", column)
    ):
        raise ConfigurationError(
            f"{where} : modifications.champ nomme la propriété de mise à jour (ex. updated_at)."
        )
    margin = parse_duration(spec.get("marge", "5min"), f"{where}, modifications.marge")
    return Incremental(spec["mode"], column, margin)


def _rules(
    where: str, spec: Mapping[str, Any], sites: Collection, writable: frozenset[str]
) -> tuple[FieldRule, ...]:
    rules: dict[str, FieldRule] = {}
    if spec.get("recopier_memes_noms"):
        for name in sorted(writable - LOCAL_ONLY):
            rules[name] = FieldRule(target=name, remote=name)
    fields = spec.get("champs") or {}
    if not isinstance(fields, Mapping):
        raise ConfigurationError(
            f"{where} : champs associe à chaque champ de nos sites sa propriété distante."
        )
    for target, rule in fields.items():
        w = f"{where}, champ « {target} »"
        if target not in sites.fields:
            raise ConfigurationError(f"{w} : ce champ n'existe pas dans collections/sites.yml.")
        if target not in writable:
            raise ConfigurationError(
                f"{w} : champ calculé ou en lecture seule, il ne peut pas être moissonné."
            )
        rules[target] = _rule(w, target, rule, sites)
    if not rules:
        raise ConfigurationError(
            f"{where} : aucun champ à remplir ; donnez « champs » (champ local: propriété distante) "
            "ou recopier_memes_noms: true."
        )
    return tuple(rules.values())


def _rule(where: str, target: str, rule: Any, sites: Collection) -> FieldRule:
    if isinstance(rule, str):
        return FieldRule(target=target, remote=rule)
    if not isinstance(rule, Mapping) or ("propriete" in rule) == ("valeur" in rule):
        raise ConfigurationError(
            f"{where} : écrivez le nom de la propriété distante, "
            "{propriete: nom, valeurs: {distante: locale}} "
            "ou {valeur: constante}."
        )
    if "valeur" in rule:
        return FieldRule(target=target, constant=rule["valeur"])
    values = rule.get("valeurs") or {}
    if not isinstance(values, Mapping):
        raise ConfigurationError(f"{where} : valeurs associe chaque valeur distante à la nôtre.")
    enum = sites.fields[target].enum
    for remote, local in values.items():
        if enum and local not in enum:
            raise ConfigurationError(
                f"{where} : « {remote} » correspond à « {local} », qui n'est pas une valeur permise "
                f"({', '.join(enum)})."
            )
    return FieldRule(
        target=target, remote=str(rule["propriete"]), values={str(k): v for k, v in values.items()}
    )
