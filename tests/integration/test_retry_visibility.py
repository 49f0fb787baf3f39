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
from django_stripe_customers.stripe import APIError
from django_stripe_customers.tasks import push_customer_task
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
    customer.refresh_from_db()
    task_id = customer.push_intent["owner"].removeprefix("task-")

    with committed():  # the task's retry, once its countdown is over (Celery is eager here)
        push_customer_task.apply((customer.pk,), task_id=task_id).get()

    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED
    assert (customer.sync_error, customer.next_attempt_at) == ("", None)


def test_a_task_out_of_retries_hands_its_request_to_the_next_push(proxy, stripe_settings):
    """Without it the request stayed held by a task that would never run again, and every push
    of the row waited out PUSH_LEASE (110 s by default)."""
    proxy.enqueue(*[STATUS(503)] * 20)
    with committed():
        customer = Customer.objects.create(email="handed@example.com")
    customer.refresh_from_db()
    key, task_id = customer.push_intent["key"], customer.push_intent["owner"][len("task-") :]
    with pytest.raises(APIError):  # its last try (retries == max_retries) fails too
        push_customer_task.apply((customer.pk,), task_id=task_id, retries=5, throw=True)
    customer.refresh_from_db()
    assert customer.next_attempt_at is not None, "the sweep's turn, and when"
    proxy.clear()

    with committed():
        customer.name = "Next"
        customer.save()

    creates = [r for r in proxy.requests if r.method == "POST" and r.path == "/v1/customers"]
    assert [r.idempotency_key for r in creates] == [key], "resent at once, with its key"
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED and customer.name == "Next"
    assert stripe_settings.customers[customer.stripe_id]["name"] == "Next"
