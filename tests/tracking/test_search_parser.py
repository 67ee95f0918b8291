"""The filter and order-by parser of search_runs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manara.errors import InvalidInputError
from manara.tracking.search import (
    Comparison,
    OrderBy,
    format_filter,
    parse_filter,
    parse_order_by,
)


def test_parse_example_filter() -> None:
    text = (
        "metrics.auc > 0.8 and params.max_depth = '5' and tags.team = 'x' and status = 'FINISHED'"
    )
    assert parse_filter(text) == [
        Comparison("metric", "auc", ">", 0.8),
        Comparison("param", "max_depth", "=", "5"),
        Comparison("tag", "team", "=", "x"),
        Comparison("attribute", "status", "=", "FINISHED"),
    ]


def test_parse_quoted_and_dotted_keys() -> None:
    parsed = parse_filter('metrics.val.loss <= 1e-3 AND params.`learning rate` != "0.1"')
    assert parsed[0] == Comparison("metric", "val.loss", "<=", 0.001)
    assert parsed[1] == Comparison("param", "learning rate", "!=", "0.1")


def test_parse_slash_key_and_negative_number() -> None:
    assert parse_filter("metrics.train/loss >= -2") == [
        Comparison("metric", "train/loss", ">=", -2.0)
    ]


def test_parse_in_and_like() -> None:
    parsed = parse_filter(
        "status IN ('FINISHED', 'FAILED') and tags.owner NOT IN ('a') and params.x LIKE 'ab%' "
        "and run_name ILIKE '%X%'"
    )
    assert parsed[0] == Comparison("attribute", "status", "IN", ("FINISHED", "FAILED"))
    assert parsed[1] == Comparison("tag", "owner", "NOT IN", ("a",))
    assert parsed[2] == Comparison("param", "x", "LIKE", "ab%")
    assert parsed[3] == Comparison("attribute", "name", "ILIKE", "%X%")


def test_parse_escaped_quote() -> None:
    assert parse_filter(r"tags.note = 'it\'s'") == [Comparison("tag", "note", "=", "it's")]


def test_blank_filter_is_empty() -> None:
    assert parse_filter(None) == []
    assert parse_filter("   ") == []


@pytest.mark.parametrize(
    ("text", "position", "token"),
    [
        ("metrics.auc >", 13, None),
        ("metrics.auc ~ 1", 12, "~"),
        ("metrics.auc > 1 or params.x = '1'", 16, "or"),
        ("metrics.auc > 'high'", 14, "'high'"),
        ("params.x > 1", 9, ">"),
        ("params.x = 5", 11, "5"),
        ("colour = 'red'", 0, "colour"),
        ("things.x = '1'", 0, "things"),
        ("status LIKE 'F%'", 7, "LIKE"),
        ("metrics.auc > 1 and", 19, None),
        ("status IN 'FINISHED'", 10, "'FINISHED'"),
        ("tags.x = 'unterminated", 9, "'"),
    ],
)
def test_invalid_filter_names_position(text: str, position: int, token: str | None) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_filter(text)
    assert caught.value.details["position"] == position, caught.value.message
    assert f"position {position}" in caught.value.message or position == len(text)
    if token is not None:
        assert caught.value.details["token"] == token
        assert repr(token) in caught.value.message


def test_or_error_mentions_or() -> None:
    with pytest.raises(InvalidInputError, match="OR is not supported"):
        parse_filter("metrics.a > 1 OR metrics.b > 1")


def test_parse_order_by() -> None:
    assert parse_order_by(["metrics.auc DESC", "start_time", "params.depth asc"]) == [
        OrderBy("metric", "auc", ascending=False),
        OrderBy("attribute", "start_time", ascending=True),
        OrderBy("param", "depth", ascending=True),
    ]


@pytest.mark.parametrize("clause", ["metrics.auc DOWN", "metrics.auc DESC extra", "", "nope"])
def test_invalid_order_by(clause: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_order_by([clause])


_keys = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=20,
)
_strings = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=20)
_numbers = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    kind = draw(st.sampled_from(["metric", "param", "tag", "name", "status", "start_time"]))
    if kind == "metric":
        operator = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
        return Comparison("metric", draw(_keys), operator, draw(_numbers))
    if kind == "start_time":
        operator = draw(st.sampled_from(["<", ">="]))
        return Comparison("attribute", "start_time", operator, draw(_numbers))
    operator = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"]))
    if kind == "status" and operator in ("LIKE", "ILIKE"):
        operator = "="
    value: str | tuple[float | str, ...]
    if operator in ("IN", "NOT IN"):
        value = tuple(draw(st.lists(_strings, min_size=1, max_size=3)))
    else:
        value = draw(_strings)
    if kind in ("name", "status"):
        return Comparison("attribute", kind, operator, value)
    return Comparison(kind, draw(_keys), operator, value)  # type: ignore[arg-type]


@given(st.lists(comparisons(), min_size=1, max_size=4))
def test_format_parse_round_trip(parsed: list[Comparison]) -> None:
    assert parse_filter(format_filter(parsed)) == parsed


@given(st.text(max_size=60))
def test_random_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        parse_filter(text)
    except InvalidInputError as error:
        assert "Invalid search string" in error.message


_fragments = st.sampled_from(
    [
        "metrics.",
        "params.",
        "tags.",
        "auc",
        "x",
        " ",
        "=",
        "!=",
        ">",
        "<=",
        "and",
        "or",
        "IN",
        "NOT",
        "(",
        ")",
        ",",
        "'a'",
        '"b"',
        "`c`",
        "1",
        "-2.5e3",
        "status",
        "LIKE",
        ".",
    ]
)


@given(st.lists(_fragments, max_size=12).map("".join))
def test_token_soup_parses_or_fails_cleanly(text: str) -> None:
    try:
        parse_filter(text)
    except InvalidInputError as error:
        assert "position" in error.details
