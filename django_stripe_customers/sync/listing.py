"""The list request, built in one place: ``GET`` of the mirrored object's path, a ``created`` range,
Stripe's largest page, with what the pull expands.

A one-stream pass pages through a range (``pages``); a parallel pull first lists the newest page
of its range to slice the rest (``first_page``). Both send the same request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from ..descriptions import CUSTOMERS
from ..stripe import PageData, StripeClient
from .pull import expansions

PATH: Final = CUSTOMERS.path
#: Stripe's largest page.
PAGE_SIZE: Final = 100


def query(created_gte: int | None, created_lt: int | None) -> dict[str, Any]:
    """The list parameters of ``[created_gte, created_lt)`` (None: unbounded)."""
    params: dict[str, Any] = {"limit": PAGE_SIZE}
    if created_gte is not None:
        params["created[gte]"] = created_gte
    if created_lt is not None:
        params["created[lt]"] = created_lt
    return params


def pages(
    client: StripeClient, created_gte: int | None, created_lt: int | None
) -> Iterator[PageData]:
    """The pages of the range, newest first, one request each (one page in memory at a time)."""
    return client.iter_pages(PATH, query(created_gte, created_lt), expand=expansions("data."))


def first_page(client: StripeClient, created_gte: int, created_lt: int) -> PageData:
    """The newest page of the range; ``has_more`` says whether the range goes on."""
    return client.list_page(PATH, query(created_gte, created_lt), expand=expansions("data."))
