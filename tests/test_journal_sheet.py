"""The journal in the site sheet of /carte, in a real browser (Chromium): the messages the
user may read, newest first, with author, organisation, date, tags and visibility; a form
that writes through the API (server-validated, the page's CSRF token, no inline script)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import expect

from tests.api import BORDEAUX
from tests.fix_browser import Pages
from tests.fix_users import TestUser
from tests.test_webmap import As, Screenshot, open_sheet, sign_in


@pytest.fixture
def quiet_site(base_url: str, users: dict[str, TestUser], database_url: str) -> Iterator[str]:
    """An open site in Bordeaux with an empty journal, removed as the owner afterwards."""
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(BORDEAUX)},
        "properties": {"name": "Site du journal", "declared_at": "2024-03-01", "population_total": 12},
    }
    r = As(base_url, users["correspondent-departement-33"]).post("/collections/sites/items", json=feature)
    assert r.status_code == 201, r.text
    site_id = r.headers["Location"].rsplit("/", 1)[1]
    yield site_id
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM resorption.sites WHERE id = %s", (int(site_id),))


def test_write_and_read_the_journal_in_the_sheet(
    pages: Pages, base_url: str, users: dict[str, TestUser], screenshot: Screenshot, quiet_site: str
) -> None:
    author = users["correspondent-departement-33"]
    page = sign_in(pages, author)
    open_sheet(page, quiet_site)
    journal = page.locator("#fiche .fiche-journal")
    expect(journal.locator(".fiche-journal-vide")).to_have_text("Aucun message pour le moment.")

    # an empty message: the server refuses it and says why
    journal.get_by_role("button", name="Publier le message").click()
    expect(page.locator("#fiche .fiche-message")).to_contain_text("le texte du message est obligatoire")

    journal.get_by_label("Nouveau message").fill("Passage de l'équipe de santé : trois enfants vaccinés.")
    journal.get_by_label("Santé").check()
    journal.get_by_role("button", name="Publier le message").click()
    expect(page.locator("#fiche .fiche-message")).to_have_text("Message publié dans le journal.")

    journal = page.locator("#fiche .fiche-journal")
    journal.get_by_label("Nouveau message").fill("Réunion préfecture : calendrier de l'évacuation.")
    journal.get_by_label("Évacuation").check()
    journal.get_by_label("Visible par").select_option("state_services")
    journal.get_by_role("button", name="Publier le message").click()
    expect(page.locator("#fiche .fiche-message")).to_have_text("Message publié dans le journal.")

    messages = page.locator("#fiche .fiche-journal-message")
    expect(messages).to_have_count(2)
    # newest first, with author, date, tags and visibility
    expect(messages.nth(0)).to_contain_text("Réunion préfecture")
    expect(messages.nth(0)).to_contain_text("Visible par : Services de l'État du territoire")
    expect(messages.nth(0)).to_contain_text("Évacuation")
    expect(messages.nth(1)).to_contain_text("Passage de l'équipe de santé")
    expect(messages.nth(1)).to_contain_text(author.username)
    expect(messages.nth(1)).to_contain_text("Organisation des tests")
    expect(messages.nth(1)).to_contain_text("Santé")
    expect(messages.nth(1)).to_contain_text("Visible par : Tous les lecteurs du site")
    page.locator("#fiche .fiche-journal").scroll_into_view_if_needed()
    screenshot(page, "fiche-journal")
    # the only console error is the refused empty message
    assert len(pages.console_errors) == 1 and "400" in pages.console_errors[0]

    # an operator of the same département, not of a State service, reads the first one only
    reader = sign_in(pages, users["operator-departement-33"])
    open_sheet(reader, quiet_site)
    seen = reader.locator("#fiche .fiche-journal-message")
    expect(seen).to_have_count(1)
    expect(seen.first).to_contain_text("Passage de l'équipe de santé")
    assert len(pages.console_errors) == 1
