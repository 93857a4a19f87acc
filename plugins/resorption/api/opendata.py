"""Open data as a product: a DCAT-AP catalogue of the open datasets, and their files at stable URLs.

Routes (public, no sign-in; read under the caller's own role like everything else: the open
datasets are the collections the anonymous principal may read, `OPEN_DATASETS`):
- `/donnees-ouvertes/catalogue.jsonld` and `/donnees-ouvertes/catalogue.ttl` (and
  `/donnees-ouvertes/catalogue`, JSON-LD unless `f=ttl` or `Accept: text/turtle`): the catalogue,
  DCAT-AP 3 with what DCAT-AP FR adds where it differs (the licence is Etalab's Licence
  Ouverte 2.0, the publisher a French public body, `dct:accessRights` public), which
  data.gouv.fr harvests;
- `/donnees-ouvertes/{dataset}.csv` (RFC 4180, for programs), `{dataset}-excel.csv` (French
  spreadsheets: `;`, decimal commas, BOM), `{dataset}.geojson`, `{dataset}.gpkg`: every feature
  of the dataset, the same figures as `/collections/{dataset}/items`.

One source: the JSON-LD document is built here as a plain dict (with its `@context` inline, so
that no reader needs the internet); the Turtle is that same graph, parsed and written by rdflib.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import orjson
import rdflib
from flask import Blueprint, Response, current_app, request

from resorption import clock, geoexport, statements
from resorption.api import pygeoapi_routes
from resorption.caller import Caller, current_settings
from resorption.catalog import Collection
from resorption.crs import parse_crs
from resorption.errors import InvalidParameter, NotFound
from resorption.params import parse_items
from resorption.reader import FeatureReader
from resorption.spreadsheets.writers import csv_bytes, write_plain_csv

# The open datasets: aggregates under statistical secrecy (sql/070_opendata.sql).
OPEN_DATASETS = ("stats_departements", "stats_regions")
SQL = statements.load("api_opendata")
# Every feature of a dataset in one file (about a hundred départements, eighteen regions).
ALL = "10000"
LICENCE = "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"
EU = "http://publications.europa.eu/resource/authority"
IANA = "http://www.iana.org/assignments/media-types"
# The data begin with the closures counted since 1 January 2019 (opendata_*.yml).
TEMPORAL_START = "2019-01-01"
# France, overseas included (the extent of our tilesets), as a WKT polygon (CRS84).
FRANCE_WKT = "POLYGON((-61.81 -21.39, 55.84 -21.39, 55.84 51.09, -61.81 51.09, -61.81 -21.39))"
JSONLD = "application/ld+json"
TURTLE = "text/turtle"
CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "adms": "http://www.w3.org/ns/adms#",
    "locn": "http://www.w3.org/ns/locn#",
    "dcatap": "http://data.europa.eu/r5r/",
}


class FileFormat:
    """A file of an open dataset: its name's ending, media type and EU file type."""

    def __init__(self, suffix: str, media_type: str, eu_type: str, title: str) -> None:
        self.suffix, self.media_type, self.eu_type, self.title = suffix, media_type, eu_type, title


FORMATS = (
    FileFormat(".csv", "text/csv", "CSV", "CSV (virgules, UTF-8, pour les programmes)"),
    FileFormat(
        "-excel.csv", "text/csv", "CSV", "CSV pour tableur français (points-virgules, virgules décimales)"
    ),
    FileFormat(".geojson", "application/geo+json", "GEOJSON", "GeoJSON (contours simplifiés, WGS 84)"),
    FileFormat(".gpkg", "application/geopackage+sqlite3", "GPKG", "GeoPackage (pour QGIS, WGS 84)"),
)

blueprint = Blueprint("opendata", __name__)


# -- the catalogue ----------------------------------------------------------------------------


@blueprint.get("/donnees-ouvertes/catalogue")
def catalogue_negotiated() -> Response:
    """The catalogue in JSON-LD, or Turtle with `f=ttl` or `Accept: text/turtle`."""
    f = request.args.get("f")
    if f not in (None, "jsonld", "ttl"):
        raise InvalidParameter(f"Format « {f} » non servi : f=jsonld (par défaut) ou f=ttl.")
    turtle = f == "ttl" or (f is None and request.accept_mimetypes.best_match([JSONLD, TURTLE]) == TURTLE)
    return catalogue_turtle() if turtle else catalogue_jsonld()


@blueprint.get("/donnees-ouvertes/catalogue.jsonld")
def catalogue_jsonld() -> Response:
    return _document(orjson.dumps(catalogue(Caller.of_request())), JSONLD)


@blueprint.get("/donnees-ouvertes/catalogue.ttl")
def catalogue_turtle() -> Response:
    return _document(as_turtle(catalogue(Caller.of_request())).encode(), f"{TURTLE}; charset=utf-8")


def as_turtle(document: dict[str, Any]) -> str:
    """The JSON-LD document as Turtle (the same graph; its context is inline)."""
    graph = rdflib.Graph()
    graph.parse(data=orjson.dumps(document), format="json-ld")
    for prefix, namespace in CONTEXT.items():
        graph.bind(prefix, namespace)
    return graph.serialize(format="turtle")


def catalogue(caller: Caller) -> dict[str, Any]:
    """The DCAT-AP catalogue of the open datasets, as JSON-LD."""
    base = _base_url()
    metadata = _metadata()
    figures_day = _figures_day(caller).isoformat()
    publisher = _publisher(base, metadata)
    datasets = [
        _dataset(base, caller.catalog[d], publisher["@id"], metadata, figures_day)
        for d in OPEN_DATASETS
        if d in caller.catalog and caller.may_read(caller.catalog[d])
    ]
    identification = metadata["identification"]
    return {
        "@context": CONTEXT,
        "@graph": [
            {
                "@id": f"{base}/donnees-ouvertes/catalogue",
                "@type": "dcat:Catalog",
                "dct:title": _text("Résorption — données ouvertes", "Résorption — open data"),
                "dct:description": _text(
                    "Données ouvertes de la politique de résorption des bidonvilles et grands squats : "
                    "chiffres par département et par région, sous secret statistique. "
                    + identification["description"]["fr"],
                    "Open data of the French policy of resorbing slums and large squats: figures by "
                    "département and region, under statistical secrecy. "
                    + identification["description"]["en"],
                ),
                "dct:publisher": {"@id": publisher["@id"]},
                "foaf:homepage": {"@id": f"{base}/"},
                "dct:language": {"@id": f"{EU}/language/FRA"},
                "dct:license": {"@id": LICENCE},
                "dct:modified": {"@value": figures_day, "@type": "xsd:date"},
                "dct:spatial": {"@id": f"{EU}/country/FRA"},
                "dcat:themeTaxonomy": {"@id": f"{EU}/data-theme"},
                "dcat:dataset": [{"@id": d["@id"]} for d in datasets],
            },
            publisher,
            {
                "@id": LICENCE,
                "@type": "dct:LicenseDocument",
                "dct:title": _text("Licence Ouverte / Open Licence version 2.0", "Open Licence version 2.0"),
            },
            *datasets,
            *(dist for d in datasets for dist in d.pop("_distributions")),
        ],
    }


def _figures_day(caller: Caller) -> dt.date:
    """The day of the published figures (their last daily refresh), today before any."""
    regions = caller.catalog.get("stats_regions")
    if regions is not None and caller.may_read(regions):
        with caller.reading() as conn:
            row = conn.execute(SQL.figures_day).fetchone()
        if row and row[0]:
            return row[0]
    return clock.today()


def _publisher(base: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "@id": f"{base}/donnees-ouvertes/catalogue#editeur",
        "@type": "foaf:Agent",
        "foaf:name": metadata["provider"]["name"],
        # EU's ADMS publisher types: a national authority (a ministry's service).
        "dct:type": {"@id": "http://purl.org/adms/publishertype/NationalAuthority"},
        "foaf:homepage": {"@id": metadata["provider"].get("url") or f"{base}/"},
    }


def _dataset(
    base: str, collection: Collection, publisher: str, metadata: dict[str, Any], figures_day: str
) -> dict[str, Any]:
    uri = f"{base}/donnees-ouvertes/{collection.id}"
    contact = metadata["contact"]
    distributions = [
        {
            "@id": f"{uri}{fmt.suffix}",
            "@type": "dcat:Distribution",
            "dct:title": _text(f"{collection.title.fr} — {fmt.title}"),
            "dct:description": _text(
                f"Tous les éléments de la collection « {collection.id} », au jour de leur dernier calcul "
                "(chaque jour)."
            ),
            "dcat:accessURL": {"@id": f"{uri}{fmt.suffix}"},
            "dcat:downloadURL": {"@id": f"{uri}{fmt.suffix}"},
            "dcat:mediaType": {"@id": f"{IANA}/{fmt.media_type}"},
            "dct:format": {"@id": f"{EU}/file-type/{fmt.eu_type}"},
            "dct:license": {"@id": LICENCE},
            "dct:rights": _text("Réutilisation libre sous Licence Ouverte 2.0, en citant la source."),
        }
        for fmt in FORMATS
    ]
    api = f"{base}/collections/{collection.id}"
    distributions.append(
        {
            "@id": f"{api}/items",
            "@type": "dcat:Distribution",
            "dct:title": _text(f"{collection.title.fr} — API OGC Features"),
            "dct:description": _text("Interrogation par l'API OGC API – Features (GeoJSON, CSV, HTML)."),
            "dcat:accessURL": {"@id": f"{api}/items"},
            "dcat:mediaType": {"@id": f"{IANA}/application/geo+json"},
            "dct:format": {"@id": f"{EU}/file-type/GEOJSON"},
            "dct:license": {"@id": LICENCE},
            "dcat:accessService": {
                "@id": f"{base}/#api",
                "@type": "dcat:DataService",
                "dct:title": _text("API OGC de Résorption"),
                "dcat:endpointURL": {"@id": f"{base}/"},
                "dcat:endpointDescription": {"@id": f"{base}/openapi?f=json"},
                "dct:conformsTo": {"@id": "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"},
            },
        }
    )
    return {
        "@id": uri,
        "@type": "dcat:Dataset",
        "dct:identifier": collection.id,
        "dct:title": _text(collection.title.fr, collection.title.en),
        "dct:description": _text(collection.description.fr, collection.description.en),
        "dcat:keyword": [{"@value": k, "@language": "fr"} for k in collection.keywords.get("fr", [])],
        # EU data themes: population and society; government and public sector.
        "dcat:theme": [{"@id": f"{EU}/data-theme/SOCI"}, {"@id": f"{EU}/data-theme/GOVE"}],
        "dct:publisher": {"@id": publisher},
        "dcat:contactPoint": {
            "@id": f"{uri}#contact",
            "@type": "vcard:Organization",
            "vcard:fn": contact["name"],
            "vcard:hasEmail": {"@id": f"mailto:{contact['email']}"},
        },
        "dct:accessRights": {"@id": f"{EU}/access-right/PUBLIC"},
        # Figures computed again once a day (sql/070_opendata.sql), dated by `modified`.
        "dct:accrualPeriodicity": {"@id": f"{EU}/frequency/DAILY"},
        "dct:modified": {"@value": figures_day, "@type": "xsd:date"},
        "dct:temporal": {
            "@id": f"{uri}#periode",
            "@type": "dct:PeriodOfTime",
            "dcat:startDate": {"@value": TEMPORAL_START, "@type": "xsd:date"},
            "dcat:endDate": {"@value": figures_day, "@type": "xsd:date"},
        },
        "dct:spatial": [
            {"@id": f"{EU}/country/FRA"},
            {
                "@id": f"{uri}#emprise",
                "@type": "dct:Location",
                "dcat:bbox": {
                    "@value": FRANCE_WKT,
                    "@type": "http://www.opengis.net/ont/geosparql#wktLiteral",
                },
            },
        ],
        "dct:language": {"@id": f"{EU}/language/FRA"},
        "dcat:landingPage": {"@id": f"{api}?f=html"},
        "dcat:distribution": [{"@id": d["@id"]} for d in distributions],
        "_distributions": distributions,
    }


# -- the files ----------------------------------------------------------------------------------


@blueprint.get("/donnees-ouvertes/<name>")
def download(name: str) -> Response:
    """A file of an open dataset: `{dataset}.csv`, `-excel.csv`, `.geojson` or `.gpkg`."""
    for fmt in sorted(FORMATS, key=lambda f: -len(f.suffix)):  # "-excel.csv" before ".csv"
        if name.endswith(fmt.suffix) and name.removesuffix(fmt.suffix) in OPEN_DATASETS:
            return _file(name.removesuffix(fmt.suffix), fmt)
    files = ", ".join(f"{d}{f.suffix}" for d in OPEN_DATASETS for f in FORMATS)
    raise NotFound(f"« {name[:80]} » n'est pas un fichier des données ouvertes (fichiers : {files}).")


def _file(dataset: str, fmt: FileFormat) -> Response:
    if request.args:
        raise InvalidParameter("Les fichiers des données ouvertes ne prennent aucun paramètre.")
    caller = Caller.of_request()
    collection = caller.catalog.get(dataset)
    if collection is None or not caller.may_read(collection):
        raise NotFound(f"Le jeu de données « {dataset} » n'existe pas.")
    reader = FeatureReader(caller, collection)
    fq = parse_items(collection, reader.readable, {"limit": ALL}, caller.settings.limits)
    names = [f.name for f in fq.properties]
    if fmt.suffix == ".gpkg":
        crs = parse_crs("http://www.opengis.net/def/crs/EPSG/0/4326", "crs")
        with tempfile.TemporaryDirectory(prefix="resorption-opendata-") as directory:
            path = Path(directory) / f"{dataset}.gpkg"
            with caller.reading() as conn:
                geoexport.export(conn, fq, geoexport.FORMATS["gpkg"], crs, path)
            content = path.read_bytes()  # a few hundred départements or regions
    elif fmt.suffix == ".geojson":
        page = reader.page(fq)
        content = b'{"type":"FeatureCollection","features":' + page.features + b"}"
    else:
        features = reader.features(fq)["features"]
        rows = [[(f.get("properties") or {}).get(n) for n in names] for f in features]
        if fmt.suffix == ".csv":
            content = write_plain_csv(names, rows)
        else:
            content = csv_bytes(names, rows, header=lambda n: n)
    media_type = fmt.media_type + ("; charset=utf-8" if fmt.media_type == "text/csv" else "")
    return Response(
        content,
        mimetype=None,
        content_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{dataset}{fmt.suffix}"',
            "Cache-Control": "public, max-age=300",
        },
    )


# -- helpers ------------------------------------------------------------------------------------


def _text(fr: str, en: str | None = None) -> list[dict[str, str]]:
    values = [{"@value": fr, "@language": "fr"}]
    if en:
        values.append({"@value": en, "@language": "en"})
    return values


def _metadata() -> dict[str, Any]:
    return current_app.extensions[pygeoapi_routes.NAME].config["metadata"]


def _base_url() -> str:
    return current_settings().public_url.rstrip("/")


def _document(body: bytes, content_type: str) -> Response:
    return Response(body, content_type=content_type, headers={"Cache-Control": "public, max-age=300"})


# -- OpenAPI ------------------------------------------------------------------------------------


def openapi_paths() -> dict[str, Any]:
    """The open-data operations for our OpenAPI document (French text)."""
    errors = {
        "400": {"$ref": "#/components/responses/InvalidParameter"},
        "404": {"$ref": "#/components/responses/NotFound"},
        "500": {"$ref": "#/components/responses/ServerError"},
    }

    def operation(op_id: str, summary: str, content: dict[str, Any], parameters: list[Any]) -> Any:
        return {
            "get": {
                "operationId": op_id,
                "summary": summary,
                "tags": ["Données ouvertes"],
                "parameters": parameters,
                "responses": {"200": {"description": summary, "content": content}, **errors},
            }
        }

    graph = {"schema": {"type": "object"}}
    text = {"schema": {"type": "string"}}
    paths: dict[str, Any] = {
        "/donnees-ouvertes/catalogue": operation(
            "getOpenDataCatalogue",
            "Catalogue DCAT-AP des données ouvertes (JSON-LD, ou Turtle avec f=ttl)",
            {JSONLD: graph, TURTLE: text},
            [
                {
                    "name": "f",
                    "in": "query",
                    "required": False,
                    "description": "Format : jsonld (par défaut) ou ttl (Turtle).",
                    "schema": {"type": "string", "enum": ["jsonld", "ttl"]},
                }
            ],
        ),
        "/donnees-ouvertes/catalogue.jsonld": operation(
            "getOpenDataCatalogueJsonLd",
            "Catalogue DCAT-AP des données ouvertes (JSON-LD)",
            {JSONLD: graph},
            [],
        ),
        "/donnees-ouvertes/catalogue.ttl": operation(
            "getOpenDataCatalogueTurtle",
            "Catalogue DCAT-AP des données ouvertes (Turtle)",
            {TURTLE: text},
            [],
        ),
    }
    for dataset in OPEN_DATASETS:
        for fmt in FORMATS:
            binary = {"schema": {"type": "string", "format": "binary"}}
            key = fmt.suffix.strip(".-").replace(".", "-").replace("-", " ").title().replace(" ", "")
            paths[f"/donnees-ouvertes/{dataset}{fmt.suffix}"] = operation(
                f"get{dataset.title().replace('_', '')}{key}",
                f"Jeu « {dataset} » : {fmt.title}",
                {fmt.media_type: binary},
                [],
            )
    return paths
