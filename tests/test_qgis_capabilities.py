"""What the tests' QGIS (Debian's 3.22) can do with our endpoints, stated as the README states it.

- Editing: QGIS's OAPIF provider gained OGC API Features Part 4 editing in QGIS 3.32; the
  3.22 of Debian 12 reports no add, change or delete capability on our sites layer, though
  the caller may write (the README sends 3.22 users to the web forms or the `.qgz` project's
  forms). When the tests' QGIS is 3.32 or later, the same test requires that it can edit.
- Styles: QGIS's MapLibre style converter (3.16 and later) reads our public style of a
  territory collection, and the vector tile layer drawn with it is not blank.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fix_browser import SCREENSHOTS
from tests.fix_users import TestUser

QGIS_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).parent / "clients" / "qgis_capabilities.py"
# The first QGIS release whose OAPIF provider edits (qgis/QGIS pull request 52504, 2023).
QGIS_EDITS_FROM = 33200
# The département outline colour of our styles (resorption.api.map_styles.TERRITORY_LINES).
DEPARTEMENT_LINE = "#7a7a85"


@pytest.fixture(scope="module")
def report(base_url: str, users: dict[str, TestUser], tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("qgis-home")
    admin = users["national-admin-nation"]
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "OAPIF_USERNAME": admin.username,
        "OAPIF_PASSWORD": admin.token,
    }
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(name, None)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    png = SCREENSHOTS / "qgis-style-departements.png"
    command = [QGIS_PYTHON, str(SCRIPT), base_url, "departements", str(png)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        pytest.fail(f"le client QGIS a échoué ({done.returncode}) :\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_qgis_edits_oapif_only_from_3_32(report: dict) -> None:
    """OGC API Features Part 4 (http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete):
    we implement it; whether QGIS offers editing depends on its version, as the README says."""
    oapif = report["oapif"]
    assert oapif["valid"] and oapif["features"] > 0
    edits = oapif["AddFeatures"] or oapif["ChangeAttributeValues"] or oapif["DeleteFeatures"]
    assert edits == (report["version"] >= QGIS_EDITS_FROM), report


def test_qgis_reads_our_public_maplibre_style(report: dict) -> None:
    """QGIS converts our MapLibre style (no layer left out) and draws the vector tiles with it."""
    style = report["style"]
    assert style["converted"], style["warnings"]
    ours = [s for s in style["styles"] if s["layer"] != "background"]
    assert [s["layer"] for s in ours] == ["departements"], style["styles"]
    assert ours[0]["colour"] == DEPARTEMENT_LINE
    # Outlines were drawn: more than a few dark pixels on the light background (not a blank map).
    assert style["tile_layer_valid"] and style["dark_pixels"] > 1000, style["dark_pixels"]
