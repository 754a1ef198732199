"""Temporal's visibility list filter, as tokens; and the error every stage of reading one
raises, pointing at the offending token. It does no I/O."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from perdure._errors import PerdureError

__all__ = ["Token", "VisibilityQueryError", "tokenize"]

_SHOWN = 120  # characters of the query an error shows, around the offending token


class VisibilityQueryError(PerdureError, ValueError):
    """A visibility query that cannot be parsed or does not fit the fields it names.

    The message quotes the query (a long one around the offending token only) with a caret
    under that token.

    Attributes:
        query: the query as given.
        column: 1-based column of the offending token (``len(query) + 1`` at the end).
        reason: what is wrong, without the position and the quoted query.
    """

    def __init__(self, query: str, pos: int, reason: str) -> None:
        self.query = query
        self.column = pos + 1
        self.reason = reason
        # A long query is shown around the offending token only.
        start = max(0, min(pos - _SHOWN // 2, len(query) - _SHOWN))
        shown = query[start : start + _SHOWN]
        caret = pos - start
        if start:
            shown, caret = "..." + shown, caret + 3
        if start + _SHOWN < len(query):
            shown += "..."
        shown = re.sub(r"\s", " ", shown)  # keeps the caret under the token on one line
        where = f"{shown}\n  {' ' * caret}^"
        super().__init__(f"Invalid visibility query at column {self.column}: {reason}\n  {where}")


_INT64 = (-(2**63), 2**63 - 1)

_KEYWORDS = frozenset(
    {"AND", "OR", "NOT", "IN", "BETWEEN", "STARTS_WITH", "IS", "NULL", "ORDER", "GROUP", "BY"}
    | {"ASC", "DESC", "TRUE", "FALSE"}
)
_TOKEN_RE = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<number>-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><=|>=|<>|!=|=|<|>)"
    r"|(?P<punct>[(),])"
)


@dataclass(frozen=True)
class Token:
    kind: str  # word, keyword, quoted, string, number, op, punct, end
    text: str  # as written; upper-cased for keywords
    pos: int
    value: str | int | float = ""

    def describe(self) -> str:
        return "the end of the query" if self.kind == "end" else repr(self.text)


def tokenize(query: str) -> Iterator[Token]:
    """The query's tokens, read as the parser asks for them: one past a limit fails without
    reading the rest."""
    i = 0
    while i < len(query):
        ch = query[i]
        if ch in "'\"`":
            end = i + 1
            parts: list[str] = []
            while True:
                j = query.find(ch, end)
                if j < 0:
                    what = "field name" if ch == "`" else "string"
                    raise VisibilityQueryError(
                        query, i, f"unterminated {what}: add the closing {ch}"
                    )
                parts.append(query[end:j])
                if ch != "`" and query.startswith(ch, j + 1):  # doubled quote: a literal one
                    parts.append(ch)
                    end = j + 2
                    continue
                break
            text = "".join(parts)
            yield Token("quoted" if ch == "`" else "string", text, i, text)
            i = j + 1
            continue
        m = _TOKEN_RE.match(query, i)
        if m is None:
            raise VisibilityQueryError(query, i, f"unexpected character {ch!r}")
        kind, text = m.lastgroup or "", m.group()
        if kind == "number":
            yield Token(kind, text, i, _number(query, text, i))
        elif kind == "word" and text.upper() in _KEYWORDS:
            yield Token("keyword", text.upper(), i)
        elif kind != "ws":
            yield Token(kind, text, i, text)
        i = m.end()
    yield Token("end", "", len(query))


def _number(query: str, text: str, pos: int) -> int | float:
    """The value of a number literal, refused when no database column could hold it."""
    shown = text if len(text) <= 40 else f"{text[:20]}...{text[-10:]} ({len(text)} characters)"
    if not any(c in text for c in ".eE"):
        # Python refuses to convert more than 4,300 digits; no int64 has more than 19.
        if len(text.lstrip("-").lstrip("0")) <= 19:
            number = int(text)
            if _INT64[0] <= number <= _INT64[1]:
                return number
        raise VisibilityQueryError(
            query,
            pos,
            f"integer {shown} is out of range: integers must fit in 64 bits "
            f"({_INT64[0]} to {_INT64[1]})",
        )
    value = float(text)
    if math.isinf(value):
        raise VisibilityQueryError(
            query, pos, f"number {shown} is out of range of a 64-bit float (about ±1.8e308)"
        )
    return value
