"""The open-data catalogue (DCAT-AP, JSON-LD and Turtle) and its files, as a harvester reads them.

The catalogue is validated with pySHACL against the DCAT-AP shapes of tests/shapes/ (written
from the specification's text: see that file's header); each distribution's URL is then
downloaded and read back with the library a reuser would use (csv, pyogrio for GeoPackage),
and its figures compared with what `/collections/{id}/items` gives an anonymous caller.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import pyogrio
import pytest
import rdflib
import requests
from pyshacl import validate
from rdflib.compare import isomorphic

SHAPES = Path(__file__).parent / "shapes" / "dcat-ap-3-shapes.ttl"
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
DCT = rdflib.namespace.DCTERMS
OPEN_DATASETS = ("stats_departements", "stats_regions")
LICENCE = "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"


@pytest.fixture(scope="module")
def jsonld(anonymous: requests.Session) -> dict[str, Any]:
    r = anonymous.get("/donnees-ouvertes/catalogue.jsonld")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/ld+json")
    return r.json()


def graph_of(data: str | bytes, fmt: str) -> rdflib.Graph:
    graph = rdflib.Graph()
    graph.parse(data=data, format=fmt)
    return graph


def shacl(graph: rdflib.Graph) -> tuple[bool, str]:
    shapes = rdflib.Graph().parse(SHAPES, format="turtle")
    conforms, _, text = validate(graph, shacl_graph=shapes, inference="none", advanced=True)
    return conforms, text


def test_catalogue_conforms_to_dcat_ap(jsonld: dict[str, Any], anonymous: requests.Session) -> None:
    """DCAT-AP 3.0 (https://semiceu.github.io/DCAT-AP/releases/3.0.0/), DCAT-AP FR where it
    differs: the JSON-LD and Turtle forms are the same graph, and it conforms to the shapes."""
    graph = graph_of(json.dumps(jsonld), "json-ld")
    conforms, report = shacl(graph)
    assert conforms, report
    turtle = anonymous.get("/donnees-ouvertes/catalogue.ttl")
    assert turtle.headers["Content-Type"].startswith("text/turtle")
    assert isomorphic(graph, graph_of(turtle.text, "turtle"))
    # The stable negotiated URL gives either.
    negotiated = anonymous.get("/donnees-ouvertes/catalogue", headers={"Accept": "text/turtle"})
    assert negotiated.headers["Content-Type"].startswith("text/turtle")
    assert (
        anonymous.get("/donnees-ouvertes/catalogue").headers["Content-Type"].startswith("application/ld+json")
    )


def test_shapes_catch_a_broken_catalogue(jsonld: dict[str, Any]) -> None:
    """The shapes can fail: a distribution without dcat:accessURL, or a dataset without a
    title, is reported (DCAT-AP 3.0 §5.5 and §5.3: both mandatory)."""
    for node_type, key in (("dcat:Distribution", "dcat:accessURL"), ("dcat:Dataset", "dct:title")):
        broken = copy.deepcopy(jsonld)
        node = next(n for n in broken["@graph"] if n.get("@type") == node_type)
        del node[key]
        conforms, report = shacl(graph_of(json.dumps(broken), "json-ld"))
        assert not conforms and key.split(":")[1] in report


def test_catalogue_describes_each_open_dataset(jsonld: dict[str, Any], base_url: str) -> None:
    """What data.gouv.fr reads: licence (Licence Ouverte 2.0), publisher, update frequency,
    temporal and spatial coverage, and distributions CSV (plain and French), GeoJSON, GeoPackage."""
    graph = graph_of(json.dumps(jsonld), "json-ld")
    datasets = set(graph.subjects(rdflib.RDF.type, DCAT.Dataset))
    assert {str(d) for d in datasets} == {f"{base_url}/donnees-ouvertes/{d}" for d in OPEN_DATASETS}
    for dataset in datasets:
        assert graph.value(dataset, DCT.accrualPeriodicity) is not None
        assert (
            graph.value(dataset, DCT.temporal) is not None and graph.value(dataset, DCT.spatial) is not None
        )
        assert graph.value(dataset, DCT.publisher) is not None
        media = {
            str(graph.value(d, DCAT.downloadURL)): str(graph.value(d, DCAT.mediaType))
            for d in graph.objects(dataset, DCAT.distribution)
            if graph.value(d, DCAT.downloadURL) is not None
        }
        assert {url.rsplit("/", 1)[1].split(".", 1)[1] for url in media} == {"csv", "geojson", "gpkg"}
        assert any(url.endswith("-excel.csv") for url in media)
        for d in graph.objects(dataset, DCAT.distribution):
            assert str(graph.value(d, DCT.license)) == LICENCE


def test_catalogue_dates_the_figures_by_their_daily_refresh(
    jsonld: dict[str, Any], anonymous: requests.Session
) -> None:
    """The figures are computed again once a day (sql/070_opendata.sql): the catalogue says
    so, and dates each dataset with the day of its figures (`as_of`), not the day it is read."""
    graph = graph_of(json.dumps(jsonld), "json-ld")
    days = {
        f["properties"]["as_of"]
        for f in anonymous.get("/collections/stats_regions/items", params={"limit": 100}).json()["features"]
    }
    assert len(days) == 1
    for dataset in graph.subjects(rdflib.RDF.type, DCAT.Dataset):
        frequency = str(graph.value(dataset, DCT.accrualPeriodicity))
        assert frequency == "http://publications.europa.eu/resource/authority/frequency/DAILY"
        assert {str(graph.value(dataset, DCT.modified))} == days


@pytest.mark.parametrize("dataset", OPEN_DATASETS)
def test_every_file_holds_what_the_api_gives_anyone(anonymous: requests.Session, dataset: str) -> None:
    """Each download URL of the catalogue answers, anonymously, with the features (and only the
    figures) that `/collections/{id}/items` gives an anonymous caller."""
    api = anonymous.get(f"/collections/{dataset}/items", params={"limit": 10000}).json()
    expected = {f["id"]: f["properties"] for f in api["features"]}
    assert expected

    plain = anonymous.get(f"/donnees-ouvertes/{dataset}.csv")
    assert plain.status_code == 200 and plain.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(plain.content.decode("utf-8"))))
    assert {r["code"] for r in rows} == set(expected)
    row = rows[0]
    assert set(row) == set(expected[row["code"]])
    for key, value in expected[row["code"]].items():
        assert row[key] == (
            "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        )

    excel = anonymous.get(f"/donnees-ouvertes/{dataset}-excel.csv")
    text = excel.content.decode("utf-8")
    assert text.startswith("\ufeff")
    french = list(csv.DictReader(io.StringIO(text[1:]), delimiter=";"))
    assert {r["code"] for r in french} == set(expected)

    geojson = anonymous.get(f"/donnees-ouvertes/{dataset}.geojson").json()
    assert {f["id"]: f["properties"] for f in geojson["features"]} == expected

    gpkg = anonymous.get(f"/donnees-ouvertes/{dataset}.gpkg")
    assert gpkg.headers["Content-Type"] == "application/geopackage+sqlite3"
    meta, _, _, fields = pyogrio.raw.read(io.BytesIO(gpkg.content))
    codes = fields[list(meta["fields"]).index("code")]
    assert set(codes.tolist()) == set(expected)


def test_files_refuse_what_is_not_open(anonymous: requests.Session, http: requests.Session) -> None:
    """Only the open datasets have files here: sites are a 404 even for a national administrator
    (their exports go through the export right), and a parameter is a 400."""
    for session in (anonymous, http):
        assert session.get("/donnees-ouvertes/sites.csv").status_code == 404
        assert session.get("/donnees-ouvertes/sites.gpkg").status_code == 404
    assert anonymous.get("/donnees-ouvertes/stats_regions.csv", params={"filter": "1=1"}).status_code == 400
    # A signed-in caller gets the same catalogue: open datasets only.
    signed = http.get("/donnees-ouvertes/catalogue.jsonld").json()
    kinds = [n["@id"] for n in signed["@graph"] if n.get("@type") == "dcat:Dataset"]
    assert [k.rsplit("/", 1)[1] for k in kinds] == list(OPEN_DATASETS)
