"""The journal of sites and actions: messages, their visibility, the edit delay, moderation,
history, the link from the site, and the export's « Journal » sheet.

Through the HTTP API, against the real PostGIS: visibility is row-level security
(sql/150_journal.sql), so every way to read (items, one item, hits, filters, sorts, ETags)
is checked for readers it must not admit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openpyxl
import psycopg
import pytest
import requests

from tests.fix_users import CATALOG

JOURNAL = "/collections/site_comments/items"
GEOJSON = {"Content-Type": "application/geo+json"}
# Organisations of the tests: name, kind, département.
ORGANISATIONS = {
    "pref33": ("Préfecture de la Gironde (journal)", "state_service", "33"),
    "ddets33": ("DDETS de la Gironde (journal)", "state_service", "33"),
    "asso33": ("Association girondine (journal)", "association", "33"),
    "asso33b": ("Autre association girondine (journal)", "association", "33"),
    "pref93": ("Préfecture de la Seine-Saint-Denis (journal)", "state_service", "93"),
    "asso93": ("Association séquano-dionysienne (journal)", "association", "93"),
}
# (username, organisation, role, département of the area; None: the nation)
PEOPLE = [
    ("j-pref33", "pref33", "correspondent", "33"),
    ("j-ddets33", "ddets33", "correspondent", "33"),
    ("j-asso33", "asso33", "operator", "33"),
    ("j-asso33b", "asso33b", "operator", "33"),
    ("j-pref93", "pref93", "correspondent", "93"),
    ("j-asso93", "asso93", "operator", "93"),
    ("j-admin33", "asso33b", "local_admin", "33"),
    ("j-admin93", "asso93", "local_admin", "93"),
    ("j-natadmin", "pref33", "national_admin", None),
]


@dataclass(frozen=True)
class Person:
    """A user of the journal tests, with its organisation's id."""

    username: str
    organisation_id: int
    session: requests.Session


@pytest.fixture(scope="module")
def people(database_url: str, base_url: str) -> Iterator[dict[str, Person]]:
    """Users in organisations of their own (State services, associations), each with a token."""
    made: dict[str, Person] = {}
    with psycopg.connect(database_url) as conn:
        for username, org_key, role, code in PEOPLE:
            org_name, kind, org_dep = ORGANISATIONS[org_key]
            level = "departement" if code else "nation"
            org = conn.execute(
                "INSERT INTO resorption.organisations (name, kind, departement_code) VALUES (%s, %s, %s) "
                "ON CONFLICT (name, departement_code) DO UPDATE SET kind = EXCLUDED.kind RETURNING id",
                (org_name, kind, org_dep),
            ).fetchone()[0]
            user_id = conn.execute(
                "INSERT INTO resorption.users (username, organisation_id, role, area_level, area_code) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (username, org, role, level, code),
            ).fetchone()[0]
            token = "rsp_" + secrets.token_urlsafe(32)
            conn.execute(
                "INSERT INTO resorption.api_tokens (user_id, token_hash, prefix, label, expires_at) "
                "VALUES (%s, %s, %s, 'tests', now() + interval '1 day')",
                (user_id, hashlib.sha256(token.encode()).digest(), token[:8]),
            )
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            made[username] = Person(username, org, session)
    yield made
    for person in made.values():
        person.session.close()


@pytest.fixture(scope="module")
def site(db: psycopg.Connection) -> int:
    """An open site of Gironde."""
    return db.execute(
        "SELECT id FROM resorption.sites WHERE departement_code = '33' AND status = 'open' ORDER BY id LIMIT 1"
    ).fetchone()[0]


def _message(site_id: int, text: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": None,
        "properties": {"site_id": site_id, "message": text, **properties},
    }


def write(base_url: str, person: Person, site_id: int, text: str, **properties: Any) -> int:
    """Write a message as `person`; its id."""
    r = person.session.post(base_url + JOURNAL, json=_message(site_id, text, **properties), headers=GEOJSON)
    assert r.status_code == 201, r.text
    return int(r.headers["Location"].rsplit("/", 1)[1])


def texts(base_url: str, person: Person, site_id: int, **params: Any) -> list[str]:
    r = person.session.get(base_url + JOURNAL, params={"site_id": site_id, "limit": 1000, **params})
    assert r.status_code == 200, r.text
    return [f["properties"]["message"] for f in r.json()["features"]]


def test_a_message_is_written_and_read_with_its_author_organisation_and_tags(
    base_url: str, people: dict[str, Person], site: int
) -> None:
    pref = people["j-pref33"]
    key = write(
        base_url, pref, site, "Visite du site : 12 familles présentes.", tags=["sante", "suivi_social"]
    )
    r = people["j-asso33"].session.get(f"{base_url}{JOURNAL}/{key}")
    assert r.status_code == 200
    props = r.json()["properties"]
    assert props["message"] == "Visite du site : 12 familles présentes."
    assert props["tags"] == ["sante", "suivi_social"]
    assert props["visibility"] == "everyone"
    assert props["created_by"] == "j-pref33"
    assert props["organisation_name"] == "Préfecture de la Gironde (journal)"
    assert props["departement_code"] == "33"
    assert props["hidden"] is False
    assert r.json()["geometry"]["type"] == "Point"  # the site's location
    assert "ETag" in r.headers


def test_a_message_is_checked_like_any_item(base_url: str, people: dict[str, Person], site: int) -> None:
    asso = people["j-asso33"]
    r = asso.session.post(
        base_url + JOURNAL,
        json=_message(site, "x", tags=["pas-une-etiquette"], visibility="secret"),
        headers=GEOJSON,
    )
    assert r.status_code == 400
    assert {p["property"] for p in r.json()["errors"]} >= {"tags", "visibility"}
    # chosen without anybody chosen
    r = asso.session.post(base_url + JOURNAL, json=_message(site, "x", visibility="chosen"), headers=GEOJSON)
    assert r.status_code == 400
    # the author is the caller, whatever the body says
    r = asso.session.post(
        base_url + JOURNAL, json=_message(site, "x", created_by="j-pref33"), headers=GEOJSON
    )
    assert r.status_code == 400


def test_nobody_writes_on_a_site_out_of_sight(base_url: str, people: dict[str, Person], site: int) -> None:
    """An operator of Seine-Saint-Denis cannot read a Gironde site: it is as absent as a site
    that does not exist."""
    outsider = people["j-asso93"]
    hidden = outsider.session.post(base_url + JOURNAL, json=_message(site, "Bonjour"), headers=GEOJSON)
    absent = outsider.session.post(base_url + JOURNAL, json=_message(999_999_999, "Bonjour"), headers=GEOJSON)
    assert hidden.status_code == absent.status_code == 400
    assert hidden.json()["errors"][0]["message"].replace(str(site), "N") == absent.json()["errors"][0][
        "message"
    ].replace("999999999", "N")


def _views(base_url: str, person: Person, site_id: int, needle: str) -> dict[str, Any]:
    """Everything `person` may learn of the journal of `site_id` through the API."""
    s = person.session
    items = s.get(base_url + JOURNAL, params={"site_id": site_id, "limit": 1000})
    hits = s.get(base_url + JOURNAL, params={"site_id": site_id, "resulttype": "hits"})
    filtered = s.get(
        base_url + JOURNAL, params={"filter": f"message LIKE '%{needle}%'", "resulttype": "hits"}
    )
    sorted_ = s.get(base_url + JOURNAL, params={"site_id": site_id, "sortby": "-created_at", "limit": 1000})
    return {
        "items": [f["id"] for f in items.json()["features"]]
        if items.status_code == 200
        else items.status_code,
        "matched": items.json().get("numberMatched") if items.status_code == 200 else None,
        "etag": items.headers.get("ETag"),
        "hits": hits.json().get("numberMatched") if hits.status_code == 200 else hits.status_code,
        "filter": filtered.json().get("numberMatched")
        if filtered.status_code == 200
        else filtered.status_code,
        "sorted": [f["id"] for f in sorted_.json()["features"]] if sorted_.status_code == 200 else None,
    }


def test_a_state_services_message_is_read_by_the_state_services_of_the_territory_only(
    base_url: str, people: dict[str, Person], site: int
) -> None:
    needle = "préfet-" + secrets.token_hex(4)
    outside = ("j-asso33", "j-asso93", "j-pref93")
    before = {u: _views(base_url, people[u], site, needle) for u in outside}
    key = write(
        base_url, people["j-pref33"], site, f"Réunion en préfecture {needle}", visibility="state_services"
    )
    for reader in ("j-pref33", "j-ddets33", "j-natadmin"):
        r = people[reader].session.get(f"{base_url}{JOURNAL}/{key}")
        assert r.status_code == 200, reader
        assert needle in r.json()["properties"]["message"]
        assert key in _views(base_url, people[reader], site, needle)["items"]
    for reader in outside:
        assert people[reader].session.get(f"{base_url}{JOURNAL}/{key}").status_code == 404, reader
        assert _views(base_url, people[reader], site, needle) == before[reader], reader


def test_a_message_for_chosen_organisations_and_users(
    base_url: str, people: dict[str, Person], site: int
) -> None:
    asso, other, pref = people["j-asso33"], people["j-asso33b"], people["j-pref33"]
    key = write(
        base_url,
        pref,
        site,
        "Pour l'association seulement",
        visibility="chosen",
        audience_organisations=[asso.organisation_id],
    )
    assert asso.session.get(f"{base_url}{JOURNAL}/{key}").status_code == 200
    assert other.session.get(f"{base_url}{JOURNAL}/{key}").status_code == 404
    assert people["j-ddets33"].session.get(f"{base_url}{JOURNAL}/{key}").status_code == 404
    key = write(base_url, pref, site, "Pour une personne", visibility="chosen", audience_users=["j-asso33b"])
    assert other.session.get(f"{base_url}{JOURNAL}/{key}").status_code == 200
    assert asso.session.get(f"{base_url}{JOURNAL}/{key}").status_code == 404


def test_the_author_edits_and_deletes_within_the_delay_only(
    base_url: str, people: dict[str, Person], site: int, db: psycopg.Connection
) -> None:
    asso, other = people["j-asso33"], people["j-asso33b"]
    key = write(base_url, asso, site, "Premier jet")
    url = f"{base_url}{JOURNAL}/{key}"
    patch = {"Content-Type": "application/merge-patch+json"}
    r = asso.session.patch(url, json={"properties": {"message": "Texte corrigé"}}, headers=patch)
    assert r.status_code == 204, r.text
    assert asso.session.get(url).json()["properties"]["message"] == "Texte corrigé"
    # someone else, even a reader of the message, may not
    r = other.session.patch(url, json={"properties": {"message": "Pas à moi"}}, headers=patch)
    assert r.status_code == 403
    assert "auteur" in r.json()["description"]
    assert other.session.delete(url).status_code == 403
    # past the delay (24 h in the policy), the author may not either
    db.execute("ALTER TABLE resorption.site_comments DISABLE TRIGGER USER")
    try:
        db.execute(
            "UPDATE resorption.site_comments SET created_at = now() - interval '25 hours' WHERE id = %s",
            (key,),
        )
    finally:
        db.execute("ALTER TABLE resorption.site_comments ENABLE TRIGGER USER")
    r = asso.session.patch(url, json={"properties": {"message": "Trop tard"}}, headers=patch)
    assert r.status_code == 403
    assert "délai" in r.json()["description"]
    assert asso.session.delete(url).status_code == 403
    # within it, the author deletes
    fresh = write(base_url, asso, site, "À supprimer")
    assert asso.session.delete(f"{base_url}{JOURNAL}/{fresh}").status_code == 204
    assert asso.session.get(f"{base_url}{JOURNAL}/{fresh}").status_code == 404


def test_administrators_hide_a_message_with_a_reason_and_it_stays_in_history(
    base_url: str, people: dict[str, Person], site: int
) -> None:
    author, reader, admin = people["j-asso33"], people["j-asso33b"], people["j-admin33"]
    key = write(base_url, author, site, "Propos déplacés")
    url = f"{base_url}{JOURNAL}/{key}"
    patch = {"Content-Type": "application/merge-patch+json"}
    # `datetime` instants are read to the second
    time.sleep(1.1)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    time.sleep(1.1)
    # a reason is required
    assert admin.session.patch(url, json={"properties": {"hidden": True}}, headers=patch).status_code == 400
    # the author cannot hide or show it; the administrator cannot edit its text
    assert (
        author.session.patch(
            url, json={"properties": {"hidden": True, "hidden_reason": "x"}}, headers=patch
        ).status_code
        == 403
    )
    assert (
        admin.session.patch(url, json={"properties": {"message": "Autre"}}, headers=patch).status_code == 403
    )
    r = admin.session.patch(
        url, json={"properties": {"hidden": True, "hidden_reason": "Propos injurieux"}}, headers=patch
    )
    assert r.status_code == 204, r.text
    # readers no longer see it at all; the author and the moderators see it hidden, with the reason
    assert reader.session.get(url).status_code == 404
    assert key not in _views(base_url, reader, site, "déplacés")["items"]
    for who in (author, admin, people["j-natadmin"]):
        props = who.session.get(url).json()["properties"]
        assert props["hidden"] is True
        assert props["hidden_reason"] == "Propos injurieux"
        assert props["hidden_by"] == "j-admin33"
    # an administrator of another territory does not moderate Gironde: a hidden message does
    # not even exist for them, and a visible one they may not hide
    r = people["j-admin93"].session.patch(
        url, json={"properties": {"hidden": False, "hidden_reason": None}}, headers=patch
    )
    assert r.status_code == 404
    shown = write(base_url, author, site, "Message visible")
    r = people["j-admin93"].session.patch(
        f"{base_url}{JOURNAL}/{shown}",
        json={"properties": {"hidden": True, "hidden_reason": "x"}},
        headers=patch,
    )
    assert r.status_code == 403
    assert author.session.get(url).json()["properties"]["hidden"] is True
    # the history keeps every version: before moderation, the message was shown
    r = admin.session.get(base_url + JOURNAL, params={"site_id": site, "datetime": before, "limit": 1000})
    assert r.status_code == 200
    old = [f for f in r.json()["features"] if f["id"] == key]
    assert old and old[0]["properties"]["hidden"] is False
    # a plain reader reads no version of the history
    r = reader.session.get(base_url + JOURNAL, params={"site_id": site, "datetime": before, "limit": 1000})
    assert r.status_code == 200
    assert [f for f in r.json()["features"] if f["id"] == key] == []


def test_a_site_links_to_its_journal(base_url: str, people: dict[str, Person], site: int) -> None:
    r = people["j-asso33"].session.get(f"{base_url}/collections/sites/items/{site}")
    related = [link for link in r.json()["links"] if link["rel"] == "related"]
    assert related and related[0]["href"].endswith(
        f"/collections/site_comments/items?site_id={site}&sortby=-created_at"
    )
    assert (
        requests.get(related[0]["href"], headers=people["j-asso33"].session.headers, timeout=60).status_code
        == 200
    )


def test_the_anonymous_read_no_journal(base_url: str, anonymous: requests.Session, site: int) -> None:
    r = anonymous.get(JOURNAL, params={"site_id": site})
    assert r.status_code == 401
    r = anonymous.post(JOURNAL, json=_message(site, "Bonjour"), headers=GEOJSON)
    assert r.status_code == 401


def test_an_action_has_its_journal_too(
    base_url: str, people: dict[str, Person], db: psycopg.Connection
) -> None:
    action = db.execute(
        "SELECT id FROM resorption.actions WHERE departement_code = '33' ORDER BY id LIMIT 1"
    ).fetchone()[0]
    pref = people["j-pref33"]
    r = pref.session.post(
        base_url + "/collections/action_comments/items",
        json={
            "type": "Feature",
            "geometry": None,
            "properties": {"action_id": action, "message": "Comité de suivi", "tags": ["scolarisation"]},
        },
        headers=GEOJSON,
    )
    assert r.status_code == 201, r.text
    r = people["j-asso93"].session.get(
        base_url + "/collections/action_comments/items", params={"action_id": action}
    )
    assert r.status_code == 200
    assert r.json()["features"] == []
    r = people["j-asso33"].session.get(
        base_url + "/collections/action_comments/items", params={"action_id": action}
    )
    assert [f["properties"]["message"] for f in r.json()["features"]] == ["Comité de suivi"]
    assert r.json()["features"][0]["properties"]["tags"] == ["scolarisation"]
    r = people["j-asso33"].session.get(f"{base_url}/collections/actions/items/{action}")
    assert any(link["rel"] == "related" and "action_comments" in link["href"] for link in r.json()["links"])


def test_both_journals_share_one_list_of_tags() -> None:
    assert CATALOG["site_comments"].fields["tags"].enum == CATALOG["action_comments"].fields["tags"].enum


def _journal_sheet(content: bytes) -> list[tuple[Any, ...]]:
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    assert "Journal" in book.sheetnames
    return list(book["Journal"].iter_rows(values_only=True))


def _export(base_url: str, person: Person, **inputs: Any) -> bytes:
    r = person.session.post(
        base_url + "/processes/export-sites/execution",
        json={"inputs": {"format": "xlsx", **inputs}},
        timeout=300,
    )
    assert r.status_code == 200, r.text
    return r.content


def test_the_sites_export_has_a_journal_sheet_of_what_the_exporter_reads(
    base_url: str, people: dict[str, Person], site: int
) -> None:
    needle = "export-" + secrets.token_hex(4)
    write(base_url, people["j-pref33"], site, f"Pour tous {needle}", tags=["incident"])
    write(base_url, people["j-pref33"], site, f"État seulement {needle}", visibility="state_services")
    for reader, expected in (
        ("j-ddets33", {f"Pour tous {needle}", f"État seulement {needle}"}),
        ("j-asso33", {f"Pour tous {needle}"}),
    ):
        rows = _journal_sheet(_export(base_url, people[reader], territoire="33"))
        assert rows[0][0] == "Journal du site"
        labels = rows[1]
        assert labels[:3] == ("Site", "Nom du site", "Écrit le")
        # a streamed sheet leaves out a row's empty cells at its end
        found = [dict(zip(labels, (*r, *[None] * (len(labels) - len(r))), strict=True)) for r in rows[2:]]
        mine = [r for r in found if needle in (r["Texte"] or "")]
        assert {r["Texte"] for r in mine} == expected, reader
        assert all(r["Site"] == site for r in mine)
        assert {r["Étiquettes"] for r in mine if r["Texte"].startswith("Pour tous")} == {"Incident"}
    # an operator of another département exports its own sites: nothing of Gironde's journal
    rows = _journal_sheet(_export(base_url, people["j-asso93"]))
    assert all(needle not in str(r) for r in rows)


def test_a_failing_filter_cannot_tell_a_message_out_of_sight_from_none(
    base_url: str, people: dict[str, Person], db: psycopg.Connection
) -> None:
    """Visibility is a policy, evaluated before the caller's filter: an expression that fails
    on the rows it meets answers the same on a site with a State-only message as on a site
    without any message."""
    quiet, other = (
        row[0]
        for row in db.execute(
            "SELECT s.id FROM resorption.sites s WHERE s.departement_code = '33' AND NOT EXISTS "
            "(SELECT 1 FROM resorption.site_comments c WHERE c.site_id = s.id) ORDER BY s.id LIMIT 2"
        ).fetchall()
    )
    write(base_url, people["j-pref33"], other, "Réservé à l'État", visibility="state_services")

    def answer(site_id: int, reader: str = "j-asso33") -> tuple[int, Any]:
        r = people[reader].session.get(
            base_url + JOURNAL,
            params={
                "filter": f"site_id = {site_id} AND visibility = 'state_services' AND id * 1e308 * 1e308 > 0"
            },
        )
        return r.status_code, r.json().get("features", r.json().get("description"))

    assert answer(other) == answer(quiet)
    assert answer(other)[0] == 200
    # the expression does fail on a message its reader sees
    assert answer(other, "j-ddets33")[0] == 400


JOURNAL_OBJECTS = """
SELECT 'table ' || relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'resorption' AND relname LIKE '%comments%' AND relkind = 'r'
UNION ALL SELECT 'function ' || proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'resorption' AND proname LIKE 'journal%'
UNION ALL SELECT 'policy ' || policyname FROM pg_policies WHERE tablename LIKE '%comments%'
UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname LIKE '%comments%'
ORDER BY 1
"""


def test_revision_0017_brings_a_database_without_the_journal_to_it(scratch_url: str) -> None:
    from resorption.migrate import upgrade

    upgrade(scratch_url, "0016")
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        built = conn.execute(JOURNAL_OBJECTS).fetchall()
        assert len(built) > 20
        # a database of before the journal: nor the activity feed that reads it (0022), nor the
        # attachments that hang on its messages (0021), nor the outbox whose triggers watch them (0027)
        conn.execute("DROP VIEW resorption.activity")
        conn.execute("DROP TABLE resorption.outbox, resorption.outbox_cursors")
        conn.execute("DROP FUNCTION resorption.record_event(), resorption.record_account_event() CASCADE")
        conn.execute(
            "DROP FUNCTION resorption.outbox_horizon(), resorption.outbox_page(xid8, xid8, bigint, integer)"
        )
        conn.execute("DROP TABLE resorption.attachments")
        conn.execute("DROP FUNCTION resorption.attachments_write_guard()")
        conn.execute(
            "DROP TABLE resorption.site_comments_history, resorption.action_comments_history, "
            "resorption.site_comments, resorption.action_comments"
        )
        for (function,) in conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'resorption' AND proname LIKE 'journal%'"
        ).fetchall():
            conn.execute(f"DROP FUNCTION {function}")
        conn.execute("DROP TYPE resorption.journal_visibility")
        assert conn.execute(JOURNAL_OBJECTS).fetchall() == []
    upgrade(scratch_url)
    upgrade(scratch_url)  # at head: nothing to do
    with psycopg.connect(scratch_url) as conn:
        assert conn.execute(JOURNAL_OBJECTS).fetchall() == built
        assert conn.execute("SELECT version_num FROM public.alembic_version").fetchone()[0] >= "0017"
