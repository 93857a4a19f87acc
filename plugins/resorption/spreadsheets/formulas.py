"""Text cells a spreadsheet would run as formulas ("CSV injection"), made inert.

A site named `=HYPERLINK("http://x","y")` must reach Excel or LibreOffice as text, never
as a live formula (that link, or `=WEBSERVICE(…)`, could send the sheet's data anywhere).
Every writer of a spreadsheet or CSV file (exports, `f=csv`, the dashboard's CSV) passes
each cell through `inert`: text starting with a formula character gets the leading
apostrophe OWASP recommends, which both spreadsheets show as text. Only text is touched:
numbers stay numbers (a negative number is not text), dates stay dates. The import takes
the apostrophe off again (`revert`), so an export re-imported changes nothing.
"""

from __future__ import annotations

from typing import Any

# What a spreadsheet may read as the start of a formula (OWASP "CSV Injection"): = + - @,
# and a tab or a carriage return, which some spreadsheets skip before one of those.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def inert(value: Any) -> Any:
    """`value` as a cell no spreadsheet evaluates: formula-like text gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return QUOTE + value
    return value


def revert(text: str) -> str:
    """The text `inert` was given: its apostrophe taken off (for the import of our own exports)."""
    if text.startswith(QUOTE) and text[1:].startswith(FORMULA_PREFIXES):
        return text[1:]
    return text
