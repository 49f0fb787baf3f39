"""``Customer.objects``: every way Django writes rows reaches Stripe, and the owner's customer.

``save()`` marks its row pending (``receivers``). Django's bulk writes send no signal, so here
they do the same themselves, in the statement that writes the rows (``bookkeeping``):

- ``bulk_create``: new rows are pending with ``pending_since`` set (the sweep and the admin's
  notice see them) and their pushes are scheduled on commit;
- ``bulk_update`` and ``QuerySet.update()`` of attributes Stripe takes (``schema.PUSHABLE``):
  the rows are marked pending, one version newer, and pushed on commit. Values are checked
  first, as a save's are: nothing invalid is written.

The sync code writes what Stripe sent with ``write_from_stripe``, which marks nothing (a pull
must never echo back to Stripe). ``delete()`` deletes in Stripe (``deletion``); ``forget()``
removes rows from the mirror only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.db import models, transaction
from django.utils import timezone

from . import schema
from .accounts import Account
from .bookkeeping import SYNC_COLUMNS, SyncStatus, marked_pending, pending_update
from .deletion import delete_rows, erase
from .owners import EmailMatch, customer_for_owner
from .saved_fields import remember, tracked_fields
from .validation import validate_customer_fields

if TYPE_CHECKING:
    from .models import Customer

_PUSHABLE = frozenset(schema.PUSHABLE)


def _is_expression(value: Any) -> bool:
    return hasattr(value, "resolve_expression")


class CustomerQuerySet(models.QuerySet["Customer"]):
    def update(self, **kwargs: Any) -> int:
        """``QuerySet.update()``; when it writes attributes Stripe takes, the rows are marked
        pending in the same statement and pushed once the transaction commits."""
        edited = _PUSHABLE.intersection(kwargs)
        if not edited:
            return super().update(**kwargs)
        validate_customer_fields(
            {name: kwargs[name] for name in edited if not _is_expression(kwargs[name])}
        )
        return self._write_pending(**kwargs)

    update.alters_data = True  # type: ignore[attr-defined]

    def _write_pending(self, **columns: Any) -> int:
        """One ``UPDATE`` of ``columns`` (bookkeeping given there wins) that also marks these
        rows as edited locally; their pushes are scheduled for the commit. The one way rows are
        marked outside ``save()``: ``update()``, ``mark_pending()``, a deletion asked here."""
        with transaction.atomic(using=self.db):
            pks = list(self.values_list("pk", flat=True))
            count = models.QuerySet.update(self, **{**pending_update(), **columns})
        marked_pending.send(sender=self.model, pks=pks, using=self.db)
        return count

    def create(self, **kwargs: Any) -> Customer:
        """``create()``; ``stripe_params=`` as ``save(stripe_params=...)`` takes them."""
        stripe_params = kwargs.pop("stripe_params", None)
        customer = self.model(**kwargs)
        customer.save(force_insert=True, using=self.db, stripe_params=stripe_params)
        return customer

    def write_from_stripe(self, **kwargs: Any) -> int:
        """An ``UPDATE`` of what Stripe sent (the pull and the push's answer): never pushed."""
        return super().update(**kwargs)

    write_from_stripe.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs: Iterable[Customer], *args: Any, **kwargs: Any) -> list[Customer]:
        """``bulk_create``; rows made locally (status pending, as a new row is) are checked as
        a save is, marked pending and pushed once the transaction commits. Rows written with
        another status (the pull's) are left as they are."""
        objs = list(objs)
        update_fields = kwargs.get("update_fields") or (args[3] if len(args) > 3 else None)
        if _PUSHABLE.intersection(update_fields or ()):
            raise ValueError(
                "Customer.objects.bulk_create(update_conflicts=True) cannot update attributes "
                "Stripe takes: the rows it updates would not be pushed. Create new rows with "
                "bulk_create and change existing ones with bulk_update."
            )
        local = [obj for obj in objs if obj.sync_status == SyncStatus.PENDING]
        now = timezone.now()
        for obj in local:
            obj.requested_edit()  # raises ValidationError naming the field, before any write
        for obj in local:
            obj.pending_since = obj.pending_since or now
            obj.local_version = max(obj.local_version or 0, 1)
        created = super().bulk_create(objs, *args, **kwargs)
        fields = tracked_fields(self.model, SYNC_COLUMNS)
        for obj in objs:
            remember(obj, fields, replace=True)
        pks = [obj.pk for obj in local if obj.pk is not None]  # None: the sweep finds them
        if pks:
            marked_pending.send(sender=self.model, pks=pks, using=self.db)
        return created

    def bulk_update(
        self, objs: Iterable[Customer], fields: Iterable[str], batch_size: int | None = None
    ) -> int:
        """``bulk_update``; when ``fields`` has attributes Stripe takes, the values are checked
        first and the rows marked pending and pushed once the transaction commits."""
        objs, fields = list(objs), list(fields)
        refused = sorted(set(fields) & SYNC_COLUMNS)
        if refused:
            raise ValueError(
                f"bulk_update() cannot write {', '.join(refused)}: the sync with Stripe writes "
                "these columns."
            )
        edited = _PUSHABLE.intersection(fields)
        if not edited:
            return super().bulk_update(objs, fields, batch_size)
        for obj in objs:
            validate_customer_fields({name: getattr(obj, name) for name in edited})
        # Django's bulk_update writes with this queryset's update(), which marks the rows
        # pending and schedules their pushes (one statement per batch).
        count = super().bulk_update(objs, fields, batch_size)
        written = [f for f in tracked_fields(self.model, SYNC_COLUMNS) if f.name in fields]
        for obj in objs:
            remember(obj, written)
        return count

    def delete(self) -> tuple[int, dict[str, int]]:
        """Delete these customers in Stripe (through the outbox), keeping their rows as
        tombstones; rows that never reached Stripe, and tombstones, are removed (``deletion``)."""
        return delete_rows(self).as_django_result(self.model._meta.label)

    delete.alters_data = True  # type: ignore[attr-defined]
    delete.queryset_only = True  # type: ignore[attr-defined]

    def forget(self) -> tuple[int, dict[str, int]]:
        """Remove these rows from the mirror only: Stripe keeps the customers, and the next
        pull brings back those it still has (under new pks, unlinked)."""
        return models.QuerySet.delete(self)

    forget.alters_data = True  # type: ignore[attr-defined]

    def erase(self) -> int:
        """Scrub personal data from these customers deleted in Stripe (``deletion.erase``)."""
        return erase(self)

    erase.alters_data = True  # type: ignore[attr-defined]

    def mark_pending(self) -> int:
        """Mark these rows as edited locally and schedule their push (for rows changed by raw
        SQL, which nothing here sees); returns how many rows were marked."""
        return self._write_pending()


_BaseCustomerManager = models.Manager.from_queryset(CustomerQuerySet)


class CustomerManager(_BaseCustomerManager["Customer"]):
    def mark_pending(self, queryset: models.QuerySet[Customer] | None = None) -> int:
        """``Customer.objects.mark_pending(qs)``: push rows changed by raw SQL."""
        rows = self.all() if queryset is None else self.filter(pk__in=queryset.values("pk"))
        return rows.mark_pending()

    def for_owner(
        self,
        owner: Any,
        *,
        defaults: Mapping[str, Any] | None = None,
        email_match: EmailMatch | str | None = None,
        account: Account | None = None,
    ) -> Customer:
        """The owner's (a user's) live customer in ``account`` (by default the default one):
        linked, else an unlinked one with the owner's email as ``OWNER_EMAIL_MATCH`` says,
        else created and pushed (``owners``). Two calls at once for one owner make one
        customer."""
        customer, _created = customer_for_owner(
            self.model,
            owner,
            defaults=defaults,
            email_match=email_match,
            using=self._db,
            account=account,
        )
        return customer
