"""Query parameters of the customer list (``email``, ``sync_status``, ``deleted``, ``created``,
``stripe_account``, ``livemode``).

Parsed by hand, Stripe's way (``created[gte]=...``); a bad value is a 400 naming the parameter.
``stripe_account=own`` is the key's own account (rows store it as null), ``stripe_account=acct_...``
a connected account (or another key's own); ``livemode`` is true or false.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time, timezone
from typing import Final, TypeVar

from django.db.models import Model, Q, QuerySet
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend
from rest_framework.request import Request
from rest_framework.views import APIView

from ..accounts import is_account_id
from ..models import SyncStatus

#: ``created[<operator>]`` and the ORM lookup each stands for; plain ``created`` is equality.
CREATED_OPERATORS: Final[Mapping[str, str]] = {
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
}
#: ``stripe_account`` of the own account (null in the rows).
OWN_ACCOUNT: Final = "own"
FILTER_PARAMS: Final = frozenset(
    {
        "email",
        "sync_status",
        "deleted",
        "created",
        *(f"created[{op}]" for op in CREATED_OPERATORS),
        "stripe_account",
        "livemode",
    }
)

_Model = TypeVar("_Model", bound=Model)
_Row = TypeVar("_Row")

_DIGITS: Final = re.compile(r"[0-9]+")
_UNIX_MAX_DIGITS: Final = 12
#: A local primary key (a BigAutoField: at most 19 digits; 18 always fits).
_PK: Final = re.compile(r"[0-9]{1,18}")
_TRUE: Final = frozenset({"true", "1"})
_FALSE: Final = frozenset({"false", "0"})


def identifier_filter(identifier: str) -> Q | None:
    """The row ``identifier`` names: ``cus_...`` is a Stripe id, digits a local pk; else None."""
    if identifier.startswith("cus_") and "\x00" not in identifier:  # no NUL in a database
        return Q(stripe_id=identifier)
    if _PK.fullmatch(identifier):
        return Q(pk=int(identifier))
    return None


def parse_timestamp(raw: str) -> datetime:
    """A unix timestamp (``1700000000``), an ISO date (``2024-01-31``, midnight UTC) or an ISO
    date and time (``2024-01-31T12:00:00+01:00``; without an offset, UTC).

    Raises ``ValueError`` for anything else.
    """
    if _DIGITS.fullmatch(raw):  # never an ISO basic date (20240131): always unix seconds
        if len(raw) > _UNIX_MAX_DIGITS:
            raise ValueError(raw)
        return datetime.fromtimestamp(int(raw), tz=timezone.utc)
    moment = parse_datetime(raw)
    if moment is None:
        day = parse_date(raw)
        if day is None:
            raise ValueError(raw)
        moment = datetime.combine(day, time())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def parse_boolean(raw: str) -> bool:
    """``true``/``1`` or ``false``/``0`` (any case); raises ``ValueError`` for anything else."""
    text = raw.lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError(raw)


def account_filter(raw: str) -> Q:
    """``stripe_account``: ``own`` (the key's own account, null in the rows) or an ``acct_`` id;
    raises ``ValueError`` for anything else (an empty value included)."""
    if raw == OWN_ACCOUNT:
        return Q(stripe_account__isnull=True) | Q(stripe_account="")
    if is_account_id(raw):
        return Q(stripe_account=raw)
    raise ValueError(raw)


def customer_filter(params: Mapping[str, str]) -> Q:
    """The filter the query parameters ask for; unrelated parameters are ignored here.

    Raises DRF's ``ValidationError`` mapping each bad parameter to its message.
    """
    condition = Q()
    errors: dict[str, list[str]] = {}
    email = params.get("email")
    if email is not None:
        if "\x00" in email:
            errors["email"] = ["email: may not contain NUL characters (\\x00)"]
        elif email:
            condition &= Q(email=email)
        else:
            errors["email"] = ["email: may not be empty"]
    status = params.get("sync_status")
    if status is not None:
        if status in SyncStatus.values:
            condition &= Q(sync_status=status)
        else:
            choices = ", ".join(SyncStatus.values)
            errors["sync_status"] = [f"sync_status: must be one of {choices} (got {status!r})"]
    deleted = params.get("deleted")
    if deleted is not None:
        try:
            condition &= Q(deleted=parse_boolean(deleted))
        except ValueError:
            errors["deleted"] = [f"deleted: must be true or false (got {deleted!r})"]
    stripe_account = params.get("stripe_account")
    if stripe_account is not None:
        try:
            condition &= account_filter(stripe_account)
        except ValueError:
            errors["stripe_account"] = [
                f"stripe_account: must be {OWN_ACCOUNT} (the API key's own account) or an "
                f"acct_ id (got {stripe_account!r})"
            ]
    livemode = params.get("livemode")
    if livemode is not None:
        try:
            condition &= Q(livemode=parse_boolean(livemode))
        except ValueError:
            errors["livemode"] = [f"livemode: must be true or false (got {livemode!r})"]
    for param, lookup in [("created", "created"), *_created_lookups()]:
        raw = params.get(param)
        if raw is None:
            continue
        try:
            condition &= Q(**{lookup: parse_timestamp(raw)})
        except ValueError:
            errors[param] = [
                f"{param}: must be a unix timestamp or an ISO 8601 date or date and time "
                f"(got {raw!r})"
            ]
    if errors:
        raise ValidationError(errors)
    return condition


def _created_lookups() -> list[tuple[str, str]]:
    return [(f"created[{op}]", f"created__{lookup}") for op, lookup in CREATED_OPERATORS.items()]


class CustomerFilterBackend(BaseFilterBackend):
    """Applies ``customer_filter`` to the list (detail routes do not filter)."""

    def filter_queryset(
        self, request: Request, queryset: QuerySet[_Model, _Row], view: APIView
    ) -> QuerySet[_Model, _Row]:
        return queryset.filter(customer_filter(request.query_params))
