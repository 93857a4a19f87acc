"""Limits on what a client sends, checked before any parser runs.

Each check is linear and cheap (bytes methods, a regular expression, a count) and works on
the raw bytes or text; it refuses with a French message that names the limit and its value.
The parsers behind (orjson, the CQL2 library written in Rust, pygeoapi's `json.loads`)
are then only given input they handle without overflowing a stack or the memory:
`cql2.parse_text` recurses natively and kills the worker (SIGSEGV) past ~1,500 nested
brackets or ~3,400 chained operators; Python code that walks a parsed tree raises
RecursionError past ~500 levels. The values are `settings.Limits` (README « Sécurité »).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from resorption.errors import InvalidParameter, PayloadTooLarge
from resorption.settings import Limits, french_count, french_size

# Quotes and brackets, all that matters of a JSON document for its depth, as steps:
# a quote 2 (it toggles "inside a string"), an opening bracket +1, a closing one -1.
_NOT_QUOTES_OR_BRACKETS = bytes(b for b in range(256) if b not in b'"{}[]()')
_STEPS = bytes.maketrans(b'"{[(}])', b"\x02\x01\x01\x01\xff\xff\xff")
_CHUNK = 1024 * 1024  # steps summed at a time: a few MB of numpy arrays, whatever the body

# CQL2 text: string literals ('it''s') and quoted identifiers ("a b") hold no syntax. The
# closing quote is optional: an unterminated literal ends the scan instead of restarting it
# at every later quote (quadratic time); such a filter does not parse anyway.
_CQL2_QUOTED = re.compile(r"'[^']*(?:''[^']*)*'?|\"[^\"]*\"?")
# Numbers are not terms (a WKT polygon lists many; lists do not make the parser recurse);
# they are removed first so that the exponent of 1e308 is not read as a name.
_CQL2_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|(?<![\w.])\.\d+(?:[eE][+-]?\d+)?")
# Names, keywords and operators: every construct that nests without brackets has one.
_CQL2_TERM = re.compile(r"[^\W\d]\w*(?::\w+)*|<>|<=|>=|[-+*/%^=<>]")


def body_too_large(limits: Limits) -> PayloadTooLarge:
    """The 413 of a body past RESORPTION_MAX_BODY_BYTES."""
    return PayloadTooLarge(
        f"Le corps de la requête dépasse {french_size(limits.max_body_bytes)}, la taille maximale "
        "acceptée : envoyez moins de données à la fois (un import en plusieurs fichiers, par exemple)."
    )


def json_depth(data: bytes | str, maximum: int) -> int:
    """How deep objects and lists nest in a JSON document (strings skipped), counted until it
    passes `maximum`; linear and vectorised (at worst ~35 ns a byte: 32 MB of brackets, ~1 s).

    A document that is not JSON gets at least the depth a parser reaches before it fails:
    scanning and parsing agree up to the first error.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if b"\\" in raw:
        # Escapes (a run of backslashes pairs up from the left): then no quote is left inside
        # a string, and quotes alternate, opening and closing.
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    return _deepest(raw, maximum, strings=True)


def nesting(text: str, maximum: int) -> int:
    """How deep parentheses nest in `text` (strings already removed), counted until it passes
    `maximum`."""
    return _deepest(text.encode("utf-8", "surrogatepass"), maximum, strings=False)


def _deepest(raw: bytes, maximum: int, strings: bool) -> int:
    """The highest running sum of the steps of `raw`, skipping what quotes enclose."""
    steps = np.frombuffer(raw.translate(None, _NOT_QUOTES_OR_BRACKETS).translate(_STEPS), dtype=np.int8)
    depth = deepest = inside = 0
    for start in range(0, len(steps), _CHUNK):
        chunk = steps[start : start + _CHUNK]
        if strings:
            quotes = chunk == 2
            parity = (np.cumsum(quotes, dtype=np.int32) + inside) & 1  # 1 from a quote opening
            inside = int(parity[-1])
            chunk = np.where(quotes | (parity == 1), 0, chunk)
        sums = np.cumsum(chunk, dtype=np.int32)
        sums += depth
        deepest, depth = max(deepest, int(sums.max())), int(sums[-1])
        if deepest > maximum:
            break
    return max(deepest, 0)


def check_json_depth(data: bytes | str, maximum: int, what: str) -> None:
    """400 when `data` nests objects and lists more than `maximum` levels deep."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= maximum:
        return  # too few brackets to nest deeper: most bodies stop here
    if json_depth(raw, maximum) > maximum:
        raise InvalidParameter(
            f"{what} imbrique plus de {maximum} niveaux d'objets ou de listes JSON : aplatissez-le."
        )


def check_cql2_text(text: str, limits: Limits) -> None:
    """Length, NUL characters, bracket depth and terms of a CQL2 text filter, before it is parsed."""
    _check_cql2_length(text, limits)
    skeleton, literals = _CQL2_QUOTED.subn(" ", text)
    if nesting(skeleton, limits.cql2_max_depth) > limits.cql2_max_depth:
        raise InvalidParameter(
            f"Le filtre CQL2 imbrique plus de {limits.cql2_max_depth} niveaux de parenthèses : "
            "simplifiez-le."
        )
    terms = literals + len(_CQL2_TERM.findall(_CQL2_NUMBER.sub(" ", skeleton)))
    if terms > limits.cql2_max_terms:
        raise _too_many_terms(terms, limits)


def check_cql2_json(text: str, limits: Limits) -> None:
    """Length, NUL characters and nesting of a CQL2 JSON filter, before it is parsed."""
    _check_cql2_length(text, limits)
    check_json_depth(text, limits.json_max_depth, "Le filtre CQL2 JSON")


def check_cql2_tree(tree: Any, limits: Limits) -> None:
    """Nesting and terms of a parsed filter (its canonical JSON), before it is compiled.

    Operators chained without brackets (NOT NOT …, 1+1+…) nest in the tree: the compiler,
    which recurses, and PostgreSQL's own parser get at most `cql2_max_depth` levels.
    Terms bound the size of the SQL statement (a 20,000-term OR is refused here).
    """
    terms = deepest = 0
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict) and "op" in node:
            depth += 1
            stack.extend(_children(node.get("args"), depth))
        elif isinstance(node, list):
            depth += 1
            stack.extend(_children(node, depth))
        elif isinstance(node, str) and "\x00" in node:  # PostgreSQL text cannot hold it
            raise _nul_in_filter()
        # Anything else is one term: a property, a value, a date, an interval, a geometry.
        terms += 1
        deepest = max(deepest, depth)
        if deepest > limits.cql2_max_depth:
            raise InvalidParameter(
                f"Le filtre CQL2 imbrique plus de {limits.cql2_max_depth} niveaux d'expressions "
                "(opérateurs, fonctions, listes) : simplifiez-le."
            )
        if terms > limits.cql2_max_terms:
            raise _too_many_terms(terms, limits, at_least=True)


def _children(args: Any, depth: int) -> Iterable[tuple[Any, int]]:
    return ((a, depth) for a in args) if isinstance(args, list) else ((args, depth),)


def _check_cql2_length(text: str, limits: Limits) -> None:
    if len(text) > limits.cql2_max_length:
        raise InvalidParameter(
            f"Le filtre CQL2 compte {french_count(len(text))} caractères ; "
            f"{french_count(limits.cql2_max_length)} au plus : simplifiez-le ou découpez la requête."
        )
    if "\x00" in text:
        raise _nul_in_filter()


def _nul_in_filter() -> InvalidParameter:
    return InvalidParameter("Les caractères nuls (U+0000) ne sont pas permis dans un filtre CQL2.")


def _too_many_terms(terms: int, limits: Limits, at_least: bool = False) -> InvalidParameter:
    counted = f"plus de {french_count(limits.cql2_max_terms)}" if at_least else french_count(terms)
    return InvalidParameter(
        f"Le filtre CQL2 compte {counted} termes (noms, opérateurs, valeurs) ; "
        f"{french_count(limits.cql2_max_terms)} au plus : simplifiez-le ou découpez la requête."
    )
