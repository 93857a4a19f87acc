"""Eight editors of the same site at once, through every way to write it: no lost update, one
version per acknowledged write, versions that never overlap.

- 4 API editors read the site, add 1 to its population and PATCH it with `If-Match` (a 412
  means someone wrote meanwhile: they read again and retry, as a client must);
- 2 editors confirm it from the web map (« toujours d'actualité », `If-Match` too);
- 2 editors record a census of it (process `record-census`) with one more person than they
  read, naming the version they read (`version`, the processes' `If-Match`).

Every increment acknowledged (204, 200) must be in the final population: a lost update would
leave it short. Every acknowledged write is one version of the site's history.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
import requests

from tests.fix_users import TestUser

BORDEAUX = (-0.5792, 44.8378)
ROUNDS = 12  # successful writes per editor


@pytest.fixture
def site(base_url: str, users: dict[str, TestUser], database_url: str) -> Iterator[int]:
    admin = users["national-admin-nation"].headers
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(BORDEAUX)},
        "properties": {"name": "Site des huit éditeurs", "declared_at": "2024-03-01", "population_total": 1},
    }
    r = requests.post(f"{base_url}/collections/sites/items", json=feature, headers=admin, timeout=60)
    assert r.status_code == 201, r.text
    site_id = int(r.headers["Location"].rsplit("/", 1)[1])
    yield site_id
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM resorption.sites WHERE id = %s", (site_id,))


def test_eight_editors_lose_no_update(
    base_url: str, users: dict[str, TestUser], site: int, database_url: str
) -> None:
    admin = users["national-admin-nation"].headers
    item = f"{base_url}/collections/sites/items/{site}"
    acknowledged: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    problems: list[str] = []
    lock = threading.Lock()

    def note(kind: str, r: requests.Response, ok: int) -> bool:
        with lock:
            if r.status_code == ok:
                acknowledged[kind] += 1
                return True
            if r.status_code in (412, 503):  # someone wrote meanwhile / the row was held too long
                refused[f"{kind} {r.status_code}"] += 1
                return False
            problems.append(f"{kind}: {r.status_code} {r.text[:300]}")
            return False

    def api_editor() -> None:
        done = 0
        while done < ROUNDS and len(problems) < 5:
            r = requests.get(item, headers=admin, timeout=60)
            population = r.json()["properties"]["population_total"]
            r = requests.patch(
                item,
                json={"properties": {"population_total": population + 1}},
                headers={**admin, "If-Match": r.headers["ETag"], "Content-Type": "application/merge-patch+json"},
                timeout=60,
            )
            done += note("api", r, 204)

    def form_editor() -> None:
        done = 0
        while done < ROUNDS and len(problems) < 5:
            etag = requests.get(item, headers=admin, timeout=60).headers["ETag"]
            r = requests.patch(
                f"{base_url}/carte/sites/{site}/confirmation", headers={**admin, "If-Match": etag}, timeout=60
            )
            done += note("formulaire", r, 204)

    def process_editor() -> None:
        done = 0
        while done < ROUNDS and len(problems) < 5:
            r = requests.get(item, headers=admin, timeout=60)
            population = r.json()["properties"]["population_total"]
            inputs = {"site": site, "census_at": "2025-01-15", "population_total": population + 1,
                      "version": r.headers["ETag"]}
            r = requests.post(
                f"{base_url}/processes/record-census/execution", json={"inputs": inputs}, headers=admin, timeout=60
            )
            done += note("processus", r, 200)

    threads = [threading.Thread(target=api_editor) for _ in range(4)]
    threads += [threading.Thread(target=form_editor) for _ in range(2)]
    threads += [threading.Thread(target=process_editor) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    print(f"\nécritures acquittées : {dict(acknowledged)} ; refusées : {dict(refused)}")
    assert problems == [], problems
    assert acknowledged == {"api": 4 * ROUNDS, "formulaire": 2 * ROUNDS, "processus": 2 * ROUNDS}
    assert sum(refused.values()) > 0  # they did meet
    with psycopg.connect(database_url) as conn:
        population = conn.execute(
            "SELECT population_total FROM resorption.sites WHERE id = %s", (site,)
        ).fetchone()[0]
        versions = conn.execute(
            "SELECT count(*) FROM resorption.sites_history WHERE id = %s AND operation <> 'insert'", (site,)
        ).fetchone()[0]
        overlaps = conn.execute(
            "SELECT count(*) FROM resorption.sites_history a JOIN resorption.sites_history b "
            "ON a.id = b.id AND a.version_id < b.version_id AND a.valid && b.valid WHERE a.id = %s",
            (site,),
        ).fetchone()[0]
    assert population == 1 + 6 * ROUNDS  # every acknowledged increment, none lost
    assert versions == sum(acknowledged.values())
    assert overlaps == 0
