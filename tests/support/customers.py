"""Customers made for a test, and what the emulator was sent for them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.models import QuerySet
from django.test import TestCase

from django_stripe_customers.models import Customer, SyncStatus
from django_stripe_customers.testing import StripeEmulator
from django_stripe_customers.testing.store import LoggedRequest


@contextmanager
def committed() -> Iterator[None]:
    """Run what the block's saves scheduled with ``transaction.on_commit``, as a commit would.

    In a test inside a transaction that is rolled back after it (``django_db`` without
    ``transaction=True``) nothing ever commits, so Django keeps the callbacks (the push of a
    save); this runs them when the block ends, as the block's own commit would. In a
    transactional test (autocommit) each callback has already run at its commit, and this does
    nothing more. Callbacks scheduled inside a block that rolled back were dropped by Django
    and do not run.
    """
    with TestCase.captureOnCommitCallbacks(execute=True):
        yield


def pushed(**fields: Any) -> Customer:
    """A customer saved locally and, its commit pushing it (Celery eager), created in Stripe."""
    with committed():
        customer = Customer.objects.create(**fields)
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED, customer.sync_error
    return customer


def local_only(**fields: Any) -> Customer:
    """A row not in Stripe yet, nothing scheduled to push it: as a plain ``INSERT`` leaves it
    (Django's own ``bulk_create``, not the app's, which schedules the push)."""
    (customer,) = QuerySet.bulk_create(Customer.objects.all(), [Customer(**fields)])
    return customer


def posts(emulator: StripeEmulator) -> list[LoggedRequest]:
    """Every POST the emulator received, oldest first."""
    return [r for r in emulator.requests if r.method == "POST"]
