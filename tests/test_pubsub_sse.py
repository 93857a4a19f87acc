"""Real-time changes as Server-Sent Events: filtered by the caller's scope and rights at
delivery, resumable with Last-Event-ID, bounded in time and in number per worker. A server of
its own (streams of a few seconds) so that streams never hold the suite's server."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.fix_second_server import free_port, start_gunicorn
from tests.fix_users import TestUser

STREAM_SECONDS = 6


@pytest.fixture(scope="module")
def sse_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "RESORPTION_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RESORPTION_SSE_MAX_SECONDS": str(STREAM_SECONDS),
        # these tests hold several streams at once, whichever worker takes them
        "RESORPTION_SSE_MAX_STREAMS": "3",
    }
    log = tmp_path_factory.mktemp("sse") / "gunicorn.log"
    with start_gunicorn("resorption.app:wsgi()", env, log, port, workers=2) as url:
        yield url


@dataclass
class Stream:
    """An SSE client reading in a thread: the events it got, and the last id."""

    response: requests.Response
    events: list[dict[str, Any]] = field(default_factory=list)
    comments: int = 0
    ended: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        current: dict[str, Any] = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line == "":
                    if "data" in current:
                        current["data"] = json.loads(current["data"])
                        self.events.append(current)
                    current = {}
                elif line.startswith(":"):
                    self.comments += 1
                else:
                    name, _, value = line.partition(":")
                    current[name] = value.removeprefix(" ")
        except (requests.RequestException, AttributeError, OSError):
            pass  # the test closed the response
        finally:
            self.ended.set()

    def about(self, collection: str, item: int) -> list[dict[str, Any]]:
        return [e for e in self.events if e["data"]["collection"] == collection and e["data"]["item"] == item]

    def wait_for(self, collection: str, item: int, timeout: float = 8) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not self.about(collection, item) and time.monotonic() < deadline and not self.ended.is_set():
            time.sleep(0.05)
        return self.about(collection, item)


def open_stream(url: str, user: TestUser | None, path: str, last_event_id: str | None = None) -> Stream:
    headers = {"Accept": "text/event-stream", **(user.headers if user else {})}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    response = requests.get(url + path, headers=headers, stream=True, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    stream = Stream(response)
    threading.Thread(target=stream.read, daemon=True).start()
    time.sleep(0.8)  # the stream took its starting position
    return stream


def _site_in(database_url: str, departement: str, offset: int) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT id FROM resorption.sites WHERE departement_code = %s AND closed_at IS NULL "
            "ORDER BY id DESC OFFSET %s LIMIT 1",
            (departement, offset),
        ).fetchone()[0]


def _edit(database_url: str, site_id: int, column: str = "population_total") -> None:
    with psycopg.connect(database_url) as conn:
        if column == "population_total":
            conn.execute(
                "UPDATE resorption.sites SET population_total = coalesce(population_total, 0) %% 9000 + 1 "
                "WHERE id = %s",
                (site_id,),
            )
        else:
            conn.execute(
                f"UPDATE resorption.sites SET {column} = NOT coalesce({column}, false) WHERE id = %s",
                (site_id,),
            )


def test_an_edit_reaches_its_territory_and_nobody_else(
    sse_url: str, base_url: str, database_url: str, users: dict[str, TestUser]
) -> None:
    ours = open_stream(sse_url, users["operator-departement-33"], "/collections/sites/events")
    everything = open_stream(sse_url, users["operator-departement-33"], "/events")
    theirs = open_stream(sse_url, users["operator-departement-93"], "/collections/sites/events")
    site_id = _site_in(database_url, "33", 0)
    url = f"{base_url}/collections/sites/items/{site_id}"
    editor = users["correspondent-departement-33"]
    etag = requests.get(url, headers=editor.headers, timeout=30).headers["ETag"]
    r = requests.patch(
        url,
        json={"properties": {"population_total": int(time.time()) % 5000 + 10}},
        headers={"If-Match": etag, **editor.headers},
        timeout=30,
    )
    assert r.status_code in (200, 204), r.text
    got = ours.wait_for("sites", site_id)
    assert got and got[-1]["event"] == "change"
    assert any("population_total" in e["data"]["fields"] for e in got)
    assert everything.wait_for("sites", site_id)
    ours.ended.wait(STREAM_SECONDS + 5)  # the stream ends by itself (bounded duration)
    theirs.ended.wait(STREAM_SECONDS + 5)
    assert ours.ended.is_set() and theirs.ended.is_set()
    # the other département's stream: no event about that site, nor any of Gironde
    assert theirs.about("sites", site_id) == []
    assert theirs.events == [] or all("33" not in json.dumps(e) for e in theirs.events)


def test_sensitive_changes_reach_only_those_who_read_them(
    sse_url: str, database_url: str, users: dict[str, TestUser]
) -> None:
    without = open_stream(sse_url, users["operator-departement-33"], "/collections/sites/events")
    with_justice = open_stream(sse_url, users["operator-opts-departement-33"], "/collections/sites/events")
    site_id = _site_in(database_url, "33", 1)
    _edit(database_url, site_id, "justice_procedure")
    got = with_justice.wait_for("sites", site_id)
    assert got and "justice_procedure" in got[0]["data"]["fields"]
    time.sleep(1.5)
    assert without.about("sites", site_id) == []  # not even that something changed
    for s in (without, with_justice):
        s.response.close()


def test_a_restricted_journal_message_is_never_announced(
    sse_url: str, database_url: str, users: dict[str, TestUser]
) -> None:
    reader = open_stream(sse_url, users["operator-departement-33"], "/collections/site_comments/events")
    site_id = _site_in(database_url, "33", 2)
    with psycopg.connect(database_url) as conn:
        hidden = conn.execute(
            "INSERT INTO resorption.site_comments (site_id, departement_code, message, visibility, audience_users) "
            "VALUES (%s, '33', 'réservé à quelqu''un', 'chosen', '{quelqu-un}') RETURNING id",
            (site_id,),
        ).fetchone()[0]
        shown = conn.execute(
            "INSERT INTO resorption.site_comments (site_id, departement_code, message) "
            "VALUES (%s, '33', 'pour tous') RETURNING id",
            (site_id,),
        ).fetchone()[0]
        conn.commit()
        conn.execute("DELETE FROM resorption.site_comments WHERE id = %s", (hidden,))
    assert reader.wait_for("site_comments", shown)
    time.sleep(1.5)
    assert reader.about("site_comments", hidden) == []
    reader.response.close()


def test_a_stream_resumes_from_last_event_id_exactly(
    sse_url: str, database_url: str, users: dict[str, TestUser]
) -> None:
    reader = users["operator-departement-33"]
    first = open_stream(sse_url, reader, "/collections/sites/events")
    site_ids = [_site_in(database_url, "33", n) for n in (3, 4, 5)]
    _edit(database_url, site_ids[0])
    got = first.wait_for("sites", site_ids[0])
    assert got
    first.response.close()
    last_id = got[-1]["id"]
    # Sealed: no outbox or transaction id in clear (they count every territory's changes)
    assert not re.search(r"\d+-\d+-\d+", last_id), last_id
    _edit(database_url, site_ids[1])  # while nobody listens
    _edit(database_url, site_ids[2])
    second = open_stream(sse_url, reader, "/collections/sites/events", last_event_id=last_id)
    assert second.wait_for("sites", site_ids[1]) and second.wait_for("sites", site_ids[2])
    assert second.about("sites", site_ids[0]) == []  # not again
    second.response.close()


@pytest.mark.parametrize(
    ("path", "user", "status"),
    [
        ("/events", None, 401),
        ("/collections/sites/events", None, 401),
        ("/collections/site_changes/events", "operator-departement-33", 404),
        ("/collections/inconnue/events", "operator-departement-33", 404),
    ],
)
def test_who_may_not_follow(
    sse_url: str, users: dict[str, TestUser], path: str, user: str | None, status: int
) -> None:
    headers = users[user].headers if user else {}
    r = requests.get(sse_url + path, headers=headers, timeout=10)
    assert r.status_code == status
    assert "text/event-stream" not in r.headers.get("Content-Type", "")


def test_a_stream_refuses_parameters_it_would_ignore(sse_url: str, users: dict[str, TestUser]) -> None:
    r = requests.get(
        sse_url + "/collections/sites/events",
        params={"filter": "departement_code = '93'"},
        headers=users["operator-departement-33"].headers,
        timeout=10,
    )
    assert r.status_code == 400
    assert "Paramètre inconnu pour un flux de changements : filter" in r.json()["description"]


@pytest.mark.parametrize("last_event_id", ["'; DROP TABLE", "1-2-3", "gAAAAABforged"])
def test_a_garbled_or_forged_last_event_id_is_refused_in_french(
    sse_url: str, users: dict[str, TestUser], last_event_id: str
) -> None:
    """A position in clear or one this database did not seal is refused, like garbage."""
    r = requests.get(
        sse_url + "/collections/sites/events",
        headers={"Last-Event-ID": last_event_id, **users["operator-departement-33"].headers},
        timeout=10,
    )
    assert r.status_code == 400
    assert "Last-Event-ID illisible" in r.json()["description"]


def test_a_marker_changes_live_for_another_user_and_nobody_outside_sees_it(
    sse_url: str, browser: Any, users: dict[str, TestUser], database_url: str
) -> None:
    """Three people on /carte: one edits a site from its sheet; a second one of the same
    département sees its marker change without reloading; one of another département sees
    nothing of it (their feed stays empty)."""
    from playwright.sync_api import expect

    from tests.fix_browser import Pages
    from tests.test_webmap import open_sheet, sign_in

    pages = Pages(browser, sse_url)
    try:
        editor = sign_in(pages, users["correspondent-departement-33"])
        watcher = sign_in(pages, users["operator-departement-33"])
        outsider = sign_in(pages, users["operator-departement-93"])
        for page in (watcher, outsider):
            page.get_by_label("Suivre les changements en direct").check()
            page.wait_for_function("() => document.querySelector('#carte').dataset.live === 'on'")
        site_id = str(_site_in(database_url, "33", 6))
        open_sheet(editor, site_id)
        editor.get_by_role("button", name="Modifier").click()
        population = str(int(time.time()) % 3000 + 100)
        editor.locator("#fiche").get_by_label("Nombre de personnes", exact=True).fill(population)
        editor.get_by_role("button", name="Enregistrer").click()
        expect(editor.locator("#fiche .fiche-message")).to_have_text("Modifications enregistrées.")
        marker = watcher.locator(f'path.site-marker[data-site-id="{site_id}"]')
        expect(marker).to_have_attribute("data-population", population, timeout=10_000)
        expect(watcher.locator(f'#direct-liste li[data-site-id="{site_id}"]').first).to_contain_text(
            "modifié"
        )
        expect(watcher.locator(f'#direct-liste li[data-site-id="{site_id}"]').first).to_contain_text(
            "Nombre de personnes"
        )
        time.sleep(1.5)
        assert outsider.locator("#direct-liste li").count() == 0
        assert outsider.locator(f'path.site-marker[data-site-id="{site_id}"]').count() == 0
        screenshots = Path(__file__).resolve().parents[1] / "tests" / "output" / "screenshots"
        screenshots.mkdir(parents=True, exist_ok=True)
        watcher.screenshot(path=str(screenshots / "carte-en-direct.png"))
        assert pages.console_errors == []
        assert not pages.blocked and not pages.csp_violations
    finally:
        pages.close()


def test_streams_leave_threads_for_ordinary_requests(
    database_url: str, users: dict[str, TestUser], tmp_path: Path
) -> None:
    """One worker holds at most RESORPTION_SSE_MAX_STREAMS streams: beyond, a French 503 with
    Retry-After (EventSource tries again), and ordinary requests are still served at once; a
    stream whose client went away gives its slot back."""
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "RESORPTION_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RESORPTION_SSE_MAX_SECONDS": "30",
        "RESORPTION_SSE_MAX_STREAMS": "2",
    }
    reader = users["operator-departement-33"]
    with start_gunicorn("resorption.app:wsgi()", env, tmp_path / "gunicorn.log", port) as url:
        first = open_stream(url, reader, "/collections/sites/events")
        second = open_stream(url, reader, "/events")
        third = requests.get(url + "/events", headers=reader.headers, stream=True, timeout=10)
        assert third.status_code == 503 and third.headers["Retry-After"] == "5"
        assert "Trop de flux" in third.json()["description"]
        # the worker's other threads answer while two streams are open
        assert requests.get(url + "/collections/sites/items?limit=1", headers=reader.headers, timeout=5).ok
        # a client gone: its slot is free again once the stream writes its next line (≤ 1 s)
        first.response.close()
        deadline = time.monotonic() + 10
        while True:
            again = requests.get(url + "/events", headers=reader.headers, stream=True, timeout=10)
            if again.status_code == 200 or time.monotonic() > deadline:
                break
            again.close()
            time.sleep(0.3)
        assert again.status_code == 200, again.text
        again.close()
        second.response.close()


def test_a_stream_ends_when_its_caller_loses_the_right_and_tells_them_nothing_more(
    sse_url: str, database_url: str
) -> None:
    """Filtered at delivery: a user moved to another département (or deactivated) while their
    stream is open hears nothing more of the old one; the stream ends and the reconnection is
    judged under the new rights."""
    from resorption import accounts
    from tests.fix_mqtt import make_mqtt_user

    made = make_mqtt_user(database_url, "sse-demenage-33", "operator", "33")
    user = TestUser(made.username, "operator", frozenset(), "departement", "33", made.token)
    stream = open_stream(sse_url, user, "/collections/sites/events")
    site_ids = [_site_in(database_url, "33", n) for n in (7, 8)]
    _edit(database_url, site_ids[0])
    assert stream.wait_for("sites", site_ids[0])
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE resorption.users SET area_code = '93' WHERE username = %s", (user.username,))
    _edit(database_url, site_ids[1])
    assert stream.ended.wait(5)  # well before the stream's own end (STREAM_SECONDS)
    assert stream.about("sites", site_ids[1]) == []
    again = open_stream(sse_url, user, "/collections/sites/events", last_event_id=stream.events[-1]["id"])
    time.sleep(1.5)
    assert again.about("sites", site_ids[1]) == []  # a Gironde site: no longer theirs
    again.response.close()
    accounts.deactivate_user(database_url, user.username)
    r = requests.get(sse_url + "/collections/sites/events", headers=user.headers, timeout=10)
    assert r.status_code == 401
