"""Résorption side by side with tipg and stock pygeoapi, and with PostgreSQL alone.

For each dataset size: generate (once) the demo data, start the three servers on the same
database, check that they return the same features for each request of the mix, then
measure each request on each server one after another with wrk, at each concurrency, and
PostgreSQL alone running the statements our provider issues (pgbench). Writes a Markdown
table to bench/results/<timestamp>.md and bench/RESULTS.md. Run it with `bench/run`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import platform
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import floor
import psycopg
import requests
import servers
from measure import Result, pgbench, wrk

SIZES = {"100k": 100_000, "1m": 1_000_000}
# Gironde: the département of the département-scoped user (demo-gironde), of the bbox and tiles.
GIRONDE = "33"
# Seine-Saint-Denis: the département of the user who reads no sensitive field (demo-observateur-93).
OBSERVER = "93"
BBOX = (-1.27, 44.19, 0.32, 45.58)
BORDEAUX = (-0.5792, 44.8378)
PAST = "2022-01-01T00:00:00Z"
FILTER = "population_total > 50"
SEARCH = "terrain"


@dataclass(frozen=True)
class Variant:
    """A server as one kind of caller: ours as a national or a département user, or an anchor."""

    name: str
    kind: str  # ours | tipg | pygeoapi
    user: str | None = None  # our demo account
    scope: str | None = None  # the département this variant is limited to


VARIANTS = (
    Variant("résorption · national", "ours", "demo-national"),
    Variant("résorption · Gironde", "ours", "demo-gironde", GIRONDE),
    Variant("résorption · sans champ sensible (93)", "ours", "demo-observateur-93", OBSERVER),
    Variant("tipg", "tipg"),
    Variant("pygeoapi", "pygeoapi"),
)
REQUESTS = (
    "items10",
    "items100",
    "items1000",
    "bbox",
    "filter",
    "item",
    "hits",
    "deep",
    "offset10",
    "keyset10",
    "actions",
    "action",
    "q",
    "tile6",
    "tile10",
    "tile14",
    "past",
    "first",
    "qgis",
    "writes",
)
LABELS = {
    "items10": "items limit=10",
    "items100": "items limit=100",
    "items1000": "items limit=1000",
    "bbox": "bbox département (limit=100)",
    "filter": f"CQL2 `{FILTER}` (limit=100)",
    "item": "un élément par id",
    "hits": "resulttype=hits",
    "deep": "page profonde (offset 50 000 / next)",
    "offset10": "offset=50 000&limit=10 (comme l'envoient les clients)",
    "keyset10": "la même page par jeu de clés (after=, limit=10)",
    "actions": "actions, emprises (limit=100)",
    "action": "une action par id",
    "q": f"recherche q={SEARCH} (limit=10)",
    "tile6": "tuile MVT z6",
    "tile10": "tuile MVT z10",
    "tile14": "tuile MVT z14",
    "past": f"datetime={PAST[:10]} (historique, limit=100)",
    "first": "première page de chaque collection (à tour de rôle)",
    "qgis": "QGIS 3.22 ouvre la couche des sites (accueil, API, collection, 10 éléments, 3 pages de 100)",
    "writes": "PATCH avec If-Match, 1 pour 3 lectures du même site",
}
# The requests whose SQL floor is measured (item pages: one statement of ours each).
FLOORED = ("items10", "items100", "items1000", "bbox", "filter", "item", "hits", "deep", "actions", "past")
# Measurements of one request on one server are repeated, interleaved with the other servers',
# until the last two agree within this much (at most MAX_ROUNDS): the table shows both.
AGREE = 0.10
MAX_ROUNDS = 3


def tile(z: int, lon: float, lat: float) -> tuple[int, int, int]:
    """The WebMercatorQuad tile (z, x, y) holding a point."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


@dataclass(frozen=True)
class Mix:
    """Several requests measured as one: wrk sends `paths` in turn; with `writes`, each
    connection PATCHes its own item (one per connection, If-Match: the ETag it last read)
    after every three GETs of it."""

    paths: tuple[str, ...]
    writes: tuple[str, ...] = ()

    def lua(self) -> str:
        """The wrk script of the mix (its `request` and `on_response`, before report.lua)."""
        quoted = ", ".join(f'"{p}"' for p in (self.writes or self.paths))
        if not self.writes:
            return (
                f"local paths = {{{quoted}}}\nlocal i = 0\n"
                "request = function()\n  i = i % #paths + 1\n  return wrk.format('GET', paths[i])\nend\n"
            )
        return f"""local items = {{{quoted}}}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("item", items[(counter - 1) % #items + 1])
end
local etag, n = nil, 0
on_response = function(status, headers, body)
  etag = headers["ETag"] or headers["Etag"] or headers["etag"] or etag
end
request = function()
  n = n + 1
  if etag ~= nil and n % 4 == 0 then
    local h = {{}}
    for k, v in pairs(wrk.headers) do h[k] = v end
    h["Content-Type"] = "application/merge-patch+json"
    h["If-Match"] = etag
    return wrk.format("PATCH", item, h, string.format('{{"properties": {{"access_details": "banc %d"}}}}', n))
  end
  return wrk.format("GET", item)
end
"""


@dataclass
class Context:
    """What the mix needs from the dataset: ids, a deep offset, our `next` link for it."""

    item_id: int
    deep_offset: int
    next_path: str | None = None  # our keyset `next` link reaching deep_offset
    after_id: int | None = None  # the id just before the deep page (keyset10)
    action_id: int | None = None  # an action in the scope
    write_ids: tuple[int, ...] = ()  # sites of the Gironde that the writes mix PATCHes
    qgis_pages: tuple[str, ...] = ()  # the server's own first pages of 100 (next links), for QGIS


def paths(kind: str, ctx: Context, scope: str | None) -> dict[str, str | Mix | None]:
    """Each request of the mix for one kind of server (None: not available there)."""
    if kind == "ours":
        items, actions, sort = "/collections/sites/items", "/collections/actions/items", ""
    elif kind == "tipg":
        items, actions, sort = (
            "/collections/bench.sites/items",
            "/collections/bench.actions/items",
            "&sortby=id",
        )
    else:
        items, actions, sort = "/collections/sites/items", "/collections/actions/items", "&sortby=%2Bid"
    # The anchors have no access control: a département user's requests get its filter.
    only = f"&departement_code={scope}" if scope and kind != "ours" else ""
    fmt = "&f=json" if kind == "pygeoapi" else ""

    def page(query: str) -> str:
        return f"{items}?{query}{sort}{only}{fmt}"

    tiles: dict[str, str | None] = {}
    for z in (6, 10, 14):
        z, x, y = tile(z, *BORDEAUX)
        tiles[f"tile{z}"] = {
            "ours": f"/collections/sites/tiles/WebMercatorQuad/{z}/{y}/{x}",
            "tipg": f"/collections/bench.sites/tiles/WebMercatorQuad/{z}/{x}/{y}",
        }.get(kind)
    bbox = ",".join(str(v) for v in BBOX)
    return {
        "items10": page("limit=10"),
        "items100": page("limit=100"),
        "items1000": page("limit=1000"),
        "bbox": page(f"bbox={bbox}&limit=100"),
        "filter": page(f"filter={urllib.parse.quote(FILTER)}&filter-lang=cql2-text&limit=100"),
        "item": f"{items}/{ctx.item_id}" + ("?f=json" if kind == "pygeoapi" else ""),
        # tipg has no resulttype=hits (limit=0 means its default): one feature and the count.
        "hits": page("limit=1" if kind == "tipg" else "resulttype=hits"),
        "deep": ctx.next_path
        if kind == "ours" and ctx.next_path
        else page(f"offset={ctx.deep_offset}&limit=100"),
        "offset10": page(f"offset={ctx.deep_offset}&limit=10"),
        "keyset10": page(f"after={ctx.after_id}&limit=10") if kind == "ours" and ctx.after_id else None,
        "actions": f"{actions}?limit=100{sort}{fmt}",
        "action": f"{actions}/{ctx.action_id}" + ("?f=json" if kind == "pygeoapi" else "")
        if ctx.action_id
        else None,
        "q": page(f"q={SEARCH}&limit=10") if kind == "ours" else None,
        **tiles,
        "past": page(f"datetime={PAST}&limit=100") if kind == "ours" else None,
        "first": Mix(tuple(f"/collections/{c}/items" for c in FIRST_PAGES)) if kind == "ours" else None,
        "qgis": Mix((*QGIS_OPENING[kind], page("limit=10"), *ctx.qgis_pages)) if ctx.qgis_pages else None,
        "writes": Mix((), tuple(f"{items}/{i}" for i in ctx.write_ids))
        if kind == "ours" and ctx.write_ids
        else None,
    }


# Every collection of ours, for the `first` mix (the anchors publish only sites and actions).
FIRST_PAGES = (
    "sites",
    "actions",
    "site_comments",
    "action_comments",
    "activity",
    "site_changes",
    "action_changes",
    "regions",
    "departements",
    "communes",
    "stats_regions",
    "stats_departements",
)
# What QGIS 3.22 asks before the features when it opens an OGC API Features layer: the landing
# page, the API document it links to (for the largest page allowed), the collection's document;
# then 10 features to learn the fields, then pages, following `next` links.
QGIS_OPENING = {
    "ours": ("/?f=json", "/openapi?f=json", "/collections/sites?f=json"),
    "tipg": ("/?f=json", "/api", "/collections/bench.sites?f=json"),
    "pygeoapi": ("/?f=json", "/openapi?f=json", "/collections/sites?f=json"),
}


def _contexts(url: str) -> dict[str | None, Context]:
    """Per scope (None: the nation), an item id in it and a deep offset within its sites."""
    out: dict[str | None, Context] = {}
    with psycopg.connect(url) as conn:
        for scope in (None, GIRONDE, OBSERVER):
            where = "WHERE departement_code = %s" if scope else ""
            args = (scope,) if scope else ()
            n = conn.execute(f"SELECT count(*) FROM resorption.sites {where}", args).fetchone()[0]
            offset = min(50_000, n // 2 // 100 * 100)
            item = conn.execute(
                f"SELECT id FROM resorption.sites {where} ORDER BY id OFFSET %s LIMIT 1", (*args, n // 3)
            ).fetchone()[0]
            after = conn.execute(
                f"SELECT id FROM resorption.sites {where} ORDER BY id OFFSET %s LIMIT 1", (*args, offset - 1)
            ).fetchone()[0]
            action = conn.execute(
                f"SELECT id FROM resorption.actions {where} ORDER BY id OFFSET %s LIMIT 1",
                (*args, 0 if scope else 1000),
            ).fetchone()
            writable = conn.execute(
                "SELECT id FROM resorption.sites WHERE departement_code = %s ORDER BY id DESC LIMIT 4",
                (GIRONDE,),
            ).fetchall()
            out[scope] = Context(
                item_id=item,
                deep_offset=offset,
                after_id=after,
                action_id=action and action[0],
                # the observer of the 93 writes nowhere
                write_ids=tuple(r[0] for r in writable) if scope != OBSERVER else (),
            )
    return out


def _keyset_next(base: str, headers: dict[str, str], deep_offset: int) -> str | None:
    """Our `next` link that leads to the deep page (from the page just before it)."""
    r = requests.get(
        f"{base}/collections/sites/items?limit=100&offset={deep_offset - 100}", headers=headers, timeout=60
    )
    r.raise_for_status()
    href = next((link["href"] for link in r.json()["links"] if link["rel"] == "next"), None)
    if href is None:
        return None
    parts = urllib.parse.urlsplit(href)
    return f"{parts.path}?{parts.query}"


def _next_pages(base: str, headers: dict[str, str], first: str, count: int = 3) -> tuple[str, ...]:
    """A server's first `count` pages from `first`, following its own `next` links (as QGIS)."""
    pages, path = [], first
    while path and len(pages) < count:
        pages.append(path)
        r = requests.get(base + path, headers=headers, timeout=120)
        r.raise_for_status()
        href = next((link["href"] for link in r.json().get("links", []) if link["rel"] == "next"), None)
        if href is None:
            break
        parts = urllib.parse.urlsplit(href)
        path = f"{parts.path}?{parts.query}"
    return tuple(pages)


def _signature(key: str, body: bytes, content_type: str) -> Any:
    """What must agree across servers: the ordered feature ids (the count for hits)."""
    if "json" not in content_type:
        return ("bytes", len(body) > 0)
    doc = json.loads(body)
    if key == "hits":
        return ("count", doc.get("numberMatched"))
    if doc.get("type") == "Feature":
        return ("feature", str(doc["id"]))
    return ("page", [str(f["id"]) for f in doc.get("features", [])])


def check(targets: list[tuple[Variant, servers.Server, dict[str, str | None]]]) -> dict[tuple[str, str], str]:
    """Each request on each server once; the anchors must return the same features as ours.

    Returns the availability of each (variant, request): "ok", "n/a — …" or an error text.
    """
    status: dict[tuple[str, str], str] = {}
    reference: dict[tuple[str | None, str], Any] = {}
    for variant, server, mix in targets:
        for key in REQUESTS:
            path = mix.get(key)
            if path is None:
                status[(variant.name, key)] = "n/a — non disponible"
                continue
            if isinstance(path, Mix):
                status[(variant.name, key)] = _check_mix(server, path)
                continue
            r = requests.get(server.base + path, headers=server.headers, timeout=120)
            if r.status_code in (404, 405, 501) and key.startswith("tile"):
                status[(variant.name, key)] = "n/a — non disponible"
                continue
            if r.status_code == 204 and key.startswith("tile"):  # an empty tile (nothing in scope)
                status[(variant.name, key)] = "ok"
                continue
            if r.status_code != 200:
                status[(variant.name, key)] = f"HTTP {r.status_code}"
                print(f"  ✗ {variant.name} {key}: HTTP {r.status_code} {r.text[:300]}", flush=True)
                continue
            sig = _signature(key, r.content, r.headers.get("Content-Type", ""))
            ref = reference.setdefault((variant.scope, key), sig)
            same = sig == ref or key.startswith("tile")
            status[(variant.name, key)] = "ok" if same else "différent"
            if not same:
                print(f"  ✗ {variant.name} {key}: résultat différent de résorption", flush=True)
    return status


def _check_mix(server: servers.Server, mix: Mix) -> str:
    """Each request of a mix answers (a write: 204 with If-Match), or what went wrong."""
    for path in (*mix.paths, *mix.writes):
        r = requests.get(server.base + path, headers=server.headers, timeout=120)
        if r.status_code != 200:
            print(f"  ✗ {server.kind} {path}: HTTP {r.status_code} {r.text[:300]}", flush=True)
            return f"HTTP {r.status_code}"
        if path in mix.writes:
            patch = {
                **server.headers,
                "If-Match": r.headers.get("ETag", ""),
                "Content-Type": "application/merge-patch+json",
            }
            body = {"properties": {"access_details": "banc"}}
            w = requests.patch(server.base + path, headers=patch, json=body, timeout=120)
            if w.status_code != 204:
                print(f"  ✗ {server.kind} PATCH {path}: HTTP {w.status_code} {w.text[:300]}", flush=True)
                return f"HTTP {w.status_code}"
    return "ok"


def run_size(label: str, sites: int, args: argparse.Namespace, workdir: Path) -> list[str]:
    """Everything for one dataset size; returns its Markdown lines."""
    server = servers.server_url()
    url = servers.ensure_dataset(server, sites, workdir / f"generate-{label}.log")
    tokens = servers.issue_tokens(url)
    contexts = _contexts(url)
    started: list[servers.Server] = []
    lines = [f"## {sites:,} sites".replace(",", " "), ""]
    try:
        print(f"[{label}] démarrage des serveurs…", flush=True)
        by_kind: dict[str, servers.Server] = {}
        for kind, start in (
            ("ours", servers.start_ours),
            ("tipg", servers.start_tipg),
            ("pygeoapi", servers.start_pygeoapi),
        ):
            by_kind[kind] = start(url, workdir)
            started.append(by_kind[kind])  # stopped in `finally`, even if a later one fails
        targets = []
        for variant in VARIANTS:
            if args.only and variant.kind not in args.only:
                continue
            base = by_kind[variant.kind]
            srv = servers.Server(base.kind, base.base, base.process, base.log)
            if variant.user:
                srv.headers = {"Authorization": f"Bearer {tokens[variant.user]}"}
            ctx = contexts[variant.scope]
            if variant.kind == "ours" and ctx.deep_offset >= 100:
                ctx = replace(ctx, next_path=_keyset_next(srv.base, srv.headers, ctx.deep_offset))
            first = paths(variant.kind, ctx, variant.scope)["items100"]
            if isinstance(first, str):
                ctx = replace(ctx, qgis_pages=_next_pages(srv.base, srv.headers, first))
            targets.append((variant, srv, paths(variant.kind, ctx, variant.scope)))
        print(f"[{label}] vérification : mêmes éléments partout…", flush=True)
        status = check(targets)
        db_pids = lambda: servers.backend_pids(url)  # noqa: E731
        results: dict[tuple[str, str, int], Result] = {}
        for connections in args.connections:
            for key in REQUESTS:
                if args.requests and key not in args.requests:
                    continue
                measured = [(v, srv, mix) for v, srv, mix in targets if status.get((v.name, key)) == "ok"]
                runs: dict[str, list[Result]] = {v.name: [] for v, _, _ in measured}
                # Interleaved: each server in turn, round after round, until every server's last
                # two runs agree (the machine's load drifts; a ratio of neighbours stays fair).
                for _ in range(MAX_ROUNDS):
                    for variant, srv, mix in measured:
                        if _agree(runs[variant.name]):
                            continue
                        pids = srv.pids()
                        target = mix[key]
                        lua = target.lua() if isinstance(target, Mix) else None
                        first = target if isinstance(target, str) else (target.paths or target.writes)[0]
                        address = srv.base + first
                        # A short warm-up fills the pools, caches and prepared statements.
                        wrk(address, srv.headers, connections, 1, pids, db_pids, lua)
                        res = wrk(address, srv.headers, connections, args.duration, pids, db_pids, lua)
                        runs[variant.name].append(res)
                        servers.settle(url)
                        print(
                            f"[{label}] c={connections} {variant.name:<24} {key:<10} {res.rps:8.1f} req/s",
                            flush=True,
                        )
                    if all(_agree(r) for r in runs.values()):
                        break
                for name, done in runs.items():
                    results[(name, key, connections)] = _mean(done[-2:])
        floors: dict[tuple[str, str, int], Result] = {}
        if not args.only or "floor" in args.only:
            for variant, _srv, mix in targets:
                if variant.kind != "ours":
                    continue
                scripts = floor.scripts(url, tokens[variant.user], {k: mix[k] for k in FLOORED if mix.get(k)})
                for key, script in scripts.items():
                    if args.requests and key not in args.requests:
                        continue
                    for connections in args.connections:
                        try:
                            res = pgbench(url, script, connections, args.duration, db_pids)
                        except RuntimeError as exc:  # e.g. over the statement timeout
                            print(f"[{label}] plancher {key} : {str(exc)[-300:]}", flush=True)
                            continue
                        floors[(variant.name, key, connections)] = res
                        print(
                            f"[{label}] c={connections} plancher {variant.name} {key} {res.rps:.1f} tx/s",
                            flush=True,
                        )
        lines += report(status, results, floors, args.connections)
    finally:
        for s in started:
            s.stop()
    return lines


def _agree(runs: list[Result]) -> bool:
    """Whether the last two runs agree within AGREE."""
    if len(runs) < 2:
        return False
    a, b = runs[-1].rps, runs[-2].rps
    return abs(a - b) <= AGREE * max(a, b, 1e-9)


def _mean(runs: list[Result]) -> Result:
    """The mean of the last runs; `runs` text keeps each one's req/s for the table."""

    def avg(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return sum(known) / len(known) if known else None

    mean = Result(
        rps=avg([r.rps for r in runs]) or 0.0,
        p50_ms=avg([r.p50_ms for r in runs]) or 0.0,
        p99_ms=avg([r.p99_ms for r in runs]) or 0.0,
        errors=sum(r.errors for r in runs),
        bytes_per_response=avg([r.bytes_per_response for r in runs]) or 0.0,
        server_cpu_ms=avg([r.server_cpu_ms for r in runs]),
        db_cpu_ms=avg([r.db_cpu_ms for r in runs]),
    )
    mean.runs = " / ".join(f"{r.rps:.0f}" for r in runs)
    return mean


def _fmt(res: Result | None) -> list[str]:
    if res is None:
        return ["", "", "", "", "", "", ""]
    cpu = "" if res.server_cpu_ms is None else f"{res.server_cpu_ms:.2f}"
    return [
        f"{res.rps:.0f}" + (f" ({res.runs})" if res.runs else ""),
        f"{res.p50_ms:.1f}",
        f"{res.p99_ms:.1f}",
        str(res.errors),
        f"{res.bytes_per_response:,.0f}".replace(",", " ") if res.bytes_per_response else "",
        cpu,
        f"{res.db_cpu_ms:.2f}" if res.db_cpu_ms is not None else "",
    ]


def report(
    status: dict[tuple[str, str], str],
    results: dict[tuple[str, str, int], Result],
    floors: dict[tuple[str, str, int], Result],
    concurrencies: list[int],
) -> list[str]:
    """The Markdown of one dataset: one table per concurrency, then the targets at the highest."""
    lines: list[str] = []
    head = (
        "| requête | serveur | req/s (tours) | p50 ms | p99 ms | erreurs | octets/réponse "
        "| CPU serveur ms/req | CPU PostgreSQL ms/req |"
    )
    for c in concurrencies:
        lines += [
            f"### {c} connexion{'s' if c > 1 else ''}",
            "",
            head,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for key in REQUESTS:
            for variant in VARIANTS:
                st = status.get((variant.name, key))
                if st is None:
                    continue
                res = results.get((variant.name, key, c))
                cells = _fmt(res) if res else [st if st != "ok" else "non mesuré", "", "", "", "", "", ""]
                lines.append(f"| {LABELS[key]} | {variant.name} | " + " | ".join(cells) + " |")
                fl = floors.get((variant.name, key, c))
                if fl:
                    lines.append(
                        f"| {LABELS[key]} | plancher SQL ({variant.name.split(' · ')[1]}) | "
                        + " | ".join(_fmt(fl))
                        + " |"
                    )
        lines.append("")
    c = max(concurrencies)
    lines += [f"### Objectifs à {c} connexions", ""]
    lines += targets_table(results, floors, c)
    return lines


def targets_table(
    results: dict[tuple[str, str, int], Result], floors: dict[tuple[str, str, int], Result], c: int
) -> list[str]:
    """Ours ÷ tipg per request (≥ 1 wanted, geometric mean ≥ 2) and ours ÷ SQL floor (≥ 1/1.5)."""
    lines = [
        "| requête | utilisateur | résorption req/s | ÷ tipg | ÷ pygeoapi | ÷ plancher SQL |",
        "|---|---|---:|---:|---:|---:|",
    ]
    ratios: dict[str, list[float]] = {}
    for variant in VARIANTS:
        if variant.kind != "ours":
            continue
        for key in REQUESTS:
            ours = results.get((variant.name, key, c))
            if ours is None:
                continue
            cells = []
            for anchor in ("tipg", "pygeoapi"):
                other = results.get((anchor, key, c))
                if other and other.rps:
                    ratio = ours.rps / other.rps
                    if anchor == "tipg":
                        ratios.setdefault(variant.name, []).append(ratio)
                    cells.append(f"{ratio:.2f}×" + (" ✗" if anchor == "tipg" and ratio < 1 else ""))
                else:
                    cells.append("n/a")
            fl = floors.get((variant.name, key, c))
            if fl and fl.rps:
                r = ours.rps / fl.rps
                cells.append(f"{r:.2f}" + (" ✗" if r < 1 / 1.5 else ""))
            else:
                cells.append("")
            lines.append(f"| {LABELS[key]} | {variant.name} | {ours.rps:.0f} | " + " | ".join(cells) + " |")
    lines.append("")
    for name, values in ratios.items():
        gm = math.exp(sum(math.log(v) for v in values) / len(values))
        lines.append(
            f"- {name} : moyenne géométrique ÷ tipg = **{gm:.2f}×** "
            f"sur {len(values)} requêtes (objectif ≥ 2×)."
        )
    lines += [
        "",
        "✗ : objectif manqué (÷ tipg < 1, ou ÷ plancher SQL < 0,67, soit plus de 1,5× le plancher).",
        "",
    ]
    return lines


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = (
        int(
            next(
                x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")
            ).split()[1]
        )
        // 1024**2
    )
    pg = subprocess.run(["pgbench", "--version"], capture_output=True, text=True).stdout.strip()
    load = Path("/proc/loadavg").read_text().split()[:3]
    return (
        f"{servers.WORKERS} cœurs ({cpu}), {mem} Go, {platform.platform()}, {pg}; "
        f"charge au départ : {' '.join(load)}"
    )


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="resorption-bench-") as tmp:
        yield Path(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100k,1m", help="jeux à mesurer : 100k, 1m (défaut : les deux)")
    parser.add_argument("--duration", type=int, default=10, help="secondes par mesure (défaut 10)")
    parser.add_argument("--connections", default="1,4", help="connexions simultanées (défaut 1,4)")
    parser.add_argument(
        "--only", default="", help="serveurs à mesurer : ours,tipg,pygeoapi,floor (défaut : tous)"
    )
    parser.add_argument(
        "--requests", default="", help=f"requêtes à mesurer parmi {','.join(REQUESTS)} (défaut : toutes)"
    )
    args = parser.parse_args(argv)
    args.connections = [int(c) for c in args.connections.split(",")]
    args.only = [o for o in args.only.split(",") if o]
    args.requests = [r for r in args.requests.split(",") if r]
    servers.require_tools()
    started = dt.datetime.now()
    lines = [
        "# Résorption face à tipg et pygeoapi",
        "",
        f"Mesuré le {started:%Y-%m-%d %H:%M} sur : {machine()}.",
        f"Commande : `bench/run {' '.join(sys.argv[1:] if argv is None else argv)}`; "
        f"{args.duration} s par mesure, wrk, serveurs à {servers.WORKERS} processus.",
        "",
        "Comment chaque serveur tourne : résorption (gunicorn, sa configuration de production,"
        f" {servers.WORKERS} processus servant chacun une requête à la fois, ses flux à part :"
        " `resorption.serving_worker`, contrôle d'accès actif : rôle et RLS de"
        " l'utilisateur, jeton Bearer) ; tipg 1.6.1 (uvicorn avec httptools et uvloop, "
        f"{servers.WORKERS} processus, catalogue gardé 24 h : `TIPG_CATALOG_TTL`) et pygeoapi 0.24"
        f" d'origine (gunicorn, {servers.WORKERS} processus `sync`, fournisseur PostgreSQL) lisent"
        " en superutilisateur des tables simples `bench.sites` et `bench.actions` (copies, clé"
        " primaire, index GiST et `(departement_code, id)`, VACUUM ANALYZE). wrk envoie"
        " `Connection: close` à tous (chaque requête va au processus libre), 1 s d'échauffement"
        " avant chaque mesure ; les serveurs passent à tour de rôle, requête par requête, et"
        f" chaque mesure est refaite jusqu'à ce que ses deux dernières s'accordent à {AGREE:.0%}"
        f" près (au plus {MAX_ROUNDS} tours) : la colonne req/s montre leur moyenne et, entre"
        " parenthèses, chaque tour. Les ancres lisent toute la France : un utilisateur"
        " départemental est comparé à leur réponse nationale (il lit moins de lignes).",
        "",
    ]
    out = Path(__file__).parent / "results" / f"{started:%Y%m%d-%H%M%S}.md"
    out.parent.mkdir(exist_ok=True)
    analysis = Path(__file__).parent / "ANALYSIS.md"
    with _workdir() as workdir:
        for label in args.sizes.split(","):
            lines += run_size(label, SIZES[label], args, workdir)
            out.write_text("\n".join(lines) + "\n")  # each size as soon as it is measured
    if analysis.exists():  # the closing note: where the time goes (written from profiles)
        lines += ["", analysis.read_text()]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    (Path(__file__).parent / "RESULTS.md").write_text(text)
    print(text)
    print(f"écrit : {out} et bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
