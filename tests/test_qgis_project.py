"""The ready QGIS project: `GET /qgis/projet.qgz` and `resorption qgis-project`, opened by QGIS itself.

QGIS (Debian's 3.22, run with Debian's Python by `tests/clients/qgis_project_check.py`)
reads the downloaded project as the user would: it attaches a Basic authentication
configuration (username and API token) to the layers, which come without one, and loads
them from our server. Every layer must be valid and read what our API gives that user; the
project CRS, the French names, the aliases and the sites' styling (the colours of
`resorption.styles`) must be right. A machine without QGIS fails here: it never skips.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import psycopg
import pytest
import requests

from resorption.styles import POPULATION_CLASSES, STATUS_COLOURS, UNKNOWN_POPULATION_RADIUS
from tests.api import number_matched
from tests.fix_users import CATALOG, POLICY
from tests.fix_users import TestUser as User  # pytest would collect a `Test…` name
from tests.test_export_geo import make_user

QGIS_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).parent / "clients" / "qgis_project_check.py"
ROOT = Path(__file__).resolve().parents[1]
OPERATOR = "operator-departement-33"
ADMIN = "national-admin-nation"
# Around Bordeaux (CRS84): where communes, drawn only when zoomed in, are counted.
BORDEAUX = "-0.65,44.80,-0.50,44.90"


def _download(base_url: str, user: User | None) -> requests.Response:
    return requests.get(f"{base_url}/qgis/projet.qgz", headers=user.headers if user else {}, timeout=60)


def _project_xml(content: bytes) -> ET.Element:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = archive.namelist()
        assert names == ["projet.qgs"], names
        return ET.fromstring(archive.read(names[0]))


def _run_qgis(path: Path, user: User, home: Path) -> dict[str, Any]:
    """Open the project in QGIS as `user`; fail with QGIS's stderr when it reports nothing."""
    home.mkdir(mode=0o700, exist_ok=True)
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "QGIS_AUTH_DB_DIR_PATH": str(home),
        "OAPIF_USERNAME": user.username,
        "OAPIF_PASSWORD": user.token,
    }
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(name, None)
    command = [QGIS_PYTHON, "-X", "faulthandler", str(SCRIPT), str(path), BORDEAUX]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    except FileNotFoundError:
        pytest.fail(f"{QGIS_PYTHON} est introuvable : installez python3 et python3-qgis (Debian).")
    if done.returncode != 0:
        pytest.fail(f"QGIS a échoué (code {done.returncode}) :\n{done.stderr[-4000:]}\n{done.stdout[:2000]}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"rapport QGIS illisible :\n{done.stdout[:2000]}\n--- stderr ---\n{done.stderr[-4000:]}")


def _opened(base_url: str, user: User, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    r = _download(base_url, user)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Disposition"] == 'attachment; filename="projet.qgz"'
    directory = tmp_path_factory.mktemp("qgis-project")
    path = directory / "projet.qgz"
    path.write_bytes(r.content)
    return _run_qgis(path, user, directory / "home")


@pytest.fixture(scope="module")
def operator_project(base_url: str, users: dict[str, User], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """What QGIS makes of the project of an operator of Gironde."""
    return _opened(base_url, users[OPERATOR], tmp_path_factory)


@pytest.fixture(scope="module")
def admin_project(base_url: str, users: dict[str, User], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """What QGIS makes of the national administrator's project."""
    return _opened(base_url, users[ADMIN], tmp_path_factory)


def _layers(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    layers = {layer["id"].removeprefix("resorption_"): layer for layer in report["layers"]}
    broken = {c: (layer.get("errors"), layer["source"]) for c, layer in layers.items() if not layer["valid"]}
    assert not broken, broken
    return layers


def _expected_collections(user: User) -> list[str]:
    from resorption.identity import Principal

    principal = Principal(
        username=user.username,
        role=user.role,
        area_level=user.area_level,
        area_code=user.area_code,
        area_departements=frozenset({user.area_code}) if user.area_code else None,
    )
    return [
        c
        for c in CATALOG
        if c not in ("site_changes", "action_changes") and POLICY.may_read(principal, CATALOG[c])
    ]


@pytest.mark.parametrize("who", ["operator", "admin"])
def test_every_layer_of_the_project_opens_and_reads_what_the_api_gives(
    who: str,
    operator_project: dict[str, Any],
    admin_project: dict[str, Any],
    base_url: str,
    users: dict[str, User],
) -> None:
    """Each readable collection is a valid OAPIF layer named by its French title, without
    credentials in the project, reading as many features as numberMatched for that user."""
    report, user = (operator_project, users[OPERATOR]) if who == "operator" else (admin_project, users[ADMIN])
    assert report["qgis_version"].startswith("3.")
    layers = _layers(report)
    assert sorted(layers) == sorted(_expected_collections(user))
    assert [layer["id"] for layer in report["layers"]][:2] == ["resorption_sites", "resorption_actions"]
    with requests.Session() as session:
        session.headers.update(user.headers)
        for collection, layer in layers.items():
            assert layer["provider"] == "OAPIF"
            assert layer["authcfg_in_project"] == ""  # the user attaches their own
            assert (
                f"typename='{collection}'" in layer["source"]
                and "restrictToRequestBBOX='1'" in layer["source"]
            )
            assert layer["name"] == CATALOG[collection].title.fr
            assert layer["errors"] == [], layer["errors"]
            if layer["scale_based"]:
                assert collection == "communes" and not layer["visible"]
                bbox = {"bbox": BORDEAUX}
                assert layer["features"] == number_matched(_Prefixed(session, base_url), collection, bbox) > 0
            else:
                assert layer["features"] == number_matched(_Prefixed(session, base_url), collection) > 0
    sites = layers["sites"]
    assert sites["aliases"]["status"] == "Statut"
    assert sites["aliases"]["population_total"] == CATALOG["sites"].fields["population_total"].label.fr
    if who == "operator":
        assert "owner_name" not in sites["fields"]
    else:
        assert "owner_name" in sites["fields"] and "budget_total" in layers["actions"]["fields"]


class _Prefixed:
    """A session whose relative paths go to the test server (what tests.api expects)."""

    def __init__(self, session: requests.Session, base_url: str) -> None:
        self.session, self.base_url = session, base_url

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=60, **kwargs)


def test_project_crs_and_view_are_the_users(
    operator_project: dict[str, Any], admin_project: dict[str, Any]
) -> None:
    """Lambert-93; the operator's project opens on Gironde, the administrator's on France."""
    for report in (operator_project, admin_project):
        assert report["crs"] == "EPSG:2154"
        assert report["view"]["crs"] == "EPSG:2154"
    xmin, ymin, xmax, ymax = operator_project["view"]["extent"]
    # Bordeaux in Lambert-93: (417 000, 6 421 000).
    assert xmin < 417_000 < xmax and ymin < 6_421_000 < ymax and xmax - xmin < 250_000
    xmin, ymin, xmax, ymax = admin_project["view"]["extent"]
    assert xmax - xmin > 1_000_000
    assert "Gironde" not in admin_project["title"] and "33" in operator_project["title"]


def test_sites_are_styled_like_the_web_map(operator_project: dict[str, Any]) -> None:
    """Sites categorised by status with the shared colours and French labels, sized by population."""
    renderer = _layers(operator_project)["sites"]["renderer"]
    assert renderer["type"] == "categorizedSymbol" and renderer["attribute"] == "status"
    labels = CATALOG["sites"].fields["status"].enum
    assert [(c["value"], c["colour"]) for c in renderer["categories"]] == list(STATUS_COLOURS.items())
    assert [c["label"] for c in renderer["categories"]] == [labels[code] for code in STATUS_COLOURS]
    expression = renderer["size_expression"]
    assert '"population_total"' in expression
    # QGIS's own evaluation: twice the web map's radius, class by class (unknown population too).
    sizes = renderer["sizes"]
    assert sizes["NULL"] == 2 * UNKNOWN_POPULATION_RADIUS
    for cls in POPULATION_CLASSES:
        assert sizes[str(cls.minimum)] == sizes[str(cls.maximum or 10_000)] == 2 * cls.radius, cls


def test_actions_are_outlines_and_territories_boundaries(operator_project: dict[str, Any]) -> None:
    layers = _layers(operator_project)
    for collection in ("actions", "departements", "regions", "communes"):
        symbol = layers[collection]["renderer"]["symbol"]
        assert symbol["class"] == "SimpleFill" and symbol["props"]["style"] == "no", (collection, symbol)
        assert float(symbol["props"]["outline_width"]) > 0


def test_the_project_needs_a_signed_in_user(base_url: str) -> None:
    r = _download(base_url, None)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert "QGIS" in r.json()["description"]


def test_an_overseas_user_gets_the_territorys_crs(base_url: str, db: psycopg.Connection) -> None:
    """An operator of La Réunion: EPSG:2975 for the project and its view, on the island."""
    user = make_user(db, "qgis-operator-departement-974", "operator", "974")
    root = _project_xml(_download(base_url, user).content)
    assert root.findtext("projectCrs/spatialrefsys/authid") == "EPSG:2975"
    view = root.find("ProjectViewSettings/DefaultViewExtent")
    assert view is not None and view.findtext("spatialrefsys/authid") == "EPSG:2975"
    # La Réunion in UTM 40S: x ≈ 315 000–380 000, y ≈ 7 630 000–7 690 000.
    assert 250_000 < float(view.get("xmin")) < 340_000 < float(view.get("xmax")) < 450_000
    assert 7_550_000 < float(view.get("ymin")) < 7_690_000 < float(view.get("ymax")) < 7_800_000


def test_the_command_line_writes_the_same_project(
    base_url: str, users: dict[str, User], database_url: str, tmp_path: Path
) -> None:
    """`resorption qgis-project --url … --utilisateur … -o …` writes the project the user downloads."""
    output = tmp_path / "projet.qgz"
    command = [
        str(Path(sys.executable).parent / "resorption"),
        "qgis-project",
        "--url",
        base_url,
        "--utilisateur",
        OPERATOR,
        "-o",
        str(output),
    ]
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    written = _project_xml(output.read_bytes())
    downloaded = _project_xml(_download(base_url, users[OPERATOR]).content)
    assert ET.tostring(written) == ET.tostring(downloaded)

    # Without a user: every collection (as a national reader sees them).
    everything = subprocess.run(
        [*command[:4], "-o", str(output)], env=env, capture_output=True, text=True, check=False
    )
    assert everything.returncode == 0, everything.stderr
    ids = [e.get("id") for e in _project_xml(output.read_bytes()).iter("layer-tree-layer")]
    assert sorted(ids) == sorted(
        f"resorption_{c}" for c in CATALOG if c not in ("site_changes", "action_changes")
    )

    unknown = subprocess.run(
        [*command[:5], "personne", "-o", str(output)], env=env, capture_output=True, text=True, check=False
    )
    assert unknown.returncode == 1 and "n'existe pas" in unknown.stderr
