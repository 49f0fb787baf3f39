"""A push that Stripe did not take yet says so: its last error and its next attempt, in the row,
the admin's sync panel and ``stripe_customers status``.

Reported (issue 19): while a push retried after transient failures, ``sync_error`` was empty and
the admin said "Last error: none"; only the log knew.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_stripe_customers.models import Customer, SyncStatus
from tests.support.admin_pages import change_url
from tests.support.customers import committed
from tests.support.faultproxy import STATUS
from tests.support.stripe_servers import settings_through_proxy

pytestmark = pytest.mark.django_db


@pytest.fixture
def proxy(stripe_settings, settings):
    with settings_through_proxy(settings, stripe_settings.url, MAX_RETRIES=0) as proxy:
        yield proxy


def test_a_push_stripe_does_not_take_records_why_and_when_it_is_tried_next(proxy):
    proxy.enqueue(*[STATUS(503)] * 20)  # every try of the task (Celery eager) is refused
    before = timezone.now()
    with committed():
        customer = Customer.objects.create(email="retry@example.com")

    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.PENDING
    assert customer.sync_error.startswith("Stripe did not take the change yet (HTTP 503")
    assert customer.next_attempt_at is not None and customer.next_attempt_at > before


def test_the_admin_and_status_show_the_error_and_the_next_attempt(proxy, admin_client):
    proxy.enqueue(*[STATUS(503)] * 20)
    with committed():
        customer = Customer.objects.create(email="shown@example.com")
    customer.refresh_from_db()

    page = admin_client.get(change_url(customer)).content.decode()
    out = io.StringIO()
    call_command("stripe_customers", "status", stdout=out)

    assert (
        "Last error" in page
        and "HTTP 503" in page
        and "none" not in page.split("Last error")[1][:80]
    )
    assert "Next attempt" in page
    status = out.getvalue()
    assert "retrying: 1 push Stripe did not take yet" in status
    assert f"{customer.pk}: next attempt {customer.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC" in status
    assert "HTTP 503" in status


def test_the_error_and_the_next_attempt_are_cleared_once_stripe_takes_it(proxy):
    proxy.enqueue(*[STATUS(503)] * 20)
    with committed():
        customer = Customer.objects.create(email="later@example.com")
    proxy.clear()

    with committed():
        customer.name = "Now"
        customer.save()

    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED
    assert (customer.sync_error, customer.next_attempt_at) == ("", None)
