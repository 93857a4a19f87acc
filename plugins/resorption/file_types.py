"""What a file is, from its bytes: the types an attachment may have, and why others are refused.

The client's `Content-Type` and the file's name say nothing we trust: a page saved as
`rapport.pdf` is still a page. The first bytes ("magic numbers") and, for the zip-based
office documents, the archive's own declaration of its content decide:

- PDF (`%PDF-`), PNG, JPEG, WebP (`RIFF….WEBP`): the documents and photos of a site;
- ODT and ODS (a zip whose first member `mimetype` names the OpenDocument type) and DOCX and
  XLSX (a zip whose `[Content_Types].xml` declares the main part of a Word document or an
  Excel workbook): reports and tables. Only that one small member is read: the archive is
  never decompressed (no zip bomb), and a member larger than `MANIFEST_MAX_BYTES` refuses it;
- plain text in UTF-8 (no NUL, no control character but tab, line and page breaks).

Refused, and the message says why: HTML, XML and SVG (a browser runs their scripts: an SVG
image is a document with `<script>`), executables and scripts (`MZ`, ELF, Mach-O, `#!`),
office documents with macros (their main part is declared `macroEnabled`, or they carry a
`vbaProject.bin`), other archives, and anything not recognised.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass

from resorption.errors import UnsupportedMediaType


@dataclass(frozen=True, slots=True)
class FileType:
    """An accepted type: its media type, its usual extensions, its French name."""

    media_type: str
    extensions: tuple[str, ...]
    label: str
    image: bool = False


PDF = FileType("application/pdf", (".pdf",), "PDF")
PNG = FileType("image/png", (".png",), "image PNG", image=True)
JPEG = FileType("image/jpeg", (".jpg", ".jpeg"), "image JPEG", image=True)
WEBP = FileType("image/webp", (".webp",), "image WebP", image=True)
ODT = FileType("application/vnd.oasis.opendocument.text", (".odt",), "texte OpenDocument (ODT)")
ODS = FileType("application/vnd.oasis.opendocument.spreadsheet", (".ods",), "tableur OpenDocument (ODS)")
DOCX = FileType(
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    (".docx",),
    "document Word (DOCX)",
)
XLSX = FileType(
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",), "classeur Excel (XLSX)"
)
TEXT = FileType("text/plain", (".txt",), "texte brut")
ACCEPTED = (PDF, PNG, JPEG, WEBP, ODT, ODS, DOCX, XLSX, TEXT)
BY_MEDIA_TYPE = {t.media_type: t for t in ACCEPTED}
ACCEPTED_SAID = "PDF, PNG, JPEG, WebP, ODT, ODS, DOCX, XLSX ou texte brut (UTF-8)"

# The zip-based documents: what their manifest must say.
OPENDOCUMENT = {ODT.media_type.encode(): ODT, ODS.media_type.encode(): ODS}
OOXML_MAIN_PARTS = {
    b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": DOCX,
    b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": XLSX,
}
# A manifest is a few kilobytes; the archive's directory, a few hundred members.
MANIFEST_MAX_BYTES = 256 * 1024
ZIP_MAX_MEMBERS = 10_000
# Markup a browser would render (and whose scripts it would run), after a BOM and blanks.
MARKUP = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<", re.DOTALL)
SVG = re.compile(rb"<svg[\s>]", re.IGNORECASE)
HTML = re.compile(rb"<(?:!doctype\s+html|html|head|body|script|iframe)[\s>]", re.IGNORECASE)
# Control characters that plain text does not hold (tab, LF, FF and CR are fine).
CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# How much of a file the text checks look at first (markup is decided by its start).
HEAD_BYTES = 4096


def refused(why: str) -> UnsupportedMediaType:
    """The 415 of a file we do not keep, saying why and what is accepted."""
    return UnsupportedMediaType(
        f"Fichier refusé : {why}. Types acceptés (reconnus par leur contenu, pas par le nom du "
        f"fichier) : {ACCEPTED_SAID}."
    )


def detect(data: bytes) -> FileType:
    """The type of `data`, from its content; 415 with the reason when it is not accepted."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data.startswith(b"PK\x03\x04"):
        return _office_document(data)
    if data.startswith(b"MZ") or data.startswith(b"\x7fELF") or data[:4] in MACH_O:
        raise refused("c'est un programme exécutable")
    if data.startswith(b"#!"):
        raise refused("c'est un script exécutable (#!)")
    head = data[:HEAD_BYTES]
    if MARKUP.match(head) or HTML.search(head):
        if SVG.search(head):
            raise refused(
                "une image SVG peut contenir des scripts qu'un navigateur exécuterait ; envoyez-la en PNG"
            )
        raise refused(
            "c'est une page HTML ou un document XML, qu'un navigateur afficherait avec ses scripts ; "
            "envoyez-le en PDF"
        )
    if _is_text(data):
        return TEXT
    raise refused("type de fichier non reconnu")


# The magic numbers of Mach-O executables (32 and 64 bits, both byte orders, universal).
MACH_O = {
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
}


def _is_text(data: bytes) -> bool:
    if CONTROL.search(data):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _office_document(data: bytes) -> FileType:
    """ODT, ODS, DOCX or XLSX from the archive's manifest, reading that member only."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise refused("archive ZIP illisible") from None
    if len(members) > ZIP_MAX_MEMBERS:
        raise refused(f"archive de plus de {ZIP_MAX_MEMBERS} fichiers")
    names = {m.filename: m for m in members}
    if any(name.lower().endswith("vbaproject.bin") for name in names):
        raise refused("document bureautique avec des macros (code exécutable)")
    kind: FileType | None = None
    if members and members[0].filename == "mimetype":
        kind = OPENDOCUMENT.get(_member(archive, members[0]).strip())
    elif "[Content_Types].xml" in names:
        manifest = _member(archive, names["[Content_Types].xml"])
        if b"macroEnabled" in manifest:
            raise refused("document bureautique avec des macros (code exécutable)")
        kinds = {t for part, t in OOXML_MAIN_PARTS.items() if part in manifest}
        kind = kinds.pop() if len(kinds) == 1 else None
    if kind is None:
        raise refused("archive ZIP qui n'est pas un document ODT, ODS, DOCX ou XLSX")
    return kind


def _member(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    """One small member of the archive (its announced and real size both bounded)."""
    if member.file_size > MANIFEST_MAX_BYTES or member.flag_bits & 0x1:  # too big, or encrypted
        raise refused("archive ZIP dont le manifeste est illisible")
    try:
        with archive.open(member) as stream:
            content = stream.read(MANIFEST_MAX_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, ValueError, OSError, EOFError):
        raise refused("archive ZIP dont le manifeste est illisible") from None
    if len(content) > MANIFEST_MAX_BYTES:
        raise refused("archive ZIP dont le manifeste est illisible")
    return content
