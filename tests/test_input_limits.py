"""Each input limit at its edge: what passes, what is refused, and the French message that says
which limit (tests/test_hostile_input.py sends the hostile classes to every route).

The limits are `settings.Limits` (README « Sécurité »); the test server runs with the defaults.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from resorption.errors import ConfigurationError
from resorption.limits import json_depth
from resorption.settings import MIB, Limits
from tests.fix_users import TestUser
from tests.hostile import send

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits.from_env()
ITEMS = "/collections/regions/items"  # readable by anonymous callers


def _items(session: requests.Session, filter_: str, **params: str) -> requests.Response:
    return session.get(ITEMS, params={"filter": filter_, "limit": "1", **params})


def _description(r: requests.Response) -> str:
    return r.json()["description"]


# -- CQL2 -----------------------------------------------------------------------------------


def test_nested_parentheses_up_to_the_limit(anonymous: requests.Session) -> None:
    depth = LIMITS.cql2_max_depth
    assert _items(anonymous, "(" * depth + "code = '11'" + ")" * depth).status_code == 200
    r = _items(anonymous, "(" * (depth + 1) + "code = '11'" + ")" * (depth + 1))
    assert r.status_code == 400
    assert _description(r) == (
        f"Le filtre CQL2 imbrique plus de {depth} niveaux de parenthèses : simplifiez-le."
    )


def test_parentheses_inside_strings_do_not_count(anonymous: requests.Session) -> None:
    r = _items(anonymous, "name = '" + "(" * 2000 + "''" + ")" * 10 + "' OR \"name\" = '(((('")
    assert r.status_code == 200, r.text
    assert r.json()["numberMatched"] == 0


def test_chained_operators_nest_too(anonymous: requests.Session) -> None:
    """NOT NOT … needs no parenthesis but nests in the parsed filter (and in the compiler)."""
    allowed = LIMITS.cql2_max_depth - 1  # the comparison under the NOTs is a level too
    assert _items(anonymous, "NOT " * allowed + "code = '11'").status_code == 200
    r = _items(anonymous, "NOT " * (allowed + 1) + "code = '11'")
    assert r.status_code == 400
    assert f"plus de {LIMITS.cql2_max_depth} niveaux d'expressions" in _description(r)


def test_terms_are_counted_in_text_and_json(anonymous: requests.Session) -> None:
    many = LIMITS.cql2_max_terms
    # An IN list: values are terms (SQL parameters), numbers of a text list included.
    text = "code IN (" + ", ".join(str(i) for i in range(many)) + ")"  # numbers: shorter in a URL
    cql2_json = {"op": "in", "args": [{"property": "code"}, [str(i) for i in range(many)]]}
    r = anonymous.post(ITEMS, data=json.dumps(cql2_json), headers={"Content-Type": "application/query-cql-json"})
    assert r.status_code == 400 and "termes (noms, opérateurs, valeurs)" in _description(r), r.text
    r = anonymous.get(ITEMS, params={"filter": text})
    assert r.status_code == 400 and f"{many // 1000}\u202f000 au plus" in _description(r), r.text
    # An OR of comparisons: refused before the parser, from the text.
    r = _items(anonymous, " OR ".join(["code = '11'"] * (many // 3 + 1)))
    assert r.status_code == 400 and "termes" in _description(r), r.text
    few = " OR ".join(["code = '11'"] * 50)
    assert _items(anonymous, few).status_code == 200


def test_a_filter_too_long_for_a_get_goes_in_a_post(anonymous: requests.Session) -> None:
    """The request line stops at 8,190 bytes: the 414 says to POST the filter as CQL2 JSON."""
    codes = [f"{i:02d}" for i in range(100)] * 4
    text = "code IN (" + ", ".join(f"'{c}'" for c in codes) + ")"
    r = anonymous.get(ITEMS, params={"filter": text, "x": "y" * 6000})
    assert r.status_code == 414
    assert r.headers["Content-Type"] == "application/json"
    assert "application/query-cql-json" in _description(r) and "8\u202f190 octets" in _description(r)
    cql2_json = {"op": "in", "args": [{"property": "code"}, codes]}
    r = anonymous.post(ITEMS, data=json.dumps(cql2_json), headers={"Content-Type": "application/query-cql-json"})
    assert r.status_code == 200, r.text
    every_region = anonymous.get(ITEMS, params={"resulttype": "hits"}).json()["numberMatched"]
    assert r.json()["numberMatched"] == every_region  # every region has a two-digit code


def test_filter_length(anonymous: requests.Session) -> None:
    body = json.dumps({"op": "=", "args": [{"property": "name"}, "x" * LIMITS.cql2_max_length]})
    r = anonymous.post(ITEMS, data=body, headers={"Content-Type": "application/query-cql-json"})
    assert r.status_code == 400
    assert f"{LIMITS.cql2_max_length // 1000}\u202f000 au plus" in _description(r), r.text


def test_nul_in_a_cql2_json_body(anonymous: requests.Session) -> None:
    body = json.dumps({"op": "=", "args": [{"property": "name"}, "a\x00b"]})
    r = anonymous.post(ITEMS, data=body, headers={"Content-Type": "application/query-cql-json"})
    assert r.status_code == 400
    assert _description(r) == "Les caractères nuls (U+0000) ne sont pas permis dans un filtre CQL2."


def test_search_terms(http: requests.Session) -> None:
    assert http.get("/collections/sites/items", params={"q": ",".join(["camp"] * 20)}).status_code == 200
    r = http.get("/collections/sites/items", params={"q": ",".join(["camp"] * 21)})
    assert r.status_code == 400
    assert _description(r) == "q : 20 termes au plus, séparés par des virgules ; reçu 21."


# -- JSON bodies -------------------------------------------------------------------------


def test_json_depth_of_bodies(http: requests.Session) -> None:
    depth = LIMITS.json_max_depth
    ok = {"inputs": {"x": json.loads("[" * (depth - 2) + "]" * (depth - 2))}}
    r = http.post("/processes/territory-statistics/execution", json=ok)
    assert r.status_code == 400 and "x : entrée inconnue" in _description(r), r.text
    too_deep = {"inputs": {"x": json.loads("[" * (depth - 1) + "]" * (depth - 1))}}
    r = http.post("/processes/territory-statistics/execution", json=too_deep)
    assert r.status_code == 400
    assert _description(r) == (
        f"Le corps de la requête imbrique plus de {depth} niveaux d'objets ou de listes JSON : aplatissez-le."
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\u00e9\n', max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(alphabet='[]{}"\\a', max_size=4), children, max_size=4),
    max_leaves=40,
)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_json_depth_is_the_parsers(value: object, ascii_only: bool) -> None:
    """The byte scan agrees with a parser, whatever brackets, quotes and backslashes strings hold."""
    document = json.dumps(value, ensure_ascii=ascii_only)
    assert json_depth(document.encode(), 1000) == _depth(value)


def test_json_depth_counts_unclosed_brackets() -> None:
    """Broken JSON is scanned as deep as a parser would recurse before failing."""
    assert json_depth(b"[" * 500, 100) > 100
    assert json_depth(b'["\\"' + b"[" * 500, 100) == 1  # inside an unterminated string
    assert json_depth(b"[" * 50 + b'"' + b"]" * 50, 100) == 50


# -- gunicorn ------------------------------------------------------------------------------


def test_malformed_http_is_refused_in_french(base_url: str) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        answer = sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["description"] == "La requête n'est pas une requête HTTP/1.1 valide."


def test_resorption_serve_uses_the_project_configuration(database_url: str, tmp_path: Path) -> None:
    """`resorption serve` starts gunicorn with config/gunicorn.conf.py: its refusals are ours. The
    demo's mail server and sender it starts end with it."""
    port, smtp_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RESORPTION_RUNTIME_DIR": str(tmp_path),
        "RESORPTION_SMTP_PORT": str(smtp_port),
        "RESORPTION_MAIL_LOCAL_DIR": str(tmp_path / "courriels"),
    }
    env.pop("RESORPTION_SMTP_HOST", None)
    command = [str(Path(sys.executable).parent / "resorption"), "serve", "--host", "127.0.0.1"]
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/conformance", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.3)
        answer = send(url, "GET", "/collections?x=" + "a" * LIMITS.request_line)
        assert answer.status == 414 and "8\u202f190 octets" in answer.description(), answer.text
        # 4,094 bytes is gunicorn's own line: ours is longer.
        assert send(url, "GET", "/collections?x=" + "a" * 5000).status == 200
        helpers = [pid for pid in children(server.pid) if is_mail_helper(pid)]
        assert len(helpers) == 2, helpers  # the SMTP server and the sender
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in helpers), "serveur de courriels orphelin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_mail_helper(pid: int) -> bool:
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return b"resorption.mail_server" in command or b"envoyer" in command


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_every_other_gunicorn_uses_the_project_configuration() -> None:
    """The image and the bench cannot run here: their command lines name the configuration."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*?\])$", dockerfile, re.M | re.S).group(1).replace("\\\n", ""))
    assert cmd[:3] == ["gunicorn", "--config", "config/gunicorn.conf.py"], cmd
    assert "COPY config ./config" in dockerfile
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "gunicorn" not in compose  # the app service runs the image's command
    bench = (ROOT / "bench" / "servers.py").read_text()
    assert 'GUNICORN_CONFIG = ROOT / "config" / "gunicorn.conf.py"' in bench
    assert '_gunicorn(VENV, "resorption.app:wsgi()", port, GUNICORN_CONFIG, worker, threads)' in bench


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("RESORPTION_MAX_REQUEST_LINE", "9000", "ne peut dépasser 8190"),
        ("RESORPTION_MAX_BODY_BYTES", "beaucoup", "doit être un entier"),
        ("RESORPTION_JSON_MAX_DEPTH", "500", "ne peut dépasser 120"),
        ("RESORPTION_CQL2_MAX_TERMS", "100000", "ne peut dépasser 3000"),
        ("RESORPTION_IMPORT_MAX_BYTES", str(30 * MIB), "ne tient pas, encodé en base64"),
    ],
)
def test_limits_are_validated(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, words: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as refused:
        Limits.from_env()
    assert variable in refused.value.message and words in refused.value.message


# -- spreadsheets ------------------------------------------------------------------------


def test_command_line_import_refuses_a_file_too_large_unread(
    database_url: str, users: dict[str, TestUser], tmp_path: Path
) -> None:
    path = tmp_path / "sites.csv"
    path.write_bytes(b"x;y\n" * 1000)
    env = {**os.environ, "DATABASE_URL": database_url, "RESORPTION_IMPORT_MAX_BYTES": "2048"}
    command = [str(Path(sys.executable).parent / "resorption"), "import", "sites", str(path)]
    done = subprocess.run(
        [*command, "--dry-run", "--utilisateur", users["national-admin-nation"].username],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1
    assert "Le fichier pèse 3,91 ko ; 2 ko au plus par import : découpez-le." in " ".join(done.stderr.split())


def test_empty_trailing_fields_of_a_csv_are_not_columns(base_url: str, users: dict[str, TestUser]) -> None:
    """Excel's CSV repeats separators up to the widest row: they are not values."""
    user = users["national-admin-nation"]
    exported = requests.post(
        f"{base_url}/processes/export-sites/execution",
        json={"inputs": {"format": "csv", "filter": "id <= 3"}},
        headers=user.headers,
        timeout=120,
    )
    assert exported.status_code == 200, exported.text
    lines = exported.content.decode("utf-8-sig").splitlines()
    padded = "\n".join(line + ";" * (LIMITS.import_max_columns + 50) for line in lines).encode()
    r = requests.post(
        f"{base_url}/processes/import-sites/execution",
        json={"inputs": {"file": base64.b64encode(padded).decode(), "format": "csv", "dry_run": True}},
        headers=user.headers,
        timeout=120,
    )
    assert r.status_code == 200, r.text
    assert {row["outcome"] for row in r.json()["rows"]} == {"unchanged"}
