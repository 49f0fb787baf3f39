"""How a row records that it holds a local edit for Stripe: its status, and the columns a local
write sets besides the edited ones.

Every way a project writes a Customer (``save()``, ``bulk_create``, ``bulk_update``,
``QuerySet.update()``) marks the row the same way, in the statement that writes it: status
``pending``, ``local_version`` one newer (so concurrent writes never share a version, and the
push knows which edits Stripe has), ``pending_since`` kept if already set (the sweep and the
admin's notice measure how long a row has waited from it).
"""

from __future__ import annotations

from typing import Any, Final

from django.db import models
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SyncStatus(models.TextChoices):
    SYNCED = "synced", _("synced")
    PENDING = "pending", _("pending push")
    FAILED = "failed", _("failed")


#: Bookkeeping a local write sets besides the edited fields.
SAVE_TRACKING_FIELDS: Final = ("sync_status", "local_version", "pending_since")

#: Columns only the sync code writes (with ``write_from_stripe``/``bulk_create``); a ``save()``
#: of an existing row never does, so an instance kept across a push cannot undo what it wrote.
SYNC_COLUMNS: Final[frozenset[str]] = frozenset(
    {
        "stripe_id",
        "stripe_data",
        "deleted",
        "synced_at",
        "sync_error",
        "pushed_version",
        "push_intent",
        "next_attempt_at",
        "delete_requested_at",
        "push_params",
        "remote_updated_at",
        *SAVE_TRACKING_FIELDS,
    }
)

#: Sent (sender ``Customer``, ``pks``) when rows were marked pending outside ``save()``
#: (``bulk_create``, ``bulk_update``, ``QuerySet.update()``, ``mark_pending``): the receivers
#: schedule their push once the transaction commits, as after a save.
marked_pending = Signal()


def pending_update() -> dict[str, Any]:
    """The bookkeeping of a local edit, as expressions for an ``UPDATE`` of existing rows."""
    return {
        "sync_status": SyncStatus.PENDING,
        "local_version": F("local_version") + 1,
        "pending_since": Coalesce(
            F("pending_since"), Value(timezone.now(), output_field=DateTimeField())
        ),
    }
