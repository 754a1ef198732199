"""Temporal's visibility list filter, parsed: AST and parser (the tokens are in
:mod:`perdure._store._visibility_lex`).

``client.list_workflows(query)`` and ``count_workflows(query)`` take a filter in the language
Temporal's SQL visibility stores accept. This module turns one into an AST
(:func:`parse_query`), checking syntax only; :mod:`perdure._store._visibility_query` checks
the fields and their types and compiles the AST to SQL. It does no I/O.

Grammar (EBNF; keywords are case-insensitive, field names are not)::

    query      = [ or_expr ] [ order_by | group_by ] ;
    or_expr    = and_expr { "OR" and_expr } ;           (* AND binds tighter than OR *)
    and_expr   = unary { "AND" unary } ;
    unary      = "NOT" unary | "(" or_expr ")" | predicate ;
    predicate  = field ( cmp_op value
                       | [ "NOT" ] "IN" "(" value { "," value } ")"
                       | [ "NOT" ] "BETWEEN" value "AND" value
                       | [ "NOT" ] "STARTS_WITH" value
                       | "IS" [ "NOT" ] "NULL" ) ;
    cmp_op     = "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=" ;
    order_by   = "ORDER" "BY" order_term { "," order_term } ;
    order_term = field [ "ASC" | "DESC" ] ;
    group_by   = "GROUP" "BY" field ;                   (* count_workflows only *)
    field      = identifier | "`" any character but "`" "`" ;
    value      = string | number | "TRUE" | "FALSE" ;
    string     = "'" { char | "''" } "'" | '"' { char | '""' } '"' ;
    number     = [ "-" ] digits [ "." digits ] [ exponent ] ;

Limits, so that a query fails here, at once and saying which, rather than deep in Python
(recursion) or in the database (its expression depth, its number of bind parameters): at most
:data:`MAX_DEPTH` parentheses and ``NOT`` nested, :data:`MAX_CONDITIONS` conditions and
:data:`MAX_VALUES` values in a query; integers fit in 64 bits, other numbers in a double.

Examples::

    WorkflowType = 'Order' AND ExecutionStatus = 'Running' AND StartTime > '2026-01-01T00:00:00Z'
    (WorkflowId STARTS_WITH 'cart-' OR WorkflowType IN ('A', 'B')) AND CustomerTier = 'gold'
        ORDER BY StartTime DESC
    StartTime BETWEEN '2026-01-01T00:00:00Z' AND '2026-02-01T00:00:00Z'
    Amount >= 100.5 AND IsVip = true AND Tags = 'x' AND CloseTime IS NULL
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeAlias

from perdure._store._visibility_lex import Token, VisibilityQueryError, tokenize

__all__ = [
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_VALUES",
    "And",
    "Between",
    "Comparison",
    "Expr",
    "FieldRef",
    "In",
    "IsNull",
    "Not",
    "Or",
    "OrderTerm",
    "Query",
    "StartsWith",
    "Value",
    "VisibilityQueryError",
    "parse_query",
]


MAX_DEPTH = 32
"""Parentheses and ``NOT`` nested in one query, at most: as deep as SQLite's parser (before
3.46) takes the SQL they compile to, with room to spare."""
MAX_CONDITIONS = 500
"""Conditions (``field op value``, ``IN``, ``BETWEEN``...) in one query, at most: SQLite
refuses an expression more than 1,000 levels deep, and ``a OR b OR c ...`` is as deep as it
is long."""
MAX_VALUES = 10_000
"""Values in one query, at most, ``IN`` lists included. With the conditions, this keeps the
bind parameters of the compiled SQL (at most 4 a condition besides its values) well under
the databases' limit (32,767 on PostgreSQL; 32,766 in SQLite's default build)."""


# --- AST ----------------------------------------------------------------------------------
# ``pos`` is a 0-based offset into the query, kept for error messages and left out of ``==``.


def _pos() -> Any:
    return dataclasses.field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class FieldRef:
    """A field name as written (backquotes removed)."""

    name: str
    pos: int = _pos()


@dataclass(frozen=True)
class Value:
    """A literal: ``str`` for strings, ``int``/``float`` for numbers, ``bool`` for true/false."""

    value: str | int | float | bool
    pos: int = _pos()


@dataclass(frozen=True)
class Comparison:
    """``field op value``; ``op`` is one of ``= != < <= > >=`` (``<>`` is read as ``!=``)."""

    field: FieldRef
    op: str
    value: Value
    pos: int = _pos()


@dataclass(frozen=True)
class In:
    """``field [NOT] IN (values...)``."""

    field: FieldRef
    values: tuple[Value, ...]
    negated: bool = False
    pos: int = _pos()


@dataclass(frozen=True)
class Between:
    """``field [NOT] BETWEEN low AND high`` (both ends included)."""

    field: FieldRef
    low: Value
    high: Value
    negated: bool = False
    pos: int = _pos()


@dataclass(frozen=True)
class StartsWith:
    """``field [NOT] STARTS_WITH prefix``."""

    field: FieldRef
    prefix: Value
    negated: bool = False
    pos: int = _pos()


@dataclass(frozen=True)
class IsNull:
    """``field IS [NOT] NULL``: whether the field is unset (``negated``: set)."""

    field: FieldRef
    negated: bool = False
    pos: int = _pos()


@dataclass(frozen=True)
class Not:
    """``NOT operand``."""

    operand: Expr


@dataclass(frozen=True)
class And:
    """All operands hold (two or more)."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """Any operand holds (two or more)."""

    operands: tuple[Expr, ...]


Expr: TypeAlias = Comparison | In | Between | StartsWith | IsNull | Not | And | Or


@dataclass(frozen=True)
class OrderTerm:
    """One ``ORDER BY`` term."""

    field: FieldRef
    descending: bool = False


@dataclass(frozen=True)
class Query:
    """A parsed query: ``where`` is ``None`` when the query matches every run."""

    where: Expr | None
    order_by: tuple[OrderTerm, ...] = ()
    group_by: FieldRef | None = None


# --- parser -------------------------------------------------------------------------------

_CMP_OPS = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self._stream = tokenize(query)
        self.tokens: list[Token] = []  # those read so far
        self.i = 0
        self.depth = 0  # parentheses and NOTs around the token
        self.conditions = 0
        self.values = 0

    @property
    def tok(self) -> Token:
        while len(self.tokens) <= self.i:
            # Past the end of the query, its end again.
            self.tokens.append(next(self._stream, None) or self.tokens[-1])
        return self.tokens[self.i]

    def error(self, reason: str, tok: Token | None = None) -> VisibilityQueryError:
        return VisibilityQueryError(self.query, (tok or self.tok).pos, reason)

    def advance(self) -> Token:
        tok = self.tok
        self.i += 1
        return tok

    def accept(self, keyword: str) -> Token | None:
        if self.tok.kind == "keyword" and self.tok.text == keyword:
            return self.advance()
        return None

    def expect(self, keyword: str, context: str) -> Token:
        tok = self.accept(keyword)
        if tok is None:
            raise self.error(f"expected {keyword} {context}, got {self.tok.describe()}")
        return tok

    def parse(self) -> Query:
        where = None
        if self.tok.kind != "end" and not (
            self.tok.kind == "keyword" and self.tok.text in ("ORDER", "GROUP")
        ):
            where = self.or_expr()
        order_by: list[OrderTerm] = []
        group_by = None
        if self.accept("GROUP"):
            self.expect("BY", "after GROUP")
            group_by = self.field()
            if self.tok.kind == "keyword" and self.tok.text == "ORDER":
                raise self.error("GROUP BY cannot be combined with ORDER BY")
            if self.tok.kind == "punct" and self.tok.text == ",":
                raise self.error("GROUP BY takes one field")
        elif self.accept("ORDER"):
            self.expect("BY", "after ORDER")
            order_by.append(self.order_term(order_by))
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                order_by.append(self.order_term(order_by))
        if self.tok.kind != "end":
            if self.tok.kind == "punct" and self.tok.text == ")":
                raise self.error("unexpected ')' without a matching '('")
            raise self.error(
                f"unexpected {self.tok.describe()} after a complete condition; "
                "join conditions with AND or OR"
            )
        return Query(where, tuple(order_by), group_by)

    def or_expr(self) -> Expr:
        operands = [self.and_expr()]
        while self.accept("OR"):
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Expr:
        operands = [self.unary()]
        while self.accept("AND"):
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def unary(self) -> Expr:
        negation = self.tok.kind == "keyword" and self.tok.text == "NOT"
        if not negation and not (self.tok.kind == "punct" and self.tok.text == "("):
            return self.predicate()
        if self.depth == MAX_DEPTH:
            raise self.error(
                f"nested too deeply: a query takes at most {MAX_DEPTH} levels of "
                "parentheses and NOT"
            )
        self.depth += 1
        opening = self.advance()
        if negation:
            expr: Expr = Not(self.unary())
        else:
            expr = self.or_expr()
            if not (self.tok.kind == "punct" and self.tok.text == ")"):
                raise self.error(
                    f"missing ')' to close the '(' at column {opening.pos + 1}, "
                    f"got {self.tok.describe()}"
                )
            self.advance()
        self.depth -= 1
        return expr

    def field(self) -> FieldRef:
        tok = self.tok
        if tok.kind in ("word", "quoted"):
            self.advance()
            return FieldRef(tok.text, tok.pos)
        hint = f" (write `{tok.text}` for a field of that name)" if tok.kind == "keyword" else ""
        raise self.error(f"expected a field name, got {tok.describe()}{hint}")

    def value(self) -> Value:
        tok = self.tok
        if self.values == MAX_VALUES:
            raise self.error(
                f"too many values: a query takes at most {MAX_VALUES:,} (IN lists included)"
            )
        self.values += 1
        if tok.kind in ("string", "number"):
            self.advance()
            return Value(tok.value, tok.pos)
        if tok.kind == "keyword" and tok.text in ("TRUE", "FALSE"):
            self.advance()
            return Value(tok.text == "TRUE", tok.pos)
        raise self.error(
            f"expected a value (a quoted string, a number, true or false), got {tok.describe()}"
        )

    def predicate(self) -> Expr:
        if self.conditions == MAX_CONDITIONS:
            raise self.error(f"too many conditions: a query takes at most {MAX_CONDITIONS:,}")
        self.conditions += 1
        field = self.field()
        op = self.tok
        if op.kind == "op":
            self.advance()
            return Comparison(field, _CMP_OPS[op.text], self.value(), op.pos)
        if self.accept("IS"):
            negated = self.accept("NOT") is not None
            self.expect("NULL", "after IS" + (" NOT" if negated else ""))
            return IsNull(field, negated, op.pos)
        negated = self.accept("NOT") is not None
        if self.accept("IN"):
            if not (self.tok.kind == "punct" and self.tok.text == "("):
                raise self.error(f"expected '(' after IN, got {self.tok.describe()}")
            opening = self.advance()
            if self.tok.kind == "punct" and self.tok.text == ")":
                raise self.error("IN needs at least one value")
            values = [self.value()]
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                values.append(self.value())
            if not (self.tok.kind == "punct" and self.tok.text == ")"):
                raise self.error(
                    f"missing ')' to close the IN list at column {opening.pos + 1}, "
                    f"got {self.tok.describe()}"
                )
            self.advance()
            return In(field, tuple(values), negated, op.pos)
        if self.accept("BETWEEN"):
            low = self.value()
            self.expect("AND", "between the two ends of BETWEEN")
            return Between(field, low, self.value(), negated, op.pos)
        if self.accept("STARTS_WITH"):
            return StartsWith(field, self.value(), negated, op.pos)
        expected = (
            "IN, BETWEEN or STARTS_WITH"
            if negated
            else (
                "an operator (=, !=, <>, <, <=, >, >=, IN, NOT IN, BETWEEN, STARTS_WITH, IS NULL)"
            )
        )
        raise self.error(f"expected {expected} after {field.name!r}, got {self.tok.describe()}")

    def order_term(self, before: list[OrderTerm]) -> OrderTerm:
        field = self.field()
        if any(term.field.name == field.name for term in before):
            raise self.error(f"ORDER BY names {field.name} twice", self.tokens[self.i - 1])
        if self.accept("DESC"):
            return OrderTerm(field, True)
        self.accept("ASC")
        return OrderTerm(field, False)


def parse_query(query: str) -> Query:
    """Parse a visibility query into its AST, checking syntax only (not field names or types).

    Args:
        query: the filter, e.g. ``"WorkflowType = 'Order' ORDER BY StartTime DESC"``; an empty
            or blank query matches every run.

    Returns:
        The parsed query.

    Raises:
        VisibilityQueryError: the query is not in the language.

    Example::

        >>> parse_query("HistoryLength > 10").where
        Comparison(field=FieldRef(name='HistoryLength'), op='>', value=Value(value=10))
    """
    if "\x00" in query:  # no field or value holds one (refused on write, on every store)
        raise VisibilityQueryError(query, query.index("\x00"), "a NUL character")
    return _Parser(query).parse()
