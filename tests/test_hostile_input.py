"""Hostile input on every route, as anonymous and signed in: refused early, never a crash.

The routes are the application's own (its url_map, read from a freshly built app), each
with sensible path parameters. Every hostile class below is sent to each of them as an
anonymous caller and as a national administrator (who may read, write and run everything).
Every answer must be a 4xx (our OGC exception in French, or a French page) or the route's
normal answer, within TIME_BOUND_S; afterwards gunicorn's log must show no worker killed,
exited or booted, the workers must be the same processes, and their peak resident memory
(VmHWM, reset at the start) must not have grown past MEMORY_BOUND_KIB.

Before the limits (issue 11), this module found on the same server: ~1,700 nested
brackets in `filter`, anonymous → the worker died (SIGSEGV); the same, or a 20,000-term OR,
in a process filter → SIGSEGV; a JSON body 600 deep → 500 on 9 routes (RecursionError); NUL
in a CQL2 JSON body → 500; a 20,000-term OR in CQL2 JSON → 6 to 8 s of SQL; 757 refusals by
gunicorn in English HTML (line over 4,094 bytes, headers); a 60 MB body read and parsed
(+285 MB); the 5 KB XLSX → no answer within 60 s and the worker at 19 GB.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from resorption.settings import MIB, Limits
from tests.fix_server import TestServer
from tests.fix_users import TestUser
from tests.hostile import Answer, Rule, app_rules, send, send_streamed, watch_workers

LIMITS = Limits.from_env()  # the test server runs with the same environment
# A request that is not refused must still answer quickly: everything here is refused before
# any heavy work, or is an ordinary request the server answers in well under a second.
TIME_BOUND_S = 5.0
# A worker holds at most one body at the limit: werkzeug's reading buffer and the bytes it
# returns (twice the body), and glibc keeps freed buffers of that size for the next request
# (up to ~4.7 times the limit measured over this module, 151 MB). Eight times the body limit
# (256 MB by default) bounds that; before the limits, one 5 KB XLSX took 14 GB.
MEMORY_BOUND_KIB = 8 * LIMITS.max_body_bytes // 1024
HUGE = 60 * MIB
CLIENTS = 2  # concurrent requests: one per worker of the test server, so that none waits in a queue

# Path parameters: values that reach the code behind each route (an item that exists for
# reads, one that does not for writes: the suite's database is shared).
COLLECTIONS = ("sites", "regions")
PROCESSES = (
    "export-collection",
    "export-sites",
    "export-actions",
    "import-sites",
    "territory-statistics",
    "close-site",
    "record-census",
    "advance-resorption",
    "declare-actor",
    "remove-actor",
    "follow-site",
    "unfollow-site",
    "record-action-indicators",
    "record-action-finances",
)
EXISTING_ITEM = {"sites": "1", "regions": "11"}
MISSING_ITEM = "999999999"
PATH_VALUES = {
    "tileMatrixSetId": "WebMercatorQuad",
    "tms_id": "WebMercatorQuad",
    "tileMatrix": "5",
    "tile_matrix": "5",
    "tileRow": "11",
    "tile_row": "11",
    "tileCol": "16",
    "tile_col": "16",
    "job_id": "00000000-0000-0000-0000-000000000000",
    "site_id": "1",
    "action_id": "1",
    "slug": "nation",
    "style_id": "default",
    "instance_id": "x",
    "location_id": "x",
    "path": "x",
    "filename": "css/default.css",
    "attachment_id": "1",
    # the account pages (web/accounts.py)
    "request_id": "1",
    "user_id": "1",
    "token": "x",
    "what": "profil",
    # an open-data file (api/opendata.py); the local mail page (web/mail_page.py) takes `name`
    # too, and answers 404 for a name that is no message of its folder
    "name": "stats_regions.csv",
    # the glyphs of the map styles (api/map_styles.py)
    "fontstack": "Marianne%20Regular",
    "start": "0",
    "end": "255",
}
BODY_METHODS = ("POST", "PUT", "PATCH")


@dataclass(frozen=True)
class Target:
    """One route with its parameters filled in, and the method to call it with."""

    method: str
    path: str
    endpoint: str


def targets(rules: Iterable[Rule]) -> list[Target]:
    """Every rule × method, with each collection for collection routes and each process for
    executions; a parameter without a value here fails (a new route needs one)."""
    found: dict[tuple[str, str], Target] = {}
    for rule in rules:
        for method in rule.methods:
            choices = []
            for arg in rule.arguments:
                if arg == "collection_id":
                    choices.append([(arg, c) for c in COLLECTIONS])
                elif arg == "process_id":
                    many = rule.endpoint == "pygeoapi.execute_process_jobs"
                    choices.append([(arg, p) for p in (PROCESSES if many else PROCESSES[:1])])
                elif arg == "item_id":
                    choices.append([(arg, None)])  # per collection, below
                else:
                    assert arg in PATH_VALUES, (
                        f"paramètre de chemin sans valeur de test : {arg} ({rule.rule})"
                    )
                    choices.append([(arg, PATH_VALUES[arg])])
            for combination in itertools.product(*choices):
                values = dict(combination)
                if "item_id" in values:
                    values["item_id"] = (
                        EXISTING_ITEM[values["collection_id"]] if method == "GET" else MISSING_ITEM
                    )
                path = rule.rule
                for arg, value in values.items():
                    path = re.sub(rf"<(?:\w+:)?{arg}>", value, path)
                found.setdefault((method, path), Target(method, path, rule.endpoint))
    return sorted(found.values(), key=lambda t: (t.path, t.method))


@pytest.fixture(scope="module")
def every_target(database_url: str) -> list[Target]:
    """Every route of the app, ready to be called."""
    found = targets(app_rules(database_url))
    assert len(found) > 50, "les routes de l'application n'ont pas été toutes trouvées"
    return found


@dataclass(frozen=True)
class Caller:
    """Who sends the hostile requests: their name in messages and their headers."""

    name: str
    headers: dict[str, str]


@pytest.fixture(scope="module")
def callers(users: dict[str, TestUser]) -> dict[str, Caller]:
    """An anonymous caller and a national administrator (Bearer token)."""
    return {
        "anonyme": Caller("anonyme", {}),
        "administrateur": Caller("administrateur", users["national-admin-nation"].headers),
    }


@pytest.fixture(params=["anonyme", "administrateur"])
def caller(request: pytest.FixtureRequest, callers: dict[str, Caller]) -> Caller:
    """Each caller in turn."""
    return callers[request.param]


@pytest.fixture(scope="module")
def not_offered(
    test_server: TestServer, every_target: list[Target], callers: dict[str, Caller]
) -> dict[str, set[str]]:
    """Per caller, the paths a plain GET already answers 501: pygeoapi answers so on the
    routes it does not offer here (STAC API search, AsyncAPI) whatever is sent. That is
    their normal answer, not a failure; any other 5xx is one."""
    gets = [t.path for t in every_target if t.method == "GET"]
    found = {}
    for name, c in callers.items():
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = pool.map(lambda path, h=c.headers: send(test_server.url, "GET", path, h), gets)
            found[name] = {path for path, a in zip(gets, answers, strict=True) if a.status == 501}
    return found


# -- the hostile classes ----------------------------------------------------------------


DEEP_BRACKETS = "(" * 1700 + "name = 'x'" + ")" * 1700
OR_20000 = " OR ".join(f"population_total = {i}" for i in range(20_000))
OR_1000 = "+OR+".join(["a=1"] * 1000)  # `+` is a space: 7 KB, within the request line
LIKE = "name LIKE '" + "%a_" * 600 + "'"
NOT_CHAIN = "NOT " * 900 + "name = 'x'"

# name → raw query string: each class in the parameters that routes read (filter, q, f, bbox…).
QUERIES: dict[str, str] = {
    # Unencoded brackets (legal in a query): 3.4 KB, well within the request line.
    "parenthèses ×1700": "filter=" + quote(DEEP_BRACKETS, safe="()'="),
    "NOT ×900": "filter=" + quote(NOT_CHAIN, safe="'="),
    "CQL2 JSON ×1000": "filter-lang=cql2-json&filter=" + quote("[" * 1000 + "]" * 1000),
    "OR ×1000": "filter=" + OR_1000 + "&q=" + ",".join(["a"] * 100),
    "OR ×20000": "filter=" + quote(OR_20000),
    "LIKE pathologique": "filter=" + quote(LIKE) + "&q=" + quote("%a_" * 500),
    "UTF-8 invalide": "filter=%FF%FE&q=%FF&f=%FF&bbox=%FF&datetime=%FF&sortby=%FF&crs=%FF&%FF=%FF",
    "octets nuls": "filter=name%3D%27a%00b%27&q=a%00b&f=%00&limit=%00&%00=1",
    "nombres démesurés": "limit=1e400&offset=99999999999999999999999&bbox=1e309,0,1e309,1&resulttype=hits",
    "ligne de 9 Ko": "x=" + "a" * 9000,
}


def _cql2_not(depth: int) -> dict:
    node: dict = {"op": "=", "args": [{"property": "name"}, "x"]}
    for _ in range(depth):
        node = {"op": "not", "args": [node]}
    return node


def _process(filter_: object) -> bytes:
    inputs = {"collection": "sites", "format": "geojson", "filter": filter_}
    return json.dumps({"inputs": inputs}).encode()


JSON, CQL2_JSON, GEOJSON = "application/json", "application/query-cql-json", "application/geo+json"
# name → (Content-Type, body): JSON bodies, CQL2 JSON queries and process inputs with a filter.
BODIES: dict[str, tuple[str, bytes]] = {
    "JSON ×5000": (JSON, b'{"inputs": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}"),
    "JSON ×600": (GEOJSON, b'{"type": "Feature", "properties": {"name": ' + b"[" * 600 + b"]" * 600 + b"}}"),
    "CQL2 JSON NOT ×200": (CQL2_JSON, json.dumps(_cql2_not(200)).encode()),
    "CQL2 JSON OR ×20000": (
        CQL2_JSON,
        json.dumps(
            {
                "op": "or",
                "args": [{"op": "=", "args": [{"property": "population_total"}, i]} for i in range(20_000)],
            }
        ).encode(),
    ),
    "CQL2 JSON LIKE": (
        CQL2_JSON,
        json.dumps({"op": "like", "args": [{"property": "name"}, "%a_" * 3000]}).encode(),
    ),
    "CQL2 JSON nul": (CQL2_JSON, json.dumps({"op": "=", "args": [{"property": "name"}, "a\x00b"]}).encode()),
    "processus : parenthèses ×1700": (JSON, _process(DEEP_BRACKETS)),
    "processus : OR ×20000": (JSON, _process(OR_20000)),
    "processus : NOT ×45 (JSON)": (JSON, _process(_cql2_not(45))),
    "processus : LIKE": (JSON, _process(LIKE)),
    "processus : nul": (JSON, _process("name = 'a\x00b'")),
    "UTF-8 invalide": (
        JSON,
        b'{"inputs": {"filter": "\xff"}, "type": "Feature", "properties": {"name": "\xff\xfe"}}',
    ),
    "octets nuls": (
        JSON,
        b'{"type": "Feature", "properties": {"name": "a\\u0000b"}, "inputs": {"x\\u0000": 1}}',
    ),
    "formulaire UTF-8 invalide": (
        "application/x-www-form-urlencoded",
        b"identifiant=%FF%00&mot_de_passe=%FE&suivant=%FF",
    ),
}


# -- checks -------------------------------------------------------------------------------


def _problem(answer: Answer, not_offered: bool) -> str | None:
    """Why an answer is not acceptable (None when it is)."""
    if answer.status == 0:
        return f"connexion fermée sans réponse {answer.text}"
    if answer.seconds > TIME_BOUND_S:
        return f"{answer.seconds:.1f} s"
    if answer.status >= 500 and not (answer.status == 501 and not_offered):
        return f"HTTP {answer.status} : {answer.text[:200]}"
    if 400 <= answer.status < 500:
        if answer.content_type.startswith("application/json"):
            if not answer.description():
                return f"HTTP {answer.status} sans exception OGC : {answer.text[:200]}"
        elif 'lang="fr"' not in answer.text:
            return f"HTTP {answer.status} ni JSON ni page française : {answer.text[:200]}"
    return None


def _send_all(jobs: list[tuple[str, Callable[[], Answer]]]) -> dict[str, Answer]:
    """Send every job, CLIENTS at a time; label → answer."""
    with ThreadPoolExecutor(CLIENTS) as pool:
        return dict(zip((label for label, _ in jobs), pool.map(lambda job: job[1](), jobs), strict=True))


def _run(
    server: TestServer, jobs: list[tuple[str, Callable[[], Answer]]], not_offered: set[str] = frozenset()
) -> dict[str, Answer]:
    """Send every job while watching the workers; fail with every unacceptable answer (grouped
    by hostile class) and every worker that died, was replaced or grew past MEMORY_BOUND_KIB.

    A label reads "METHOD /path [class]"; a path in `not_offered` may answer 501.
    """
    with watch_workers(server) as health:
        answers = _send_all(jobs)
    problems: dict[str, list[str]] = {}
    for label, answer in answers.items():
        if (problem := _problem(answer, label.split(" ")[1] in not_offered)) is not None:
            hostile = label[label.index("[") :]
            problems.setdefault(hostile, []).append(f"{label} → {' '.join(problem.split())[:220]}")
    report = [
        f"{hostile} : {len(found)} réponses, dont\n    " + "\n    ".join(found[:3])
        for hostile, found in problems.items()
    ]
    report += health.problems(MEMORY_BOUND_KIB)
    assert not report, f"{sum(map(len, problems.values()))} réponses inacceptables ; \n" + "\n".join(report)
    return answers


# -- the tests ------------------------------------------------------------------------------


def test_hostile_queries_on_every_route(
    test_server: TestServer, every_target: list[Target], caller: Caller, not_offered: dict[str, set[str]]
) -> None:
    base, headers = test_server.url, caller.headers
    many_headers = {**headers, **{f"X-Champ-{i}": "x" for i in range(LIMITS.request_headers + 20)}}
    jobs: list[tuple[str, Callable[[], Answer]]] = []
    for t in every_target:
        body = b"" if t.method in BODY_METHODS else None
        for name, query in QUERIES.items():
            label = f"{t.method} {t.path} [{name}]"
            jobs.append(
                (label, lambda t=t, q=query, b=body: send(base, t.method, f"{t.path}?{q}", headers, b))
            )
        jobs.append(
            (
                f"{t.method} {t.path} [{len(many_headers)} en-têtes]",
                lambda t=t: send(base, t.method, t.path, many_headers),
            )
        )
    answers = _run(test_server, jobs, not_offered[caller.name])
    # The refusals are ours, in French, and say which limit.
    deep = answers["GET /collections/regions/items [parenthèses ×1700]"]
    assert deep.status == 400 and "niveaux de parenthèses" in deep.description(), deep.text
    assert f"plus de {LIMITS.cql2_max_depth} niveaux" in deep.description()
    chain = answers["GET /collections/regions/items [NOT ×900]"]
    assert chain.status == 400 and "niveaux d'expressions" in chain.description(), chain.text
    wide = answers["GET /collections/sites/items [OR ×1000]"]
    assert wide.status in (400, 401) and (wide.status == 401 or "termes" in wide.description()), wide.text
    line = answers["GET /collections/sites/items [OR ×20000]"]
    assert line.status == 414 and "POST" in line.description(), line.text
    crowded = answers[f"GET /collections [{len(many_headers)} en-têtes]"]
    assert crowded.status == 431 and "en-têtes" in crowded.description(), crowded.text


def test_hostile_bodies_on_every_route(
    test_server: TestServer, every_target: list[Target], caller: Caller, not_offered: dict[str, set[str]]
) -> None:
    base = test_server.url
    jobs: list[tuple[str, Callable[[], Answer]]] = []
    for path in sorted({t.path for t in every_target}):
        methods = [t.method for t in every_target if t.path == path]
        method = next((m for m in BODY_METHODS if m in methods), "POST")  # else a 405, body checked first
        executes = path.endswith("/execution")
        for name, (content_type, body) in BODIES.items():
            if executes and content_type == CQL2_JSON:
                # A process receives its filter among its inputs (an empty body would run it).
                content_type, body = JSON, _process(json.loads(body))
            headers = {**caller.headers, "Content-Type": content_type}
            jobs.append(
                (
                    f"{method} {path} [{name}]",
                    lambda p=path, m=method, h=headers, b=body: send(base, m, p, h, b),
                )
            )
    answers = _run(test_server, jobs, not_offered[caller.name])
    if not caller.headers:
        return  # anonymous: 401 before the processes and the items' writes run
    execution = "POST /processes/export-collection/execution"
    expected = {
        "POST /collections/sites/items [CQL2 JSON OR ×20000]": "caractères",
        "POST /collections/sites/items [CQL2 JSON nul]": "caractères nuls",
        "POST /collections/sites/items [CQL2 JSON NOT ×200]": "niveaux d'objets ou de listes JSON",
        "POST /collections/sites/items [JSON ×600]": "niveaux d'objets ou de listes JSON",
        f"{execution} [JSON ×5000]": "niveaux d'objets ou de listes JSON",
        f"{execution} [processus : parenthèses ×1700]": "niveaux de parenthèses",
        f"{execution} [processus : OR ×20000]": "caractères",
        f"{execution} [processus : NOT ×45 (JSON)]": "niveaux d'expressions",
        f"{execution} [processus : nul]": "caractères nuls",
    }
    for label, words in expected.items():
        answer = answers[label]
        assert answer.status == 400 and words in answer.description(), f"{label} : {answer.text[:300]}"


def test_huge_bodies_are_refused_unread(
    test_server: TestServer, every_target: list[Target], caller: Caller
) -> None:
    """60 MB streamed (never built in memory): declared by Content-Length on every route, it is
    refused from its headers; chunked (no length), it is read up to the limit and refused."""
    base = test_server.url
    headers = {**caller.headers, "Content-Type": JSON}
    paths = sorted({t.path for t in every_target})
    reading = sorted({t.path for t in every_target if t.method in BODY_METHODS})
    jobs: list[tuple[str, Callable[[], Answer]]] = [
        (
            f"POST {path} [60 Mo déclarés]",
            lambda p=path: send_streamed(base, "POST", p, headers, HUGE, chunked=False),
        )
        for path in paths
    ]
    jobs += [
        (
            f"POST {path} [60 Mo par morceaux]",
            lambda p=path: send_streamed(base, "POST", p, headers, HUGE, chunked=True),
        )
        for path in [*reading, "/collections"]
    ]
    answers = _run(test_server, jobs)
    for label, answer in answers.items():
        assert answer.status == 413, f"{label} : HTTP {answer.status} {answer.text[:200]}"
        assert answer.content_type.startswith("application/json")
        assert f"{LIMITS.max_body_bytes // MIB} Mo" in answer.description(), answer.text


# -- spreadsheet bombs, through import-sites ----------------------------------------------------


def _xlsx(sheet: Callable[[bytes], bytes] = lambda xml: xml, padding: int = 0, level: int = 6) -> bytes:
    """A real (tiny) workbook whose first sheet's XML is rewritten by `sheet`, with `padding`
    spaces streamed into it (a zip bomb, never built in memory) at compression `level`."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["nom"])
    book.active.append(["x"])
    plain = io.BytesIO()
    book.save(plain)
    source = zipfile.ZipFile(plain)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name in source.namelist():
            data = source.read(name)
            if name != "xl/worksheets/sheet1.xml":
                archive.writestr(name, data)
                continue
            head, tail = sheet(data).split(b"<sheetData>")
            with archive.open(name, "w", force_zip64=True) as member:
                member.write(head + b"<sheetData>")
                block = b" " * MIB
                for _ in range(padding // MIB):
                    member.write(block)
                member.write(tail)
    return out.getvalue()


@pytest.fixture(scope="module")
def bombs() -> dict[str, tuple[str, bytes, str]]:
    """name → (format, file, words of its refusal)."""
    return {
        # The XLSX (5 KB): <dimension> claims the whole sheet, one cell in its last row.
        "dimension A1:XFD1048576": (
            "xlsx",
            _xlsx(
                lambda x: x.replace(b'<dimension ref="A1:A2"/>', b'<dimension ref="A1:XFD1048576"/>').replace(
                    b"</sheetData>",
                    b'<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>z</t></is></c></row></sheetData>',
                )
            ),
            "au-delà de la ligne",
        ),
        "cellule en colonne XFD": (
            "xlsx",
            _xlsx(
                lambda x: x.replace(
                    b"</row></sheetData>",
                    b'<c r="XFD2" t="inlineStr"><is><t>y</t></is></c></row></sheetData>',
                )
            ),
            "colonne 16\u202f384",
        ),
        # 300 MB of spaces in 1.3 MB (the fastest compression: it is built at each run).
        "zip bomb (300 Mo)": ("xlsx", _xlsx(padding=300 * MIB, level=1), "décompressé"),
        "taux de compression 1000:1": ("xlsx", _xlsx(padding=10 * MIB, level=9), "anormalement compressé"),
        "CSV de 100 010 lignes": ("csv", b"nom;commune\n" + b"x;y\n" * 100_010, "au-delà de la ligne"),
        "CSV de 300 colonnes": ("csv", b";".join([b"x"] * 300) + b"\n", "colonne 300"),
        "CSV, cellule de 200 000 caractères": ("csv", b'"' + b"a" * 200_000 + b'"\n', "caractères"),
    }


def test_spreadsheet_bombs_are_refused_by_import_sites(
    test_server: TestServer, caller: Caller, bombs: dict[str, tuple[str, bytes, str]]
) -> None:
    headers = {**caller.headers, "Content-Type": JSON}
    jobs: list[tuple[str, Callable[[], Answer]]] = []
    for name, (fmt, content, _) in bombs.items():
        inputs = {"file": base64.b64encode(content).decode(), "format": fmt, "dry_run": True}
        body = json.dumps({"inputs": inputs}).encode()
        jobs.append(
            (
                f"POST /processes/import-sites/execution [{name}]",
                lambda b=body: send(test_server.url, "POST", "/processes/import-sites/execution", headers, b),
            )
        )
    answers = _run(test_server, jobs)
    for name, (_, content, words) in bombs.items():
        answer = answers[f"POST /processes/import-sites/execution [{name}]"]
        if not caller.headers:
            assert answer.status == 401, answer.text
            continue
        assert answer.status == 400 and words in answer.description(), (
            f"{name} ({len(content)} o) : {answer.text}"
        )
    # The XLSX really is a few kilobytes: what makes it a bomb.
    assert len(bombs["dimension A1:XFD1048576"][1]) < 6_000
