"""Deleting customers: an edit like the others, and erasing what a deleted customer leaves.

``Customer.delete()`` and ``QuerySet.delete()`` (so the admin, its bulk action and the API)
delete outright a row that never reached Stripe (no Stripe id, no request in flight). A row of a
customer that exists in Stripe is kept, flagged ``deleted`` with ``delete_requested_at`` set, and
marked pending: the push sends ``DELETE /v1/customers/{id}`` through the outbox (durable,
idempotent, retried, visible), and the row stays as a tombstone, its owner link intact, so no
pull brings the customer back.

A tombstone keeps the customer's last data unless ``DELETED_KEEP_DATA`` is False; ``erase``
scrubs the personal data (name, email, phone, addresses, shipping, metadata, ...) from the row
and its snapshot of a deleted customer, for data-protection requests. Deleting a tombstone
(or any row of a customer already deleted in Stripe) removes the row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from django.db import models, transaction
from django.utils import timezone

from .bookkeeping import SyncStatus
from .conf import get_setting

if TYPE_CHECKING:
    from .models import Customer

#: What ``erase`` clears (Stripe's personal data about a customer), with its cleared value.
ERASED: Final[Mapping[str, Any]] = {
    "name": None,
    "email": None,
    "phone": None,
    "description": None,
    "address": None,
    "shipping": None,
    "metadata": {},
    "business_name": None,
    "individual_name": None,
    "invoice_settings": None,
    "preferred_locales": [],
    "tax_ids": None,
    "sources": None,
}


@dataclass(frozen=True)
class Deletion:
    """What a delete did: rows removed from the database, rows whose deletion goes to Stripe."""

    removed: int
    requested: int

    def as_django_result(self, label: str) -> tuple[int, dict[str, int]]:
        """``(count, {label: count})``, as Django's ``delete()`` answers."""
        count = self.removed + self.requested
        return count, ({label: count} if count else {})


def delete_rows(queryset: models.QuerySet[Customer]) -> Deletion:
    """Delete these rows: see the module docstring."""
    model = queryset.model
    with transaction.atomic(using=queryset.db):
        rows = queryset.select_for_update().values_list(
            "pk", "stripe_id", "push_intent", "deleted", "delete_requested_at", "sync_status"
        )
        gone, remote, already = [], [], []
        for pk, stripe_id, intent, deleted, requested_at, status in rows:
            if requested_at is not None and status == SyncStatus.PENDING:
                already.append(pk)  # its deletion is on its way to Stripe
            elif deleted or (stripe_id is None and intent is None):
                gone.append(pk)  # a tombstone, or a row that never reached Stripe
            else:
                remote.append(pk)
        removed = 0
        if gone:  # Django's delete: rows of your models pointing at them cascade as declared
            _, by_model = models.QuerySet.delete(model._base_manager.filter(pk__in=gone))
            removed = by_model.get(model._meta.label, 0)
        if remote:  # an edit like the others: marked pending, its push scheduled on commit
            asked = model._default_manager.db_manager(queryset.db).filter(pk__in=remote)
            asked._write_pending(deleted=True, delete_requested_at=timezone.now())
    return Deletion(removed=removed, requested=len(remote) + len(already))


def erase(queryset: models.QuerySet[Customer]) -> int:
    """Scrub personal data from these deleted customers' rows and snapshots; returns how many.
    A customer not deleted in Stripe is refused (``ValueError``): delete it first, or its
    cleared fields would be pushed as edits."""
    model = queryset.model
    live = queryset.filter(deleted=False)
    if live.exists():
        pks = ", ".join(str(pk) for pk in live.values_list("pk", flat=True)[:10])
        raise ValueError(
            f"erase: only customers deleted in Stripe can be erased; delete these first: {pks}"
        )
    count = 0
    with transaction.atomic(using=queryset.db):
        for pk, snapshot in queryset.select_for_update().values_list("pk", "stripe_data"):
            models.QuerySet.update(
                model._base_manager.filter(pk=pk), stripe_data=erased_snapshot(snapshot), **ERASED
            )
            count += 1
    return count


def erased_snapshot(snapshot: Mapping[str, Any] | None) -> dict[str, Any]:
    """What Stripe keeps of a deleted customer: its id, ``object`` and ``deleted``."""
    kept = {key: (snapshot or {})[key] for key in ("id", "object") if key in (snapshot or {})}
    return {**kept, "deleted": True}


def erase_if_configured(queryset: models.QuerySet[Customer]) -> None:
    """After a deletion Stripe confirmed or reported: erase unless ``DELETED_KEEP_DATA``."""
    if not get_setting("DELETED_KEEP_DATA"):
        erase(queryset.filter(deleted=True))
