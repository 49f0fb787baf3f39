"""Stripe -> database: map one object, apply it, reconcile one id, reconcile all (paged, bulk).

Pulling writes with ``QuerySet.update`` and ``bulk_create``, which send no model signals, so
nothing pulled is ever pushed back to Stripe (no echo). Fields with unpushed local edits are
kept (see ``locally_edited_fields``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Final

from django.db import transaction
from django.db.models import Q
from django.utils import timezone as django_timezone

from .. import schema
from ..conf import get_setting
from ..models import Customer, SyncStatus
from ..stripe import InvalidRequestError, StripeClient
from ..stripe.factory import get_client
from .merge import merge

#: ``id`` is ``stripe_id``, ``object`` is constant, ``deleted`` is set by the deletion paths only.
_NOT_MIRRORED: Final = frozenset({"id", "object", "deleted"})

#: Every attribute of Stripe's Customer object that has a column of the same name.
MIRRORED_FIELDS: Final[tuple[str, ...]] = tuple(
    name for name in schema.OBJECT_ATTRIBUTES if name not in _NOT_MIRRORED
)

#: Mirrored attributes a caller can write (create or update), i.e. that can hold a local edit.
WRITABLE_FIELDS: Final[tuple[str, ...]] = tuple(
    name
    for name in MIRRORED_FIELDS
    if name in schema.WRITABLE_ON_CREATE or name in schema.WRITABLE_ON_UPDATE
)

#: Expandable attributes whose column holds an id (an expanded object is reduced to its id).
_ID_EXPANDABLES: Final = frozenset(
    name
    for name, spec in schema.OBJECT_ATTRIBUTES.items()
    if spec.get("expandable") and spec["type"] == "string"
)
_TIMESTAMPS: Final = frozenset(
    name for name, spec in schema.OBJECT_ATTRIBUTES.items() if spec["type"] == "timestamp"
)
#: Written on every upserted row, besides the mirrored attributes.
_BOOKKEEPING: Final = ("stripe_data", "deleted", "sync_status", "sync_error", "synced_at")

PAGE_SIZE: Final = 100


def fields_from_stripe(obj: dict[str, Any]) -> dict[str, Any]:
    """Column values for the attributes present in a Stripe customer object.

    Attributes absent from ``obj`` (Stripe omits includable ones such as ``tax_ids`` unless
    expanded) are absent from the result, so applying it never erases what an expanded
    retrieve stored. Attributes this version does not know stay in ``stripe_data`` only.
    """
    values: dict[str, Any] = {}
    for name in MIRRORED_FIELDS:
        if name not in obj:
            continue
        value = obj[name]
        if name in _ID_EXPANDABLES and isinstance(value, dict):
            value = value.get("id")
        elif name in _TIMESTAMPS and value is not None:
            value = datetime.fromtimestamp(int(value), tz=timezone.utc)
        values[name] = value
    return values


def is_deleted(obj: dict[str, Any]) -> bool:
    """Whether ``obj`` is Stripe's answer for a deleted customer (``"deleted": true``)."""
    return obj.get("deleted") is True


def _merged_values(customer: Customer | None, obj: dict[str, Any]) -> dict[str, Any]:
    """The row's new values for ``obj``: the remote data, three-way merged with unpushed local
    edits when the row is pending (see ``merge``)."""
    remote = fields_from_stripe(obj)
    if customer is None or customer.sync_status != SyncStatus.PENDING:
        return remote
    local = {name: getattr(customer, name) for name in WRITABLE_FIELDS}
    base = fields_from_stripe(customer.stripe_data or {})
    return merge(local, base, remote, WRITABLE_FIELDS)


def _is_unchanged(customer: Customer, obj: dict[str, Any], values: dict[str, Any]) -> bool:
    return (
        customer.stripe_data == obj
        and not customer.deleted
        and not customer.sync_error
        and all(getattr(customer, name) == value for name, value in values.items())
    )


def _status_after_pull(customer: Customer | None) -> str:
    pending = customer is not None and customer.sync_status == SyncStatus.PENDING
    return SyncStatus.PENDING if pending else SyncStatus.SYNCED


# -- one customer ----------------------------------------------------------------------------


def apply_customer(obj: dict[str, Any]) -> tuple[Customer | None, str]:
    """Apply one Stripe customer object to its row; returns (row, outcome).

    The outcome is ``created``, ``updated``, ``unchanged`` or ``deleted``. A deleted object
    flags the row (its last data is kept); a deleted object with no row is ignored (``None``).
    """
    stripe_id = obj["id"]
    now = django_timezone.now()
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(stripe_id=stripe_id).first()
        if is_deleted(obj):
            if customer is None:
                return None, "unchanged"
            if customer.deleted:
                return customer, "unchanged"
            Customer.objects.filter(pk=customer.pk).update(
                deleted=True, sync_error="", synced_at=now
            )
            customer.refresh_from_db()
            return customer, "deleted"
        values = _merged_values(customer, obj)
        if customer is not None and _is_unchanged(customer, obj, values):
            return customer, "unchanged"
        bookkeeping = {
            "stripe_data": obj,
            "deleted": False,
            "sync_status": _status_after_pull(customer),
            "sync_error": "",
            "synced_at": now,
        }
        if customer is None:
            (customer,) = Customer.objects.bulk_create(
                [Customer(stripe_id=stripe_id, **values, **bookkeeping)]
            )
            return customer, "created"
        Customer.objects.filter(pk=customer.pk).update(**values, **bookkeeping)
        customer.refresh_from_db()
        return customer, "updated"


def pull_customer(stripe_id: str, *, client: StripeClient | None = None) -> Customer | None:
    """Retrieve one customer from Stripe and apply it to its row (created if needed).

    A 404 is not a deletion (Stripe answers deleted customers with ``deleted: true``): it means
    another account or mode. The error is recorded on the row, nothing else changes, and the
    ``InvalidRequestError`` is raised again for the caller.
    """
    client = client or get_client()
    try:
        obj = client.customers.retrieve(stripe_id, expand=expansions())
    except InvalidRequestError as exc:
        if exc.http_status == 404:
            Customer.objects.filter(stripe_id=stripe_id).update(sync_error=_not_found(stripe_id))
        raise
    customer, _ = apply_customer(obj)
    return customer


def expansions(prefix: str = "") -> list[str]:
    """The ``expand[]`` a pull asks for (setting ``PULL_EXPAND``), e.g. with ``data.`` for lists."""
    return [f"{prefix}{name}" for name in get_setting("PULL_EXPAND")]


def _not_found(stripe_id: str) -> str:
    return (
        f"Stripe has no customer {stripe_id} for this API key (404). It was not deleted "
        "(Stripe reports deleted customers as such): check that the key is for the account and "
        "mode (test or live) this customer belongs to."
    )


# -- everything ------------------------------------------------------------------------------


@dataclass
class PullResult:
    """What a pull did. Results of partitions add up with ``+``."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    marked_deleted: int = 0
    pages: int = 0
    requests: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return self.created + self.updated + self.unchanged

    def __add__(self, other: PullResult) -> PullResult:
        summed = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        summed["seconds"] = max(self.seconds, other.seconds)
        return PullResult(**summed)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


Progress = Callable[[PullResult], None]

def pull_range(
    created_gte: int | None,
    created_lt: int | None,
    progress: Progress | None = None,
    *,
    client: StripeClient | None = None,
    result: PullResult | None = None,
) -> PullResult:
    """One pass over the customers created in ``[created_gte, created_lt)`` (None: unbounded).

    Counts go into ``result`` when given, so a caller still has them if the pass fails.
    """
    client = client or get_client()
    started = time.monotonic()
    result = PullResult() if result is None else result
    params: dict[str, Any] = {}
    if created_gte is not None:
        params["created[gte]"] = created_gte
    if created_lt is not None:
        params["created[lt]"] = created_lt
    window = _UnseenWindow(_datetime(created_gte), _datetime(created_lt))
    unseen: list[str] = []
    for page in _pages(client, params, result):
        _upsert_page(page, result)
        unseen += window.after_page(page)
        result.seconds = time.monotonic() - started
        if progress is not None:
            progress(result)
    unseen += window.after_last_page()
    _check_unseen(client, unseen, result)
    result.seconds = time.monotonic() - started
    return result


def as_timestamp(value: int | datetime) -> int:
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


def _datetime(value: int | datetime | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(as_timestamp(value), tz=timezone.utc)


def _pages(
    client: StripeClient, params: dict[str, Any], result: PullResult
) -> Iterator[list[dict[str, Any]]]:
    """Non-empty pages of the customer list, counting requests; one page in memory at a time."""
    query = {**params, "limit": PAGE_SIZE}
    for data in client.iter_pages("/v1/customers", query, expand=expansions("data.")):
        result.requests += 1
        if data:
            result.pages += 1
            yield data


def _upsert_page(page: list[dict[str, Any]], result: PullResult) -> None:
    """Apply one page with a bounded number of queries (a lock-and-read, then one upsert)."""
    now = django_timezone.now()
    ids = [obj["id"] for obj in page]
    with transaction.atomic():
        known = {
            c.stripe_id: c for c in Customer.objects.select_for_update().filter(stripe_id__in=ids)
        }
        by_columns: dict[tuple[str, ...], list[Customer]] = {}
        for obj in page:
            customer = known.get(obj["id"])
            values = _merged_values(customer, obj)
            if customer is not None and _is_unchanged(customer, obj, values):
                result.unchanged += 1
                continue
            if customer is None:
                result.created += 1
            else:
                result.updated += 1
            row = Customer(
                stripe_id=obj["id"],
                stripe_data=obj,
                deleted=False,
                sync_status=_status_after_pull(customer),
                sync_error="",
                synced_at=now,
                **values,
            )
            by_columns.setdefault(tuple(sorted(values)), []).append(row)
        # Rows of one page nearly always carry the same attributes: one upsert per shape.
        for columns, rows in by_columns.items():
            Customer.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["stripe_id"],
                update_fields=[*columns, *_BOOKKEEPING],
            )


class _UnseenWindow:
    """Finds local rows a pass over ``[gte, lt)`` did not see, with memory bounded by a page.

    Stripe lists newest first, so each page covers a range of ``created`` times. Local rows in
    ``(oldest on this page, oldest on the previous page]`` that were not listed were not seen.
    Rows created in the very second at a boundary may sit on either side of it: the ids listed
    at that second are carried over (their number bounds the memory used).
    """

    def __init__(self, gte: datetime | None, lt: datetime | None) -> None:
        self._gte, self._lt = gte, lt
        self._upper: datetime | None = None
        self._at_upper: set[str] = set()

    def after_page(self, page: list[dict[str, Any]]) -> list[str]:
        lower = _created(page[-1])
        in_range = Q(created__gt=lower)
        if self._upper is not None:
            in_range &= Q(created__lte=self._upper)
        elif self._lt is not None:
            in_range &= Q(created__lt=self._lt)
        unseen = self._local_ids(in_range, self._at_upper | {obj["id"] for obj in page})
        at_lower = {obj["id"] for obj in page if _created(obj) == lower}
        self._at_upper = (self._at_upper | at_lower) if lower == self._upper else at_lower
        self._upper = lower
        return unseen

    def after_last_page(self) -> list[str]:
        in_range = Q()
        if self._gte is not None:
            in_range &= Q(created__gte=self._gte)
        if self._upper is not None:
            in_range &= Q(created__lte=self._upper)
        elif self._lt is not None:  # nothing listed: the whole range went unseen
            in_range &= Q(created__lt=self._lt)
        if self._gte is None and self._lt is None:
            in_range |= Q(created__isnull=True)
        return self._local_ids(in_range, self._at_upper)

    @staticmethod
    def _local_ids(in_range: Q, seen: Iterable[str]) -> list[str]:
        rows = Customer.objects.filter(in_range, stripe_id__isnull=False, deleted=False)
        ids = rows.exclude(stripe_id__in=list(seen)).values_list("stripe_id", flat=True)
        return [stripe_id for stripe_id in ids if stripe_id]


def _created(obj: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(obj["created"]), tz=timezone.utc)


def _check_unseen(client: StripeClient, stripe_ids: list[str], result: PullResult) -> None:
    for stripe_id in dict.fromkeys(stripe_ids):
        result.requests += 1
        try:
            obj = client.customers.retrieve(stripe_id, expand=expansions())
        except InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
            Customer.objects.filter(stripe_id=stripe_id).update(sync_error=_not_found(stripe_id))
            result.errors.append(_not_found(stripe_id))
            continue
        _, outcome = apply_customer(obj)
        if outcome == "deleted":
            result.marked_deleted += 1
        else:  # listed after the pass went by (e.g. created meanwhile): counted all the same
            setattr(result, outcome, getattr(result, outcome) + 1)
