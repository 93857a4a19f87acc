"""Attachments of sites and journal messages, through the HTTP API against the real PostGIS:
types detected from the content (and refused with the reason), images without their metadata,
the size limits, who reads (exactly who reads the parent: row-level security), who adds and
deletes, the download's headers and its audit row, and revision 0021."""

from __future__ import annotations

import hashlib
import io
import secrets
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openpyxl
import psycopg
import pytest
import requests
from PIL import Image

from resorption.settings import Limits
from tests.api import body_text

GEOJSON = {"Content-Type": "application/geo+json"}
LIMITS = Limits()
ORGANISATIONS = {
    "pref33": ("Préfecture de la Gironde (pièces jointes)", "state_service", "33"),
    "asso33": ("Association girondine (pièces jointes)", "association", "33"),
    "asso93": ("Association séquano-dionysienne (pièces jointes)", "association", "93"),
}
# (username, organisation, role, département of the area)
PEOPLE = [
    ("pj-pref33", "pref33", "correspondent", "33"),
    ("pj-asso33", "asso33", "operator", "33"),
    ("pj-asso33b", "asso33", "operator", "33"),
    ("pj-asso93", "asso93", "operator", "93"),
    ("pj-admin33", "asso33", "local_admin", "33"),
    ("pj-admin93", "asso93", "local_admin", "93"),
]


@dataclass(frozen=True)
class Person:
    username: str
    session: requests.Session


@pytest.fixture(scope="module")
def people(database_url: str) -> Iterator[dict[str, Person]]:
    """Users in organisations of their own (a prefecture, associations), each with a token."""
    made: dict[str, Person] = {}
    with psycopg.connect(database_url) as conn:
        for username, org_key, role, code in PEOPLE:
            org_name, kind, org_dep = ORGANISATIONS[org_key]
            org = conn.execute(
                "INSERT INTO resorption.organisations (name, kind, departement_code) VALUES (%s, %s, %s) "
                "ON CONFLICT (name, departement_code) DO UPDATE SET kind = EXCLUDED.kind RETURNING id",
                (org_name, kind, org_dep),
            ).fetchone()[0]
            user_id = conn.execute(
                "INSERT INTO resorption.users (username, organisation_id, role, area_level, area_code) "
                "VALUES (%s, %s, %s, 'departement', %s) RETURNING id",
                (username, org, role, code),
            ).fetchone()[0]
            token = "rsp_" + secrets.token_urlsafe(32)
            conn.execute(
                "INSERT INTO resorption.api_tokens (user_id, token_hash, prefix, label, expires_at) "
                "VALUES (%s, %s, %s, 'tests', now() + interval '1 day')",
                (user_id, hashlib.sha256(token.encode()).digest(), token[:8]),
            )
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            made[username] = Person(username, session)
    yield made
    for person in made.values():
        person.session.close()


@pytest.fixture(scope="module")
def site(db: psycopg.Connection) -> int:
    """An open site of Gironde."""
    return db.execute(
        "SELECT id FROM resorption.sites WHERE departement_code = '33' AND status = 'open' "
        "ORDER BY id OFFSET 3 LIMIT 1"
    ).fetchone()[0]


# -- files of every accepted type ---------------------------------------------------------------


def _image(fmt: str, **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, fmt, **save)
    return out.getvalue()


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in members:
            method = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            z.writestr(zipfile.ZipInfo(name), content, compress_type=method)
    return out.getvalue()


def _opendocument(media_type: str) -> bytes:
    return _zip([("mimetype", media_type.encode()), ("content.xml", b"<office:document-content/>")])


def _content_types(main: str) -> bytes:
    return (
        '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Override PartName="/word/document.xml" ContentType="{main}"/></Types>'
    ).encode()


def _ooxml(main: str) -> bytes:
    return _zip([("[Content_Types].xml", _content_types(main)), ("word/document.xml", b"<w:document/>")])


def _xlsx() -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["Famille", "Personnes"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
ODT_TYPE = "application/vnd.oasis.opendocument.text"
ODS_TYPE = "application/vnd.oasis.opendocument.spreadsheet"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# name sent, content, detected type, name kept, whether the bytes come back as sent
ACCEPTED = {
    "pdf": ("arrêté préfectoral.pdf", PDF_BYTES, "application/pdf", "arrêté préfectoral.pdf", True),
    "png": ("plan.png", _image("PNG"), "image/png", "plan.png", False),
    "jpeg": ("photo.jpeg", _image("JPEG"), "image/jpeg", "photo.jpeg", False),
    "webp": ("photo.webp", _image("WEBP"), "image/webp", "photo.webp", False),
    "odt": ("compte-rendu.odt", _opendocument(ODT_TYPE), ODT_TYPE, "compte-rendu.odt", True),
    "ods": ("tableau.ods", _opendocument(ODS_TYPE), ODS_TYPE, "tableau.ods", True),
    "docx": ("rapport.docx", _ooxml(DOCX_TYPE + ".main+xml"), DOCX_TYPE, "rapport.docx", True),
    "xlsx": ("familles.xlsx", _xlsx(), XLSX_TYPE, "familles.xlsx", True),
    "txt": ("notes.txt", "Réunion du 3 mars : 12 familles.\n".encode(), "text/plain", "notes.txt", True),
    # the name lies, the content decides (and the name gets the real extension)
    "renamed": ("scan.doc", PDF_BYTES, "application/pdf", "scan.doc.pdf", True),
}


def _disposition(name: str) -> str:
    return f"attachment; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"


def upload(
    base_url: str,
    person: Person | requests.Session,
    parent: str,
    content: bytes,
    name: str = "fichier",
    content_type: str = "application/octet-stream",
) -> requests.Response:
    """POST a file on `parent` (`sites/items/12`…)."""
    session = person.session if isinstance(person, Person) else person
    return session.post(
        f"{base_url}/collections/{parent}/attachments",
        data=content,
        headers={"Content-Type": content_type, "Content-Disposition": _disposition(name)},
        timeout=60,
    )


def uploaded(base_url: str, person: Person, parent: str, content: bytes, name: str = "fichier.txt") -> int:
    r = upload(base_url, person, parent, content, name)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def message(base_url: str, person: Person, site_id: int, text: str, **properties: Any) -> int:
    r = person.session.post(
        f"{base_url}/collections/site_comments/items",
        json={
            "type": "Feature",
            "geometry": None,
            "properties": {"site_id": site_id, "message": text, **properties},
        },
        headers=GEOJSON,
    )
    assert r.status_code == 201, r.text
    return int(r.headers["Location"].rsplit("/", 1)[1])


@pytest.mark.parametrize("case", ACCEPTED)
def test_each_type_is_uploaded_listed_and_downloaded(
    base_url: str, people: dict[str, Person], site: int, case: str
) -> None:
    sent_name, content, media_type, kept_name, same_bytes = ACCEPTED[case]
    pref = people["pj-pref33"]
    # the client's type is a word, not trusted: here it lies
    r = upload(base_url, pref, f"sites/items/{site}", content, sent_name, content_type="image/gif")
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["filename"] == kept_name
    assert item["media_type"] == media_type
    assert item["uploaded_by"] == "pj-pref33"
    assert item["organisation"] == ORGANISATIONS["pref33"][0]
    assert r.headers["Location"] == item["href"] == f"{base_url}/attachments/{item['id']}"

    listed = people["pj-asso33"].session.get(f"{base_url}/collections/sites/items/{site}/attachments")
    assert listed.status_code == 200
    mine = [a for a in listed.json()["attachments"] if a["id"] == item["id"]]
    assert mine and mine[0]["filename"] == kept_name and mine[0]["size"] == item["size"]
    assert mine[0]["may_delete"] is False  # another reader

    got = people["pj-asso33"].session.get(item["href"])
    assert got.status_code == 200
    expected_type = "text/plain; charset=utf-8" if media_type == "text/plain" else media_type
    assert got.headers["Content-Type"] == expected_type
    assert got.headers["Content-Disposition"].startswith("attachment; ")
    assert got.headers["Content-Disposition"].endswith(
        f"filename*=UTF-8''{urllib.parse.quote(kept_name, safe='')}"
    )
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Cache-Control"] == "private, no-store"
    assert len(got.content) == item["size"]
    if same_bytes:
        assert got.content == content
    else:
        assert Image.open(io.BytesIO(got.content)).size == (40, 30)


def test_the_download_headers_are_exact(base_url: str, people: dict[str, Person], site: int) -> None:
    pref = people["pj-pref33"]
    key = uploaded(base_url, pref, f"sites/items/{site}", PDF_BYTES, 'Décret n°2 "final".pdf')
    got = pref.session.get(f"{base_url}/attachments/{key}")
    assert got.headers["Content-Disposition"] == (
        "attachment; filename=\"D_cret n_2 _final_.pdf\"; filename*=UTF-8''D%C3%A9cret%20n%C2%B02%20_final_.pdf"
    )
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Cache-Control"] == "private, no-store"
    assert got.headers["Content-Length"] == str(len(PDF_BYTES))


# -- refused by their content -------------------------------------------------------------------

ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(200)
PE = b"MZ\x90\x00\x03\x00\x00\x00" + bytes(200)
HTML_PAGE = b"<!DOCTYPE html><html><body><script>fetch('/collections/sites/items')</script></body></html>"
SVG_IMAGE = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
REFUSED = {
    "exe renommé en pdf": ("rapport.pdf", PE, "exécutable"),
    "elf renommé en jpg": ("photo.jpg", ELF, "exécutable"),
    "script": ("notes.txt", b"#!/bin/sh\nrm -rf /\n", "script"),
    "html renommé en txt": ("notes.txt", HTML_PAGE, "HTML"),
    "html sans doctype": ("page.png", b"\n  <html><script>x()</script></html>", "HTML"),
    "svg renommé en png": ("plan.png", SVG_IMAGE, "SVG"),
    "docm (macros)": (
        "rapport.docx",
        _ooxml("application/vnd.ms-word.document.macroEnabled.main+xml"),
        "macros",
    ),
    "vba dans un docx": (
        "rapport.docx",
        _zip(
            [("[Content_Types].xml", _content_types(DOCX_TYPE + ".main+xml")), ("word/vbaProject.bin", b"x")]
        ),
        "macros",
    ),
    "zip ordinaire": ("archive.zip", _zip([("a.txt", b"a")]), "ODT, ODS, DOCX ou XLSX"),
    "binaire inconnu": ("donnees.bin", bytes(range(256)) * 4, "non reconnu"),
    "gif": ("anim.gif", _image("GIF"), "non reconnu"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_file_is_refused_by_its_content_with_the_reason(
    base_url: str, people: dict[str, Person], site: int, case: str
) -> None:
    name, content, reason = REFUSED[case]
    r = upload(
        base_url, people["pj-pref33"], f"sites/items/{site}", content, name, content_type="application/pdf"
    )
    assert r.status_code == 415, r.text
    description = r.json()["description"]
    assert description.startswith("Fichier refusé : ")
    assert reason in description
    assert "Types acceptés" in description


def test_a_broken_image_is_refused(base_url: str, people: dict[str, Person], site: int) -> None:
    r = upload(base_url, people["pj-pref33"], f"sites/items/{site}", _image("PNG")[:60], "plan.png")
    assert r.status_code == 400, r.text
    assert "illisible ou tronquée" in r.json()["description"]


# -- images without their metadata --------------------------------------------------------------


def _photo_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Appareil des tests"  # Make
    exif[0x010E] = "Position GPS : 44.8378 N, 0.5792 W"  # ImageDescription
    exif[0x0112] = 6  # Orientation: rotate 90° to display
    exif[0x8825] = {1: "N", 2: (44.0, 50.0, 16.0), 3: "W", 4: (0.0, 34.0, 45.0)}  # GPS IFD
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="44,50.27N" '
        b'exif:GPSLongitude="0,34.75W"/></rdf:RDF></x:xmpmeta>'
    )
    out = io.BytesIO()
    Image.new("RGB", (60, 40), (10, 120, 200)).save(out, "JPEG", exif=exif.tobytes(), xmp=xmp)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_photo_comes_back_without_its_gps_position(
    base_url: str, people: dict[str, Person], site: int, fmt: str
) -> None:
    photo = _photo_with_gps()
    if fmt != "JPEG":
        original = Image.open(io.BytesIO(photo))
        out = io.BytesIO()
        original.save(out, fmt, exif=original.getexif().tobytes(), xmp=original.info.get("xmp"))
        photo = out.getvalue()
    original = Image.open(io.BytesIO(photo))
    assert original.getexif().get_ifd(0x8825), "la photo de test porte une position GPS"
    assert b"GPS" in photo
    pref = people["pj-pref33"]
    key = uploaded(base_url, pref, f"sites/items/{site}", photo, f"photo.{fmt.lower()}")
    got = pref.session.get(f"{base_url}/attachments/{key}").content
    assert b"GPS" not in got
    assert b"Appareil des tests" not in got
    assert b"xmpmeta" not in got
    clean = Image.open(io.BytesIO(got))
    assert clean.format == fmt
    assert dict(clean.getexif()) == {}
    assert not clean.getexif().get_ifd(0x8825)
    assert "icc_profile" not in clean.info and "xmp" not in clean.info
    # the orientation was applied to the pixels: the photo stays upright
    assert clean.size == (40, 60)


# -- limits -------------------------------------------------------------------------------------


def test_a_file_past_the_limit_is_refused_in_french(
    base_url: str, people: dict[str, Person], site: int
) -> None:
    big = b"a" * (LIMITS.attachment_max_bytes + 1)
    r = upload(base_url, people["pj-pref33"], f"sites/items/{site}", big, "gros.txt")
    assert r.status_code == 413
    assert r.json()["description"].startswith(
        "La pièce jointe dépasse 10 Mo, la taille maximale d'un fichier"
    )
    # chunked, without a length: read, then refused the same way
    r = people["pj-pref33"].session.post(
        f"{base_url}/collections/sites/items/{site}/attachments",
        data=iter([big[: len(big) // 2], big[len(big) // 2 :]]),
        headers={"Content-Type": "application/octet-stream", "Content-Disposition": _disposition("gros.txt")},
    )
    assert r.status_code == 413
    assert "La pièce jointe dépasse 10 Mo" in r.json()["description"]


def test_a_decompression_bomb_is_refused_from_its_header(
    base_url: str, people: dict[str, Person], site: int
) -> None:
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG")  # 100 megapixels in a few kilobytes
    assert len(out.getvalue()) < 200_000
    r = upload(base_url, people["pj-pref33"], f"sites/items/{site}", out.getvalue(), "bombe.png")
    assert r.status_code == 413, r.text
    assert "trop de pixels" in r.json()["description"]
    assert "50 000 000" in r.json()["description"].replace("\u202f", " ").replace("\xa0", " ")


def test_an_empty_file_and_forged_bodies_are_refused(
    base_url: str, people: dict[str, Person], site: int
) -> None:
    pref = people["pj-pref33"]
    path = f"sites/items/{site}"
    r = upload(base_url, pref, path, b"", "vide.txt")
    assert r.status_code == 400 and "vide" in r.json()["description"]
    # the types a form of another site can send, or none at all
    for content_type in (
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ):
        r = upload(base_url, pref, path, b"bonjour", "a.txt", content_type=content_type)
        assert r.status_code == 415, content_type
        assert "pièce jointe" in r.json()["description"]
    r = pref.session.post(
        f"{base_url}/collections/{path}/attachments", data=b"bonjour", headers={"Content-Type": ""}
    )
    assert r.status_code == 415
    # a browser's write from another site
    r = pref.session.post(
        f"{base_url}/collections/{path}/attachments",
        data=b"bonjour",
        headers={"Content-Type": "application/octet-stream", "Origin": "https://evil.example"},
    )
    assert r.status_code == 403


def test_names_are_names_not_paths(base_url: str, people: dict[str, Person], site: int) -> None:
    pref = people["pj-pref33"]
    for sent, kept in (
        ("../../etc/passwd", "passwd.txt"),
        ("C:\\Users\\agent\\notes.txt", "notes.txt"),
        ("a\r\nSet-Cookie: x=1.txt", "a_Set-Cookie: x=1.txt"),
        ("", "piece-jointe.txt"),
    ):
        r = upload(base_url, pref, f"sites/items/{site}", b"texte", sent)
        assert r.status_code == 201, r.text
        assert r.json()["filename"] == kept, sent
    r = pref.session.post(
        f"{base_url}/collections/sites/items/{site}/attachments",
        data=b"texte",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.json()["filename"] == "piece-jointe.txt"


# -- who reads ----------------------------------------------------------------------------------


def _same(a: requests.Response, b: requests.Response, *ids: tuple[int, int]) -> None:
    """Two answers alike but for the ids named in them."""
    assert a.status_code == b.status_code
    text_a, text_b = body_text(a), body_text(b)
    for left, right in ids:
        text_a, text_b = text_a.replace(str(left), "N"), text_b.replace(str(right), "N")
    assert text_a == text_b
    assert a.headers.get("Content-Type") == b.headers.get("Content-Type")


def test_outsiders_learn_nothing_of_a_site_s_files(
    base_url: str, people: dict[str, Person], site: int, anonymous: requests.Session
) -> None:
    key = uploaded(base_url, people["pj-pref33"], f"sites/items/{site}", PDF_BYTES, "arrete.pdf")
    missing_site, missing_key = 999_999_990, 999_999_991
    outsider = people["pj-asso93"].session
    hidden = outsider.get(f"{base_url}/collections/sites/items/{site}/attachments")
    absent = outsider.get(f"{base_url}/collections/sites/items/{missing_site}/attachments")
    assert hidden.status_code == 404
    _same(hidden, absent, (site, missing_site))
    hidden = outsider.get(f"{base_url}/attachments/{key}")
    absent = outsider.get(f"{base_url}/attachments/{missing_key}")
    assert hidden.status_code == 404
    _same(hidden, absent, (key, missing_key))
    # nor may they add one, or delete it
    r = upload(base_url, people["pj-asso93"], f"sites/items/{site}", PDF_BYTES, "x.pdf")
    _same(
        r,
        upload(base_url, people["pj-asso93"], f"sites/items/{missing_site}", PDF_BYTES, "x.pdf"),
        (site, missing_site),
    )
    assert r.status_code == 404
    _same(
        outsider.delete(f"{base_url}/attachments/{key}"),
        outsider.delete(f"{base_url}/attachments/{missing_key}"),
        (key, missing_key),
    )
    # anonymous: the download is a 404 as for a missing file; the list asks for credentials,
    # whatever the site
    _same(
        anonymous.get(f"/attachments/{key}"), anonymous.get(f"/attachments/{missing_key}"), (key, missing_key)
    )
    assert anonymous.get(f"/attachments/{key}").status_code == 404
    listed = anonymous.get(f"/collections/sites/items/{site}/attachments")
    assert listed.status_code == 401
    _same(listed, anonymous.get(f"/collections/sites/items/{missing_site}/attachments"))
    assert upload(base_url, anonymous, f"sites/items/{site}", PDF_BYTES, "x.pdf").status_code == 401
    # the file is still there for who may read it
    assert people["pj-asso33"].session.get(f"{base_url}/attachments/{key}").status_code == 200


def test_a_state_services_message_s_files_are_read_by_the_state_services_only(
    base_url: str, people: dict[str, Person], site: int
) -> None:
    pref, asso = people["pj-pref33"], people["pj-asso33"]
    secret = message(base_url, pref, site, "Réunion en préfecture", visibility="state_services")
    key = uploaded(base_url, pref, f"site_comments/items/{secret}", PDF_BYTES, "calendrier.pdf")
    listed = pref.session.get(f"{base_url}/collections/site_comments/items/{secret}/attachments")
    assert [a["id"] for a in listed.json()["attachments"]] == [key]
    assert pref.session.get(f"{base_url}/attachments/{key}").status_code == 200
    missing = 999_999_992
    for outsider in (asso, people["pj-asso93"]):
        hidden = outsider.session.get(f"{base_url}/collections/site_comments/items/{secret}/attachments")
        absent = outsider.session.get(f"{base_url}/collections/site_comments/items/{missing}/attachments")
        assert hidden.status_code == 404
        _same(hidden, absent, (secret, missing))
        _same(
            outsider.session.get(f"{base_url}/attachments/{key}"),
            outsider.session.get(f"{base_url}/attachments/{missing}"),
            (key, missing),
        )
    # the site's own list does not show a message's files
    on_site = asso.session.get(f"{base_url}/collections/sites/items/{site}/attachments").json()["attachments"]
    assert key not in [a["id"] for a in on_site]


def test_a_moderated_message_s_files_leave_with_it(
    base_url: str, people: dict[str, Person], site: int
) -> None:
    author, reader, admin = people["pj-asso33"], people["pj-asso33b"], people["pj-admin33"]
    key_message = message(base_url, author, site, "Photo du campement")
    key = uploaded(base_url, author, f"site_comments/items/{key_message}", _image("PNG"), "camp.png")
    assert reader.session.get(f"{base_url}/attachments/{key}").status_code == 200
    r = admin.session.patch(
        f"{base_url}/collections/site_comments/items/{key_message}",
        json={"properties": {"hidden": True, "hidden_reason": "Visages reconnaissables"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 204, r.text
    assert reader.session.get(f"{base_url}/attachments/{key}").status_code == 404
    assert author.session.get(f"{base_url}/attachments/{key}").status_code == 200
    assert admin.session.get(f"{base_url}/attachments/{key}").status_code == 200


def test_every_download_is_audited(
    base_url: str, people: dict[str, Person], site: int, db: psycopg.Connection
) -> None:
    key = uploaded(base_url, people["pj-pref33"], f"sites/items/{site}", PDF_BYTES, "audit.pdf")
    for _ in range(2):
        assert people["pj-asso33"].session.get(f"{base_url}/attachments/{key}").status_code == 200
    people["pj-asso93"].session.get(f"{base_url}/attachments/{key}")  # refused: nothing read
    rows = db.execute(
        "SELECT username, action, path, detail FROM resorption.audit_log "
        "WHERE collection = 'attachments' AND item_id = %s ORDER BY id",
        (str(key),),
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        ("pj-pref33", "upload-attachment"),
        ("pj-asso33", "download-attachment"),
        ("pj-asso33", "download-attachment"),
    ]
    assert rows[1][2] == f"/attachments/{key}"
    assert rows[1][3] == {
        "parent": "sites",
        "parent_id": site,
        "media_type": "application/pdf",
        "size": len(PDF_BYTES),
    }


# -- who adds, who deletes ----------------------------------------------------------------------


def test_who_may_add_a_file(
    base_url: str, people: dict[str, Person], site: int, db: psycopg.Connection
) -> None:
    asso, other = people["pj-asso33"], people["pj-asso33b"]
    # an operator without the option does not edit the site: no file on it
    r = upload(base_url, asso, f"sites/items/{site}", PDF_BYTES, "x.pdf")
    assert r.status_code == 403
    assert "journal" in r.json()["description"]
    # …but on its own message, yes; not on someone else's
    mine = message(base_url, asso, site, "Rapport de visite")
    assert upload(base_url, asso, f"site_comments/items/{mine}", PDF_BYTES, "rapport.pdf").status_code == 201
    r = upload(base_url, other, f"site_comments/items/{mine}", PDF_BYTES, "rapport.pdf")
    assert r.status_code == 403
    assert "auteur" in r.json()["description"]
    # past the journal's edit delay, not any more
    db.execute("ALTER TABLE resorption.site_comments DISABLE TRIGGER USER")
    try:
        db.execute(
            "UPDATE resorption.site_comments SET created_at = now() - interval '25 hours' WHERE id = %s",
            (mine,),
        )
    finally:
        db.execute("ALTER TABLE resorption.site_comments ENABLE TRIGGER USER")
    assert upload(base_url, asso, f"site_comments/items/{mine}", PDF_BYTES, "tard.pdf").status_code == 403
    # an unknown parent collection or id is no address
    assert upload(base_url, asso, "regions/items/75", PDF_BYTES, "x.pdf").status_code == 404
    assert upload(base_url, asso, f"sites/items/{site}x", PDF_BYTES, "x.pdf").status_code == 404


def test_an_action_message_takes_files(
    base_url: str, people: dict[str, Person], db: psycopg.Connection
) -> None:
    action = db.execute(
        "SELECT id FROM resorption.actions WHERE departement_code = '33' ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    pref = people["pj-pref33"]
    r = pref.session.post(
        f"{base_url}/collections/action_comments/items",
        json={
            "type": "Feature",
            "geometry": None,
            "properties": {"action_id": action, "message": "Bilan annuel"},
        },
        headers=GEOJSON,
    )
    assert r.status_code == 201, r.text
    key_message = int(r.headers["Location"].rsplit("/", 1)[1])
    key = uploaded(base_url, pref, f"action_comments/items/{key_message}", _xlsx(), "bilan.xlsx")
    listed = people["pj-asso33"].session.get(
        f"{base_url}/collections/action_comments/items/{key_message}/attachments"
    )
    assert [a["id"] for a in listed.json()["attachments"]] == [key]
    assert people["pj-asso93"].session.get(f"{base_url}/attachments/{key}").status_code == 404


def test_who_may_delete_a_file(
    base_url: str, people: dict[str, Person], site: int, db: psycopg.Connection
) -> None:
    asso, other, admin = people["pj-asso33"], people["pj-asso33b"], people["pj-admin33"]
    mine = message(base_url, asso, site, "Photos")
    first = uploaded(base_url, asso, f"site_comments/items/{mine}", PDF_BYTES, "a.pdf")
    second = uploaded(base_url, asso, f"site_comments/items/{mine}", PDF_BYTES, "b.pdf")
    third = uploaded(base_url, asso, f"site_comments/items/{mine}", PDF_BYTES, "c.pdf")
    listed = asso.session.get(f"{base_url}/collections/site_comments/items/{mine}/attachments").json()[
        "attachments"
    ]
    assert [a["may_delete"] for a in listed] == [True, True, True]
    # another reader may not
    r = other.session.delete(f"{base_url}/attachments/{first}")
    assert r.status_code == 403
    assert "administrateurs" in r.json()["description"]
    # the uploader, within the delay
    assert asso.session.delete(f"{base_url}/attachments/{first}").status_code == 204
    assert asso.session.get(f"{base_url}/attachments/{first}").status_code == 404
    # past the delay, not any more; a moderator of the territory still may, not one of elsewhere
    db.execute(
        "UPDATE resorption.attachments SET created_at = now() - interval '25 hours' WHERE id IN (%s, %s)",
        (second, third),
    )
    assert asso.session.delete(f"{base_url}/attachments/{second}").status_code == 403
    # (a local administrator reads every site, but moderates its territory only)
    assert people["pj-admin93"].session.delete(f"{base_url}/attachments/{second}").status_code == 403
    assert admin.session.delete(f"{base_url}/attachments/{second}").status_code == 204
    # a deleted message takes its files along
    fresh = message(base_url, asso, site, "À supprimer")
    gone = uploaded(base_url, asso, f"site_comments/items/{fresh}", PDF_BYTES, "d.pdf")
    assert asso.session.delete(f"{base_url}/collections/site_comments/items/{fresh}").status_code == 204
    assert db.execute("SELECT count(*) FROM resorption.attachments WHERE id = %s", (gone,)).fetchone()[0] == 0
    audited = db.execute(
        "SELECT username FROM resorption.audit_log WHERE action = 'delete-attachment' AND item_id = %s",
        (str(second),),
    ).fetchall()
    assert audited == [("pj-admin33",)]


# -- revision 0021 ------------------------------------------------------------------------------

OBJECTS = """
SELECT 'table ' || relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'resorption' AND relname LIKE 'attachments%'
UNION ALL SELECT 'function ' || proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'resorption' AND proname LIKE 'attachments%'
UNION ALL SELECT 'policy ' || policyname FROM pg_policies WHERE tablename = 'attachments'
UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname LIKE 'attachments%'
UNION ALL SELECT 'constraint ' || conname FROM pg_constraint WHERE conname LIKE 'attachments%'
ORDER BY 1
"""


def test_revision_0021_brings_a_database_without_attachments_to_them(scratch_url: str) -> None:
    from resorption.migrate import upgrade

    upgrade(scratch_url, "0020")
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        built = conn.execute(OBJECTS).fetchall()
        assert len(built) > 8
        conn.execute("DROP TABLE resorption.attachments")
        conn.execute("DROP FUNCTION resorption.attachments_write_guard()")
        assert conn.execute(OBJECTS).fetchall() == []
    upgrade(scratch_url)
    upgrade(scratch_url)  # at head: nothing to do
    with psycopg.connect(scratch_url) as conn:
        assert conn.execute(OBJECTS).fetchall() == built


# -- the site sheet of /carte, in a real browser ---------------------------------------------


@pytest.fixture
def sheet_site(base_url: str, users: dict, database_url: str) -> Iterator[str]:
    """An open site in Bordeaux, without files or messages, removed as the owner afterwards."""
    from tests.api import BORDEAUX
    from tests.test_webmap import As

    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(BORDEAUX)},
        "properties": {"name": "Site des pièces jointes", "declared_at": "2024-03-01", "population_total": 9},
    }
    r = As(base_url, users["correspondent-departement-33"]).post("/collections/sites/items", json=feature)
    assert r.status_code == 201, r.text
    site_id = r.headers["Location"].rsplit("/", 1)[1]
    yield site_id
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM resorption.sites WHERE id = %s", (int(site_id),))


def test_the_sheet_lists_and_uploads_files(
    pages: Any,
    base_url: str,
    users: dict,
    screenshot: Any,
    sheet_site: str,
    tmp_path: Any,
    db: psycopg.Connection,
) -> None:
    from playwright.sync_api import expect

    from tests.test_webmap import open_sheet, sign_in

    photo = tmp_path / "campement été.jpg"
    photo.write_bytes(_photo_with_gps())
    page_html = tmp_path / "rapport.pdf"
    page_html.write_bytes(HTML_PAGE)
    report = tmp_path / "compte-rendu.pdf"
    report.write_bytes(PDF_BYTES)

    author = users["correspondent-departement-33"]
    page = sign_in(pages, author)
    open_sheet(page, sheet_site)
    files = page.locator("#fiche .fiche-pieces-jointes")
    expect(files.locator(".fiche-sans-pj")).to_have_text("Aucune pièce jointe.")

    # an HTML page named .pdf: refused by its content, and the sheet says why
    files.get_by_label("Joindre un fichier au site").set_input_files(str(page_html))
    files.get_by_role("button", name="Joindre", exact=True).click()
    expect(page.locator("#fiche .fiche-message")).to_contain_text("page HTML")

    files = page.locator("#fiche .fiche-pieces-jointes")
    files.get_by_label("Joindre un fichier au site").set_input_files(str(photo))
    files.get_by_role("button", name="Joindre", exact=True).click()
    expect(page.locator("#fiche .fiche-message")).to_have_text("Pièce jointe ajoutée.")
    listed = page.locator("#fiche .fiche-pieces-jointes .fiche-pj")
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text("campement été.jpg")
    expect(listed.first).to_contain_text("image JPEG")
    expect(listed.first).to_contain_text(author.username)

    # a message with its report, shown under the message
    journal = page.locator("#fiche .fiche-journal")
    journal.get_by_label("Nouveau message").fill("Compte rendu de la réunion de quartier.")
    journal.get_by_label("Pièce jointe (facultatif)").set_input_files(str(report))
    journal.get_by_role("button", name="Publier le message").click()
    expect(page.locator("#fiche .fiche-message")).to_have_text("Message publié avec sa pièce jointe.")
    in_message = page.locator("#fiche .fiche-journal-message .fiche-pj")
    expect(in_message).to_have_count(1)
    expect(in_message.first).to_contain_text("compte-rendu.pdf")
    in_message.first.scroll_into_view_if_needed()
    screenshot(page, "message-piece-jointe")

    # the link downloads the photo, without its position
    with page.expect_download() as waiting:
        page.locator("#fiche .fiche-pieces-jointes .fiche-pj a").first.click()
    download = waiting.value
    assert download.suggested_filename == "campement été.jpg"
    saved = download.path().read_bytes()
    assert b"GPS" not in saved and Image.open(io.BytesIO(saved)).getexif().get_ifd(0x8825) == {}
    page.locator("#fiche .fiche-pieces-jointes").scroll_into_view_if_needed()
    screenshot(page, "fiche-pieces-jointes")
    # the refused HTML page is the only console error (its 415)
    assert len(pages.console_errors) == 1 and "415" in pages.console_errors[0]

    # a reader who may not edit the site sees the files, without the upload form
    reader = sign_in(pages, users["operator-departement-33"])
    open_sheet(reader, sheet_site)
    expect(reader.locator("#fiche .fiche-pieces-jointes .fiche-pj")).to_have_count(1)
    expect(reader.locator("#fiche .fiche-pj-form")).to_have_count(0)
    expect(reader.locator("#fiche .fiche-journal-message .fiche-pj")).to_have_count(1)
    expect(reader.locator('#fiche [data-action="supprimer-pj"]')).to_have_count(0)

    # the uploader deletes the photo from the sheet
    page.locator('#fiche .fiche-pieces-jointes [data-action="supprimer-pj"]').click()
    expect(page.locator("#fiche .fiche-message")).to_have_text("Pièce jointe supprimée.")
    expect(page.locator("#fiche .fiche-pieces-jointes .fiche-sans-pj")).to_have_text("Aucune pièce jointe.")


def test_a_file_full_of_brackets_is_no_json(base_url: str, people: dict[str, Person], site: int) -> None:
    """The JSON depth check of bodies does not apply to a file (a PNG's bytes hold many `[`)."""
    content = ("[" * 5000 + " notes\n").encode()
    r = upload(
        base_url, people["pj-pref33"], f"sites/items/{site}", content, "crochets.txt", "application/json"
    )
    assert r.status_code == 201, r.text
    assert people["pj-pref33"].session.get(r.json()["href"]).content == content
