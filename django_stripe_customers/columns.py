"""The column of each Stripe attribute, made from its role in ``schema.ROLES``."""

from __future__ import annotations

from typing import Any

from django.db import models

from . import schema


def column(attribute: str, **options: Any) -> models.Field[Any, Any]:
    """The column of a Stripe attribute, from its role in ``schema.ROLES``: its kind, Stripe's
    length limit, its choices. Every column may be empty (a row made locally has no
    ``created`` yet) but a non-nullable boolean, which is False until Stripe says otherwise."""
    role = schema.ROLES[attribute]
    kind = role["column"]
    if kind == "boolean" and not role["nullable"]:
        return models.BooleanField(**{"default": False, **options})
    empty: dict[str, Any] = {"null": True, "blank": True}
    if kind == "char":
        choices = [(value, value) for value in role["choices"]] or None
        return models.CharField(max_length=role["max_length"], choices=choices, **empty, **options)
    fields: dict[str, type[models.Field[Any, Any]]] = {
        "bigint": models.BigIntegerField,
        "boolean": models.BooleanField,
        "datetime": models.DateTimeField,
        "json": models.JSONField,
    }
    return fields[kind](**empty, **options)
