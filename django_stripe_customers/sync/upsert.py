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
from django.db.models import Field, JSONField

from ..models import Customer

_FIELDS: Final = [field for field in Customer._meta.concrete_fields if not field.primary_key]
_BY_NAME: Final = {field.name: field for field in _FIELDS}


def upsert(rows: Sequence[Mapping[str, Any]], update: Iterable[str]) -> None:
    """Insert ``rows`` (field name -> value; the other columns take their default), or update
    the ``update`` columns of the rows whose ``stripe_id`` exists."""
    if not rows:
        return
    updated = tuple(update)
    if connection.vendor == "postgresql":
        document = orjson.dumps([_record(row) for row in rows], default=_unexpected).decode()
        with connection.cursor() as cursor:
            cursor.execute(_recordset_statement(updated), [document])
    elif connection.vendor == "sqlite":
        per_statement = max(1, int(connection.features.max_query_params or 999) // len(_FIELDS))
        for start in range(0, len(rows), per_statement):
            batch = rows[start : start + per_statement]
            params = [value for row in batch for value in _values(row)]
            with connection.cursor() as cursor:
                cursor.execute(_values_statement(len(batch), updated), params)
    else:  # Django's own bulk_create: what Stripe sent is written as it is, never pushed
        Customer._base_manager.bulk_create(
            [Customer(**row) for row in rows],
            update_conflicts=True,
            unique_fields=["stripe_id"],
            update_fields=list(updated),
        )


# -- PostgreSQL: the page as one JSON document -------------------------------------------------


@functools.cache
def _recordset_statement(updated: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    names = [quote(_column(field)) for field in _FIELDS]
    types = ", ".join(
        f"{name} {field.db_type(connection)}" for name, field in zip(names, _FIELDS, strict=True)
    )
    # A JSON column holding JSON null is SQL NULL, as Django stores ``None``.
    selected = ", ".join(
        f"NULLIF(r.{name}, 'null'::jsonb)" if isinstance(field, JSONField) else f"r.{name}"
        for name, field in zip(names, _FIELDS, strict=True)
    )
    table = quote(Customer._meta.db_table)
    return (  # identifiers from the model, quoted; the data is the one parameter
        f"INSERT INTO {table} ({', '.join(names)}) "  # noqa: S608
        f"SELECT {selected} FROM jsonb_to_recordset(%s::jsonb) AS r({types}) "
        f"{_on_conflict(updated)}"
    )


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        _column(field): row[field.name] if field.name in row else field.get_default()
        for field in _FIELDS
    }


def _unexpected(value: Any) -> Any:
    """orjson writes datetimes as ``isoformat()`` does; any other type is a bug."""
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- SQLite: a VALUES row per customer ---------------------------------------------------------


@functools.cache
def _values_statement(count: int, updated: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(_column(field)) for field in _FIELDS)
    row = "(" + ", ".join(["%s"] * len(_FIELDS)) + ")"
    table = quote(Customer._meta.db_table)
    return (  # identifiers from the model, quoted; every value is a parameter
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * count)} "  # noqa: S608
        f"{_on_conflict(updated)}"
    )


def _values(row: Mapping[str, Any]) -> list[Any]:
    return [
        _ADAPTERS[field.name](row[field.name] if field.name in row else field.get_default())
        for field in _FIELDS
    ]


def _adapter(field: Field[Any, Any]) -> Callable[[Any], Any]:
    if isinstance(field, JSONField):
        return _json
    return functools.partial(_prepared, field)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _prepared(field: Field[Any, Any], value: Any) -> Any:
    return field.get_db_prep_save(value, connection)


_ADAPTERS: Final = {field.name: _adapter(field) for field in _FIELDS}


# -- both --------------------------------------------------------------------------------------


def _on_conflict(updated: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    assignments = ", ".join(
        f"{quote(_column(_BY_NAME[name]))} = excluded.{quote(_column(_BY_NAME[name]))}"
        for name in updated
    )
    return f"ON CONFLICT ({quote(_column(_BY_NAME['stripe_id']))}) DO UPDATE SET {assignments}"


def _column(field: Field[Any, Any]) -> str:
    return str(field.column)
