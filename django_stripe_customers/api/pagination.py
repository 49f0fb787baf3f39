"""Stripe-style list pages: ``limit`` (1 to 100, default 50), ``starting_after``/``ending_before``.

Keyset pagination on (``created``, ``pk``), newest first, so a page is exact while rows come and
go and a deep page costs what the first one does. Rows not yet created in Stripe come first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from django.db.models import F, Q
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import Customer
from .filters import identifier_filter

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 100
PAGINATION_PARAMS: Final = frozenset({"limit", "starting_after", "ending_before"})

#: The list order: newest first, rows with no ``created`` yet (not in Stripe yet) before all.
LIST_ORDER: Final = (F("created").desc(nulls_first=True), F("pk").desc())
_REVERSE_ORDER: Final = (F("created").asc(nulls_last=True), F("pk").asc())


def _after(anchor: Customer) -> Q:
    """The rows listed after ``anchor`` in ``LIST_ORDER``."""
    if anchor.created is None:
        return Q(created__isnull=True, pk__lt=anchor.pk) | Q(created__isnull=False)
    return Q(created__lt=anchor.created) | Q(created=anchor.created, pk__lt=anchor.pk)


def _before(anchor: Customer) -> Q:
    """The rows listed before ``anchor`` in ``LIST_ORDER``."""
    if anchor.created is None:
        return Q(created__isnull=True, pk__gt=anchor.pk)
    return (
        Q(created__isnull=True)
        | Q(created__gt=anchor.created)
        | Q(created=anchor.created, pk__gt=anchor.pk)
    )


def parse_limit(params: Mapping[str, str]) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_LIMIT:
        return int(raw)
    raise ValidationError(
        {"limit": [f"limit: must be an integer from 1 to {MAX_LIMIT} (got {raw!r})"]}
    )


def _anchor(param: str, identifier: str) -> Customer:
    """The row a cursor names, whatever the filters (a cursor is only a position)."""
    lookup = identifier_filter(identifier)
    anchor = None if lookup is None else Customer.objects.filter(lookup).only("created").first()
    if anchor is None:
        raise ValidationError({param: [f"{param}: no customer {identifier!r}"]})
    return anchor


class StripeListPagination(BasePagination):
    """Answers ``{"object": "list", "url", "has_more", "data"}``, as Stripe's list endpoints."""

    has_more = False
    url = ""

    def paginate_queryset(
        self, queryset: Any, request: Request, view: APIView | None = None
    ) -> list[Any]:
        params = request.query_params
        limit = parse_limit(params)
        starting_after, ending_before = params.get("starting_after"), params.get("ending_before")
        if starting_after is not None and ending_before is not None:
            message = "ending_before: cannot be combined with starting_after"
            raise ValidationError({"ending_before": [message]})
        if ending_before is not None:
            before = _before(_anchor("ending_before", ending_before))
            rows = list(queryset.filter(before).order_by(*_REVERSE_ORDER)[: limit + 1])
            page = rows[:limit][::-1]
        else:
            if starting_after is not None:
                queryset = queryset.filter(_after(_anchor("starting_after", starting_after)))
            rows = list(queryset.order_by(*LIST_ORDER)[: limit + 1])
            page = rows[:limit]
        self.has_more = len(rows) > limit
        self.url = request.path
        return page

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {"object": "list", "url": self.url, "has_more": self.has_more, "data": data}
        )
