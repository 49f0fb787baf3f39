"""A page of rows written in one ``INSERT ... ON CONFLICT (stripe_id) DO UPDATE`` statement.

What ``bulk_create(update_conflicts=True)`` does, without its cost per value: a pull writes
thousands of rows a second, each with a dozen JSON columns, and Django 5.2 sends those to
PostgreSQL as arrays (``UNNEST``) that psycopg escapes character by character. Here, for
PostgreSQL, the whole page is one JSON document (serialised by orjson: at ~300 KB a page, the
standard library's encoder was the writer's largest cost) that the database unpacks
(``jsonb_to_recordset``); for SQLite (3.24+), one ``VALUES`` row per customer with the
JSON columns serialised. The statement of each shape is built once. Other databases use
Django's ``bulk_create``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import orjson
from django.db import connection
from django.db.models import Field, JSONField, Model

from ..models import ACCOUNT_FIELDS

#: The unique column rows are matched on.
KEY: Final = "stripe_id"


def upsert(model: type[Model], rows: Sequence[Mapping[str, Any]], update: Iterable[str]) -> None:
    """Insert ``rows`` of ``model`` (field name -> value; the other columns take their
    default), or update the ``update`` columns of the rows whose ``stripe_id`` exists and are
    of the same account and mode (a row of another account is left as it is)."""
    if not rows:
        return
    updated = tuple(update)
    if connection.vendor == "postgresql":
        document = orjson.dumps([_record(model, row) for row in rows], default=_unexpected)
        with connection.cursor() as cursor:
            cursor.execute(_recordset_statement(model, updated), [document.decode()])
    elif connection.vendor == "sqlite":
        columns = len(_fields(model))
        per_statement = max(1, int(connection.features.max_query_params or 999) // columns)
        for start in range(0, len(rows), per_statement):
            batch = rows[start : start + per_statement]
            params = [value for row in batch for value in _values(model, row)]
            with connection.cursor() as cursor:
                cursor.execute(_values_statement(model, len(batch), updated), params)
    else:  # Django's own bulk_create: what Stripe sent is written as it is, never pushed
        model._base_manager.bulk_create(
            [model(**row) for row in rows],
            update_conflicts=True,
            unique_fields=[KEY],
            update_fields=list(updated),
        )


@functools.cache
def _fields(model: type[Model]) -> list[Field[Any, Any]]:
    return [field for field in model._meta.concrete_fields if not field.primary_key]


@functools.cache
def _by_name(model: type[Model]) -> dict[str, Field[Any, Any]]:
    return {field.name: field for field in _fields(model)}


# -- PostgreSQL: the page as one JSON document -------------------------------------------------


@functools.cache
def _recordset_statement(model: type[Model], updated: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    fields = _fields(model)
    names = [quote(_column(field)) for field in fields]
    types = ", ".join(
        f"{name} {field.db_type(connection)}" for name, field in zip(names, fields, strict=True)
    )
    # A JSON column holding JSON null is SQL NULL, as Django stores ``None``.
    selected = ", ".join(
        f"NULLIF(r.{name}, 'null'::jsonb)" if isinstance(field, JSONField) else f"r.{name}"
        for name, field in zip(names, fields, strict=True)
    )
    table = quote(model._meta.db_table)
    return (  # identifiers from the model, quoted; the data is the one parameter
        f"INSERT INTO {table} AS t ({', '.join(names)}) "  # noqa: S608
        f"SELECT {selected} FROM jsonb_to_recordset(%s::jsonb) AS r({types}) "
        f"{_on_conflict(model, updated)}"
    )


def _record(model: type[Model], row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        _column(field): row[field.name] if field.name in row else field.get_default()
        for field in _fields(model)
    }


def _unexpected(value: Any) -> Any:
    """orjson writes datetimes as ``isoformat()`` does; any other type is a bug."""
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- SQLite: a VALUES row per customer ---------------------------------------------------------


@functools.cache
def _values_statement(model: type[Model], count: int, updated: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    fields = _fields(model)
    columns = ", ".join(quote(_column(field)) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    table = quote(model._meta.db_table)
    return (  # identifiers from the model, quoted; every value is a parameter
        f"INSERT INTO {table} AS t ({columns}) VALUES {', '.join([row] * count)} "  # noqa: S608
        f"{_on_conflict(model, updated)}"
    )


def _values(model: type[Model], row: Mapping[str, Any]) -> list[Any]:
    adapters = _adapters(model)
    return [
        adapters[field.name](row[field.name] if field.name in row else field.get_default())
        for field in _fields(model)
    ]


def _adapter(field: Field[Any, Any]) -> Callable[[Any], Any]:
    if isinstance(field, JSONField):
        return _json
    return functools.partial(_prepared, field)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _prepared(field: Field[Any, Any], value: Any) -> Any:
    return field.get_db_prep_save(value, connection)


@functools.cache
def _adapters(model: type[Model]) -> dict[str, Callable[[Any], Any]]:
    return {field.name: _adapter(field) for field in _fields(model)}


# -- both --------------------------------------------------------------------------------------


def _on_conflict(model: type[Model], updated: tuple[str, ...]) -> str:
    """Update the row of the same id, only if it is of the same account and mode."""
    quote = connection.ops.quote_name
    by_name = _by_name(model)
    assignments = ", ".join(
        f"{quote(_column(by_name[name]))} = excluded.{quote(_column(by_name[name]))}"
        for name in updated
    )
    same = "IS NOT DISTINCT FROM" if connection.vendor == "postgresql" else "IS"
    where = " AND ".join(
        f"t.{quote(_column(by_name[name]))} {same} excluded.{quote(_column(by_name[name]))}"
        for name in ACCOUNT_FIELDS
    )
    key = quote(_column(by_name[KEY]))
    return f"ON CONFLICT ({key}) DO UPDATE SET {assignments} WHERE {where}"


def _column(field: Field[Any, Any]) -> str:
    return str(field.column)
