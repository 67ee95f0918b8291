"""Filter and order-by strings of ``search_runs``: a tokenizer and a recursive-descent parser.

A filter is one or more comparisons joined by ``AND``::

    metrics.auc > 0.8 and params.max_depth = '5' and tags.team = 'x' and status = 'FINISHED'

Grammar (keywords are case-insensitive)::

    filter     := comparison ("AND" comparison)*
    comparison := field operator value
    field      := ("metrics" | "params" | "tags") "." key | attribute
    key        := name | `quoted key` | "quoted key"
    operator   := "=" | "!=" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE" | "IN" | "NOT IN"
    value      := number | 'string' | "string" | "(" value ("," value)* ")"

Metrics compare with numbers. Params, tags and the ``name`` and ``run_id``
attributes compare with strings (``=``, ``!=``, ``LIKE``, ``ILIKE``, ``IN``,
``NOT IN``), so ``run_id LIKE '787d196b%'`` finds a run by id prefix.
``start_time`` and ``end_time`` compare with epoch milliseconds. ``status``
and ``experiment_id`` compare with strings by ``=``, ``!=``, ``IN`` and
``NOT IN``. ``OR`` is not supported. An invalid string raises
``InvalidInputError`` naming the position (0-based character offset) and the token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from manara.errors import InvalidInputError

FieldKind = Literal["metric", "param", "tag", "attribute"]
Value = float | str | tuple[float | str, ...]

_KIND_PREFIXES: dict[str, FieldKind] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
}
_KIND_NAMES: dict[FieldKind, str] = {
    "metric": "metrics",
    "param": "params",
    "tag": "tags",
    "attribute": "attributes",
}
ATTRIBUTE_ALIASES: dict[str, str] = {
    "status": "status",
    "name": "name",
    "run_name": "name",
    "start_time": "start_time",
    "end_time": "end_time",
    "run_id": "run_id",
    "id": "run_id",
    "experiment_id": "experiment_id",
}
_NUMBER_OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_STRING_OPERATORS = frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"})
_EXACT_OPERATORS = frozenset({"=", "!=", "IN", "NOT IN"})
_NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
_STRING_ATTRIBUTES = frozenset({"name", "run_id"})

_TOKEN_PATTERN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_]))
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<backtick>`[^`]*`)
  | (?P<operator><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z_][A-Za-z0-9_\-/:]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    position: int


@dataclass(frozen=True)
class Comparison:
    kind: FieldKind
    key: str
    """Metric, param or tag key, or the canonical attribute name."""
    operator: str
    value: Value


@dataclass(frozen=True)
class OrderBy:
    kind: FieldKind
    key: str
    ascending: bool = True


def _error(text: str, token: Token | None, expected: str) -> InvalidInputError:
    if token is None:
        return InvalidInputError(
            f"Invalid search string {text!r} at position {len(text)}: it ends where "
            f"{expected} was expected.",
            position=len(text),
        )
    return InvalidInputError(
        f"Invalid search string {text!r} at position {token.position}: unexpected token "
        f"{token.text!r}; expected {expected}.",
        position=token.position,
        token=token.text,
    )


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN_PATTERN.match(text, position)
        if match is None or match.end() == position:
            raise InvalidInputError(
                f"Invalid search string {text!r} at position {position}: unexpected character "
                f"{text[position]!r}. Quote string values with single quotes.",
                position=position,
                token=text[position],
            )
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


def _unquote(token: Token) -> str:
    body = token.text[1:-1]
    if token.kind == "backtick":
        return body
    return re.sub(r"\\(.)", r"\1", body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def next(self, expected: str) -> Token:
        token = self.peek()
        if token is None:
            raise _error(self.text, None, expected)
        self.index += 1
        return token

    def at_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.upper() == word

    def field(self) -> tuple[FieldKind, str, Token]:
        token = self.next("a field such as metrics.auc, params.x, tags.y or status")
        if token.kind in ("backtick", "string"):
            name = _unquote(token)
        elif token.kind == "word":
            name = token.text
        else:
            raise _error(self.text, token, "a field such as metrics.auc or status")
        dot = self.peek()
        if dot is not None and dot.kind == "punct" and dot.text == ".":
            kind = _KIND_PREFIXES.get(name.lower())
            if kind is None:
                raise _error(self.text, token, "metrics, params, tags or attributes before '.'")
            self.index += 1
            return kind, self.key(kind), token
        attribute = ATTRIBUTE_ALIASES.get(name.lower())
        if attribute is None:
            raise _error(self.text, token, f"an attribute ({', '.join(sorted(ATTRIBUTE_ALIASES))})")
        return "attribute", attribute, token

    def key(self, kind: FieldKind) -> str:
        token = self.next("a key after '.'")
        if token.kind in ("backtick", "string"):
            key = _unquote(token)
        elif token.kind in ("word", "number"):
            key = token.text
            # Bare keys may contain dots, as in metrics.val.loss.
            while (dot := self.peek()) is not None and dot.text == "." and dot.kind == "punct":
                part = self.tokens[self.index + 1] if self.index + 1 < len(self.tokens) else None
                if part is None or part.kind not in ("word", "number"):
                    break
                key += "." + part.text
                self.index += 2
        else:
            raise _error(self.text, token, "a key after '.'")
        if kind == "attribute":
            attribute = ATTRIBUTE_ALIASES.get(key.lower())
            if attribute is None:
                raise _error(self.text, token, "a known attribute name")
            return attribute
        if not key:
            raise _error(self.text, token, "a non-empty key")
        return key

    def operator(self) -> tuple[str, Token]:
        token = self.next("a comparison operator")
        if token.kind == "operator":
            return {"==": "=", "<>": "!="}.get(token.text, token.text), token
        if token.kind == "word" and token.text.upper() in ("LIKE", "ILIKE", "IN"):
            return token.text.upper(), token
        if token.kind == "word" and token.text.upper() == "NOT" and self.at_word("IN"):
            self.index += 1
            return "NOT IN", token
        raise _error(self.text, token, "a comparison operator (=, !=, <, <=, >, >=, LIKE, IN)")

    def scalar(self) -> tuple[float | str, Token]:
        token = self.next("a value")
        if token.kind == "number":
            return float(token.text), token
        if token.kind == "string":
            return _unquote(token), token
        raise _error(self.text, token, "a number or a quoted string")

    def value(self, operator: str) -> tuple[Value, Token]:
        if operator not in ("IN", "NOT IN"):
            return self.scalar()
        opening = self.next("'(' after IN")
        if opening.text != "(":
            raise _error(self.text, opening, "'(' after IN")
        items = [self.scalar()[0]]
        while (token := self.next("',' or ')'")).text == ",":
            items.append(self.scalar()[0])
        if token.text != ")":
            raise _error(self.text, token, "',' or ')'")
        return tuple(items), opening

    def comparison(self) -> Comparison:
        kind, key, field_token = self.field()
        operator, operator_token = self.operator()
        value, value_token = self.value(operator)
        _check_types(self.text, kind, key, operator, operator_token, value, value_token)
        return Comparison(kind, key, operator, value)

    def parse_filter(self) -> list[Comparison]:
        comparisons = [self.comparison()]
        while (token := self.peek()) is not None:
            if not self.at_word("AND"):
                hint = "AND (OR is not supported)" if token.text.upper() == "OR" else "AND"
                raise _error(self.text, token, hint)
            self.index += 1
            comparisons.append(self.comparison())
        return comparisons


def _check_types(
    text: str,
    kind: FieldKind,
    key: str,
    operator: str,
    operator_token: Token,
    value: Value,
    value_token: Token,
) -> None:
    numeric = kind == "metric" or (kind == "attribute" and key in _NUMERIC_ATTRIBUTES)
    if numeric:
        allowed = _NUMBER_OPERATORS
    elif kind in ("param", "tag") or key in _STRING_ATTRIBUTES:
        allowed = _STRING_OPERATORS
    else:
        allowed = _EXACT_OPERATORS
    if operator not in allowed:
        raise _error(text, operator_token, f"one of {', '.join(sorted(allowed))} for {key!r}")
    values = value if isinstance(value, tuple) else (value,)
    wanted = float if numeric else str
    if not all(isinstance(item, wanted) for item in values):
        expected = "a number" if numeric else "a quoted string"
        raise _error(text, value_token, f"{expected} to compare with {key!r}")


def parse_filter(text: str | None) -> list[Comparison]:
    """Parse a filter string; ``None`` or blank means no filter."""
    if text is None or not text.strip():
        return []
    return _Parser(text).parse_filter()


def parse_order_by(clauses: list[str] | tuple[str, ...] | None) -> list[OrderBy]:
    """Parse order-by clauses such as ``metrics.auc DESC`` or ``start_time``."""
    parsed: list[OrderBy] = []
    for clause in clauses or ():
        parser = _Parser(clause)
        kind, key, _ = parser.field()
        ascending = True
        token = parser.peek()
        if token is not None:
            if token.kind != "word" or token.text.upper() not in ("ASC", "DESC"):
                raise _error(clause, token, "ASC or DESC")
            ascending = token.text.upper() == "ASC"
            parser.index += 1
        if parser.peek() is not None:
            raise _error(clause, parser.peek(), "the end of the order-by clause")
        parsed.append(OrderBy(kind, key, ascending))
    return parsed


def _quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _format_value(value: Value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_format_value(item) for item in value) + ")"
    if isinstance(value, float):
        return repr(value)
    return _quote_string(value)


def format_filter(comparisons: list[Comparison]) -> str:
    """Render comparisons as a filter string that ``parse_filter`` reads back unchanged."""
    parts = []
    for comparison in comparisons:
        if comparison.kind == "attribute":
            field = comparison.key
        else:
            escaped = comparison.key.replace("\\", "\\\\").replace('"', '\\"')
            field = f'{_KIND_NAMES[comparison.kind]}."{escaped}"'
        parts.append(f"{field} {comparison.operator} {_format_value(comparison.value)}")
    return " AND ".join(parts)
