"""SQL of ``search_runs``: parsed filter and order-by clauses to SQLAlchemy Core expressions.

A metric comparison reads the latest value of the metric (highest step,
then latest timestamp, then highest value) from ``latest_metrics``, which
every logging call keeps up to date. A
param or tag comparison matches runs that have the key with a matching
value, so ``params.x != '1'`` leaves out runs that never logged ``x``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, and_, func, not_, select

from manara.stores.metadata import tables
from manara.tracking.search import Comparison, OrderBy

_ATTRIBUTE_COLUMNS = {
    "status": tables.runs.c.status,
    "name": tables.runs.c.name,
    "start_time": tables.runs.c.start_time,
    "end_time": tables.runs.c.end_time,
    "run_id": tables.runs.c.id,
    "experiment_id": tables.runs.c.experiment_id,
}


def latest_metrics(run_ids: Any | None = None, key: str | None = None) -> Subquery:
    """Return a subquery of ``(run_id, key, value)`` with the latest value of each metric."""
    latest = tables.latest_metrics
    query = select(latest.c.run_id, latest.c.key, latest.c.value)
    if run_ids is not None:
        query = query.where(latest.c.run_id.in_(run_ids))
    if key is not None:
        query = query.where(latest.c.key == key)
    return query.subquery()


def _like_to_glob(pattern: str) -> str:
    """Translate a LIKE pattern to SQLite GLOB, which, unlike SQLite's LIKE, is case-sensitive."""
    special = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(special.get(char, char) for char in pattern)


def _compare(
    column: ColumnElement[Any], operator: str, value: Any, dialect: str
) -> ColumnElement[bool]:
    if operator == "IN":
        return column.in_(list(value))
    if operator == "NOT IN":
        return not_(column.in_(list(value)))
    if operator == "LIKE":
        if dialect == "sqlite":
            return column.bool_op("GLOB")(_like_to_glob(value))
        return column.like(value)
    if operator == "ILIKE":
        return func.lower(column).like(func.lower(value))
    comparisons = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }
    return comparisons[operator](value)


def _attribute_value(key: str, value: Any) -> Any:
    if key not in ("start_time", "end_time"):
        return value
    return datetime.fromtimestamp(float(value) / 1000, UTC)


def _condition(comparison: Comparison, scope: Any, dialect: str) -> ColumnElement[bool]:
    runs = tables.runs
    if comparison.kind == "attribute":
        column = _ATTRIBUTE_COLUMNS[comparison.key]
        value = comparison.value
        if isinstance(value, tuple):
            value = tuple(_attribute_value(comparison.key, item) for item in value)
        else:
            value = _attribute_value(comparison.key, value)
        return _compare(column, comparison.operator, value, dialect)
    if comparison.kind == "metric":
        latest = latest_metrics(scope, comparison.key)
        matching = select(latest.c.run_id).where(
            _compare(latest.c.value, comparison.operator, comparison.value, dialect)
        )
        return runs.c.id.in_(matching)
    table = tables.run_params if comparison.kind == "param" else tables.run_tags
    matching = select(table.c.run_id).where(
        table.c.key == comparison.key,
        _compare(table.c.value, comparison.operator, comparison.value, dialect),
    )
    return runs.c.id.in_(matching)


def _order_column(statement: Select[Any], order: OrderBy, scope: Any) -> tuple[Select[Any], Any]:
    runs = tables.runs
    if order.kind == "attribute":
        return statement, _ATTRIBUTE_COLUMNS[order.key]
    if order.kind == "metric":
        latest = latest_metrics(scope, order.key)
        statement = statement.outerjoin(latest, latest.c.run_id == runs.c.id)
        return statement, latest.c.value
    table = (tables.run_params if order.kind == "param" else tables.run_tags).alias()
    statement = statement.outerjoin(
        table, and_(table.c.run_id == runs.c.id, table.c.key == order.key)
    )
    return statement, table.c.value


def search_statement(
    experiment_ids: Sequence[str] | None,
    comparisons: Sequence[Comparison],
    order_by: Sequence[OrderBy],
    max_results: int,
    dialect: str,
) -> Select[Any]:
    """Build the query of run rows that match, in order, at most ``max_results`` of them."""
    runs = tables.runs
    statement = select(runs)
    scope = None
    if experiment_ids is not None:
        statement = statement.where(runs.c.experiment_id.in_(list(experiment_ids)))
        scope = select(runs.c.id).where(runs.c.experiment_id.in_(list(experiment_ids)))
    for comparison in comparisons:
        statement = statement.where(_condition(comparison, scope, dialect))
    order_columns = []
    for order in order_by:
        statement, column = _order_column(statement, order, scope)
        ordered = column.asc() if order.ascending else column.desc()
        order_columns.append(ordered.nulls_last())
    order_columns.extend([runs.c.start_time.desc(), runs.c.id.asc()])
    return statement.order_by(*order_columns).limit(max_results)
