"""The drift audit: every row of an account compared with Stripe, page by page at the list
limit, and the differences reported; nothing is written.

``sample`` audits about that share of the customers instead: slices of the ``created`` range
holding a page of rows each, chosen at random (so the cost is the sample's, not the account's).
A row with an edit not pushed yet is reported as such, not as a difference.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Final

from ..accounts import Account
from ..bookkeeping import SyncStatus
from ..descriptions import CUSTOMERS
from ..mirror import fields_from_stripe
from ..models import Customer
from . import listing
from .pages import UnseenWindow, as_timestamp

#: Differences kept in a report (all are counted).
KEPT: Final = 1000


class DriftKind(str, Enum):
    NOT_MIRRORED = "not_mirrored"  # in Stripe, no row here
    NOT_LISTED = "not_listed"  # a live row here, not in Stripe's list (deleted, or elsewhere)
    DIFFERENT = "different"  # both, with other values
    PENDING = "pending"  # a local edit not pushed yet: not a drift

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Drift:
    stripe_id: str
    kind: DriftKind
    fields: tuple[str, ...] = ()


@dataclass
class AuditReport:
    account: Account
    compared: int = 0
    counts: Counter[DriftKind] = field(default_factory=Counter)
    drifts: list[Drift] = field(default_factory=list)  # the first ``KEPT``
    requests: int = 0
    seconds: float = 0.0
    sample: float | None = None

    def add(self, drift: Drift) -> None:
        self.counts[drift.kind] += 1
        if len(self.drifts) < KEPT:
            self.drifts.append(drift)

    @property
    def drifted(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind is not DriftKind.PENDING)


def audit(
    account: Account, *, sample: float | None = None, rng: random.Random | None = None
) -> AuditReport:
    """Compare ``account``'s rows with Stripe (all of them, or about ``sample`` of them)."""
    started = time.monotonic()
    report = AuditReport(account, sample=sample)
    windows = [(None, None)] if sample is None else _sample(account, sample, rng or random.Random())
    for gte, lt in windows:
        _audit_range(account, gte, lt, report)
    report.seconds = time.monotonic() - started
    return report


def _audit_range(account: Account, gte: int | None, lt: int | None, report: AuditReport) -> None:
    unseen = UnseenWindow(_datetime(gte), _datetime(lt), account)
    for page in listing.pages(account.client(), gte, lt):
        report.requests += 1
        if not page:
            continue
        rows = Customer.objects.filter(stripe_id__in=[obj["id"] for obj in page], **account.rows)
        known = {row.stripe_id: row for row in rows}
        for obj in page:
            report.compared += 1
            drift = _compare(obj, known.get(obj["id"]))
            if drift is not None:
                report.add(drift)
        for stripe_id in unseen.after_page(page):
            report.add(Drift(stripe_id, DriftKind.NOT_LISTED))
    for stripe_id in unseen.after_last_page():
        report.add(Drift(stripe_id, DriftKind.NOT_LISTED))


def _compare(obj: dict[str, Any], row: Customer | None) -> Drift | None:
    if row is None:
        return Drift(obj["id"], DriftKind.NOT_MIRRORED)
    if row.sync_status == SyncStatus.PENDING:
        return Drift(obj["id"], DriftKind.PENDING)
    remote = fields_from_stripe(obj)
    different = tuple(
        name for name in CUSTOMERS.mirrored if name in remote and getattr(row, name) != remote[name]
    )
    if row.deleted:
        different = ("deleted", *different)
    return Drift(obj["id"], DriftKind.DIFFERENT, different) if different else None


def _sample(account: Account, share: float, rng: random.Random) -> list[tuple[int, int]]:
    """Slices of the ``created`` range of about a page of rows each, chosen at random, holding
    about ``share`` of the account's rows (one slice at least)."""
    created = (
        Customer.objects.filter(**account.rows, stripe_id__isnull=False, created__isnull=False)
        .order_by("created")
        .values_list("created", flat=True)
    )
    total = created.count()
    if total == 0:
        return []
    slices = math.ceil(total / listing.PAGE_SIZE)
    chosen = sorted(rng.sample(range(slices), max(1, round(slices * share))))
    windows = []
    for index in chosen:
        low = as_timestamp(created[index * listing.PAGE_SIZE])
        end = (index + 1) * listing.PAGE_SIZE
        high = as_timestamp(created[end]) if end < total else as_timestamp(created[total - 1]) + 1
        windows.append((low, max(high, low + 1)))
    return windows


def _datetime(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)
