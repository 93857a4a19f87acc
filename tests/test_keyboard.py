"""Keyboard only: sign in, filter the map, open a site's sheet from the list view, submit a form.

No click and no `fill` here: the test moves with Tab and Shift+Tab, acts with Enter or Space
and types text, as someone who cannot use a mouse would (RGAA 7.3, WCAG 2.1.1). It also
checks that the sheet takes the focus when it opens (WCAG 2.4.3): the next Tab is inside it.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.fix_browser import Pages
from tests.fix_users import TestUser
from tests.test_journal_sheet import quiet_site  # noqa: F401  (fixture)
from tests.test_site_forms import wait_map

MAX_TABS = 200


def tab_to(page: Page, selector: str, key: str = "Tab") -> None:
    """Press Tab (or Shift+Tab) until the focused element matches `selector` (fails if it never does)."""
    seen = []
    for _ in range(MAX_TABS):
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press(key)
        seen.append(
            page.evaluate(
                "() => { const e = document.activeElement; return e ? `${e.tagName}#${e.id}.${e.className}` : ''; }"
            )
        )
    raise AssertionError(f"{selector} jamais atteint au clavier en {MAX_TABS} tabulations : {seen[:60]}")


def test_sign_in_filter_open_a_sheet_and_write_with_the_keyboard_only(
    pages: Pages,
    users: dict[str, TestUser],
    quiet_site: str,  # noqa: F811  (the fixture imported above)
    screenshot,
) -> None:
    user = users["correspondent-departement-33"]
    page = pages.open()
    page.goto("/connexion?suivant=/carte")
    # The identifier field has the focus (autofocus); Tab goes to the password; Enter sends.
    tab_to(page, "#identifiant")
    page.keyboard.type(user.username)
    page.keyboard.press("Tab")
    page.keyboard.type(user.token)
    page.keyboard.press("Enter")
    page.wait_for_url("**/carte")
    wait_map(page)
    before = page.locator("#compte").get_attribute("data-count")

    # Filter: « Existant » is ticked by default; Space unticks it, every status shows.
    existing = "#filtres input[name=status][value=open]"
    tab_to(page, existing)
    page.keyboard.press("Space")
    expect(page.locator(existing)).not_to_be_checked()
    page.wait_for_function(
        "before => { const c = document.querySelector('#compte').dataset.count; return c !== undefined && c !== before; }",
        arg=before,
    )
    assert int(page.locator("#compte").get_attribute("data-count") or 0) > int(before or 0)

    # Words of its name (the search field comes first: back with Shift+Tab): that one site stays.
    tab_to(page, "#filtre-q", "Shift+Tab")
    page.keyboard.type("Site du journal")
    expect(page.locator("#compte")).to_have_attribute("data-count", "1")

    # The list view, then the site's line: Enter opens its sheet, which takes the focus.
    tab_to(page, "#vue-liste")
    page.keyboard.press("Enter")
    expect(page.locator("#carte-liste table")).to_be_visible()
    tab_to(page, f'#carte-liste button[data-site-id="{quiet_site}"]')
    screenshot(page, "liste")
    page.keyboard.press("Enter")
    expect(page.locator("#fiche .fiche")).to_have_attribute("data-site-id", quiet_site)
    expect(page.locator("#fiche")).to_be_focused()

    # A form of the sheet: a journal message, typed and sent with Enter on its button.
    tab_to(page, f"#journal-message-{quiet_site}")
    page.keyboard.type("Écrit au clavier : visite de l'équipe de médiation.")
    tab_to(page, "#fiche .fiche-journal-form button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator("#fiche .fiche-message")).to_have_text("Message publié dans le journal.")
    expect(page.locator("#fiche .fiche-journal-message").first).to_contain_text("Écrit au clavier")
    screenshot(page, "message-publie")
