"""One pass over Stripe's customer list: pages applied in bulk, unlisted rows checked.

A page of 100 is applied with a bounded number of queries (a lock-and-read, then one upsert per
shape of row), memory flat in the number of customers. Rows another transaction holds are
skipped on PostgreSQL and retrieved after the page, so a pull never holds a page's locks while
it waits for one row (and a user's save of another row of the page never waits for the pull).
A row that received newer data while the page was in flight (a push, an event) is left as it
is; one whose order against the page cannot be told (the same second, other data) is retrieved
again (see ``freshness``). Local rows in the range that Stripe did not list are retrieved one
by one, and flagged deleted if Stripe says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Final

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone as django_timezone

from ..accounts import Account
from ..models import Customer
from ..stripe import InvalidRequestError, PageData
from . import listing
from .freshness import Verdict, newest
from .pull import (
    NOT_A_REREAD,
    Applied,
    Fetched,
    in_account,
    is_unchanged,
    merged_values,
    not_found,
    reread,
    status_after_pull,
    verdict_for,
)
from .upsert import upsert

#: Written on every upserted row, besides the mirrored attributes.
_BOOKKEEPING: Final = (
    "stripe_data",
    "deleted",
    "sync_status",
    "sync_error",
    "synced_at",
    "remote_updated_at",
)


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
    account: Account,
    result: PullResult | None = None,
) -> PullResult:
    """One pass over the customers of ``account`` created in ``[created_gte, created_lt)``
    (None: unbounded).

    Counts go into ``result`` when given, so a caller still has them if the pass fails.
    """
    started = time.monotonic()
    result = PullResult() if result is None else result
    one_pass = RangePass(created_gte, created_lt, result, account)
    for page in _pages(account, created_gte, created_lt, result):
        one_pass.apply(page)
        result.seconds = time.monotonic() - started
        if progress is not None:
            progress(result)
    one_pass.finish()
    result.seconds = time.monotonic() - started
    return result


class RangePass:
    """Applying a pass over ``[gte, lt)`` of one account: its pages, newest first, then the
    account's local rows in the range that no page listed (retrieved one by one; flagged when
    Stripe says deleted). Rows of other accounts are never looked at."""

    def __init__(
        self, gte: int | None, lt: int | None, result: PullResult, account: Account
    ) -> None:
        self.result, self.account = result, account
        self._window = UnseenWindow(_datetime(gte), _datetime(lt), account)
        self._unseen: list[str] = []

    def apply(self, page: PageData) -> None:
        rereads = _upsert_page(page, self.result, self.account)
        _reread_rows(self.account, rereads, self.result)
        self._unseen += self._window.after_page(page)

    def narrow(self, gte: int) -> None:
        """The pass now ends at ``gte``: what is older is another pass's (a split)."""
        self._window.narrow(_datetime(gte))

    def finish(self) -> None:
        self._unseen += self._window.after_last_page()
        _check_unseen(self.account, self._unseen, self.result)
        self._unseen = []


def as_timestamp(value: int | datetime) -> int:
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


def _datetime(value: int | datetime | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(as_timestamp(value), tz=timezone.utc)


def _pages(
    account: Account, created_gte: int | None, created_lt: int | None, result: PullResult
) -> Iterator[PageData]:
    """Non-empty pages of the customer list, counting requests; one page in memory at a time."""
    for data in listing.pages(account.client(), created_gte, created_lt):
        result.requests += 1
        if data:
            result.pages += 1
            yield data


def _upsert_page(page: PageData, result: PullResult, account: Account) -> list[tuple[str, object]]:
    """Apply one page of ``account`` with a bounded number of queries (a lock-and-read, then
    one upsert per shape); returns the (Stripe id, ``synced_at``) of the rows to retrieve
    again. An id held by a row of another account or mode is reported, not written."""
    now = django_timezone.now()
    fetched = Fetched.of(page)
    ids = [obj["id"] for obj in page]
    rereads: list[tuple[str, object]] = []
    with transaction.atomic():
        known, busy = lock_page_rows(ids)
        rereads.extend(busy)  # held by another transaction: retrieved alone after the page
        skipped = {stripe_id for stripe_id, _ in busy}
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for obj in page:
            if obj["id"] in skipped:
                continue
            customer = known.get(obj["id"])
            if customer is not None and not in_account(customer, account):
                result.errors.append(elsewhere(obj["id"], customer, account))
                continue
            if customer is not None:
                verdict = verdict_for(customer, obj, fetched, NOT_A_REREAD)
                if verdict is Verdict.REREAD:
                    rereads.append((obj["id"], customer.synced_at))
                    continue
                if verdict is Verdict.STALE:  # newer data arrived while the page was in flight
                    result.unchanged += 1
                    continue
            values = merged_values(customer, obj)
            if customer is not None and is_unchanged(customer, obj, values):
                result.unchanged += 1
                continue
            if customer is None:
                result.created += 1
            else:
                result.updated += 1
            row = {
                **values,
                **account.rows,
                "stripe_id": obj["id"],
                "stripe_data": obj,
                # listed, so alive in Stripe; a deletion asked here stays until it is sent
                "deleted": customer is not None and customer.delete_requested_at is not None,
                "sync_status": status_after_pull(customer),
                "sync_error": "",
                "synced_at": now,
                "remote_updated_at": newest(
                    customer.remote_updated_at if customer else None, fetched.observed
                ),
            }
            by_columns.setdefault(tuple(sorted(values)), []).append(row)
        # Rows of one page nearly always carry the same attributes: one upsert per shape.
        for columns, rows in by_columns.items():
            upsert(Customer, rows, update=(*columns, *_BOOKKEEPING))
    return rereads


def lock_page_rows(ids: list[str]) -> tuple[dict[str, Customer], list[tuple[str, object]]]:
    """The page's rows, locked; and (Stripe id, ``synced_at``) of those another transaction
    holds. On PostgreSQL those are skipped (``SKIP LOCKED``) rather than waited for: the page
    would hold its other rows' locks meanwhile, and a user's save of any of them would wait
    too. SQLite has one writer at a time, so nothing is held by another."""
    rows = Customer.objects.select_for_update(
        skip_locked=connection.features.has_select_for_update_skip_locked
    ).filter(stripe_id__in=ids)
    known = {str(customer.stripe_id): customer for customer in rows}
    if len(known) == len(ids) or not connection.features.has_select_for_update_skip_locked:
        return known, []
    others = Customer.objects.filter(stripe_id__in=set(ids) - set(known))
    return known, [(str(sid), seen) for sid, seen in others.values_list("stripe_id", "synced_at")]


def _reread_rows(account: Account, rereads: list[tuple[str, object]], result: PullResult) -> None:
    """Retrieve rows one by one (``seen`` as in ``reread``) and count their outcome."""
    for stripe_id, seen in rereads:
        try:
            outcome = reread(stripe_id, seen, account=account)
        except InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
            result.requests += 1
            result.errors.append(not_found(stripe_id, account))
            continue
        result.requests += outcome.requests
        _count(result, outcome.outcome)


def _count(result: PullResult, outcome: Applied) -> None:
    if outcome is Applied.DELETED:
        result.marked_deleted += 1
    elif outcome is Applied.CREATED:
        result.created += 1
    elif outcome is Applied.UPDATED:
        result.updated += 1
    else:  # unchanged, or stale: the row already had this or newer data
        result.unchanged += 1


class UnseenWindow:
    """Finds local rows a pass over ``[gte, lt)`` did not see, with memory bounded by a page.

    Stripe lists newest first, so each page covers a range of ``created`` times. Local rows in
    ``(oldest on this page, oldest on the previous page]`` that were not listed were not seen.
    Rows created in the very second at a boundary may sit on either side of it: the ids listed
    at that second are carried over (their number bounds the memory used).
    """

    def __init__(self, gte: datetime | None, lt: datetime | None, account: Account) -> None:
        self._gte, self._lt, self._account = gte, lt, account
        self._upper: datetime | None = None
        self._at_upper: set[str] = set()

    def narrow(self, gte: datetime | None) -> None:
        self._gte = gte

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
        if self._gte is None and self._lt is None and self._upper is not None:
            in_range |= Q(created__isnull=True)  # (with no bound at all, Q() is every row)
        return self._local_ids(in_range, self._at_upper)

    def _local_ids(self, in_range: Q, seen: Iterable[str]) -> list[str]:
        rows = Customer.objects.filter(
            in_range, stripe_id__isnull=False, deleted=False, **self._account.rows
        )
        ids = rows.exclude(stripe_id__in=list(seen)).values_list("stripe_id", flat=True)
        return [stripe_id for stripe_id in ids if stripe_id]


def _created(obj: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(obj["created"]), tz=timezone.utc)


def _check_unseen(account: Account, stripe_ids: list[str], result: PullResult) -> None:
    """Retrieve the rows the pass did not see: deleted upstream, or listed after it went by."""
    _reread_rows(
        account, [(stripe_id, NOT_A_REREAD) for stripe_id in dict.fromkeys(stripe_ids)], result
    )


def elsewhere(stripe_id: str, customer: Customer, account: Account) -> str:
    """Why a listed customer was not written: its id is a row of another account."""
    holder = Account(customer.stripe_account, customer.livemode)
    return (
        f"{stripe_id} was listed in {account}, but row {customer.pk} holds it for {holder}: "
        "not written; check ACCOUNTS."
    )
