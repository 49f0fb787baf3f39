"""Each Celery task, called as Celery calls it (``.apply()``: eager, in this process), against
the emulator; the retry policy they share with the client, through the fault proxy."""

from __future__ import annotations

import time

import pytest
from celery.exceptions import Retry

from django_stripe_customers.models import Customer, PullRun, SyncStatus, WebhookEvent
from django_stripe_customers.stripe import InvalidRequestError
from django_stripe_customers.sync.events import store_event
from django_stripe_customers.tasks import (
    TASK_RETRY_INITIAL,
    TASK_RETRY_MAX,
    catch_up_events_task,
    process_pending_events_task,
    process_webhook_event_task,
    pull_all_task,
    pull_customer_task,
    pull_slice_task,
    push_customer_task,
    push_pending_task,
)
from tests.support.faultproxy import STATUS
from tests.support.stripe_servers import settings_through_proxy

pytestmark = pytest.mark.django_db


@pytest.fixture
def quiet(stripe_settings, settings):
    """No push on save: the tests run the tasks themselves."""
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    return stripe_settings


@pytest.fixture
def proxy(stripe_settings, settings):
    with settings_through_proxy(
        settings, stripe_settings.url, MAX_RETRIES=0, PUSH_ON_SAVE=False
    ) as faults:
        yield faults


def test_pull_customer_task_returns_the_rows_pk(quiet):
    (stripe_id,) = quiet.seed(1)
    pk = pull_customer_task.apply(args=(stripe_id,)).get()
    assert Customer.objects.get(pk=pk).stripe_id == stripe_id


def test_pull_customer_task_does_not_retry_a_404(quiet):
    with pytest.raises(InvalidRequestError) as failed:
        pull_customer_task.apply(args=("cus_missing",))
    assert failed.value.http_status == 404
    assert quiet.count("GET", "/v1/customers/cus_missing") == 1, "not retried"


@pytest.mark.django_db(transaction=True)  # the slices are sent once the run's row commits
def test_pull_all_task_runs_one_pass_or_hands_out_slices(quiet):
    quiet.seed(300, spacing=600)
    assert pull_all_task.apply().get()["created"] == 300

    answer = pull_all_task.apply(kwargs={"partitions": 3}).get()
    run = PullRun.objects.get(pk=answer["pull_run"])
    assert answer["partitions"] == run.partitions == run.partitions_done > 3
    assert (run.status, run.unchanged) == ("succeeded", 300)


def test_pull_slice_task_reports_into_its_run(quiet):
    quiet.seed(5)
    run = PullRun.objects.create(partitions=1)
    pull_slice_task.apply(args=(0, 2**31, run.pk)).get()
    run.refresh_from_db()
    assert (run.status, run.created) == ("succeeded", 5)


def test_push_customer_task_pushes_and_pushes_again_what_was_saved_meanwhile(quiet):
    customer = Customer.objects.create(email="task@example.com")
    assert push_customer_task.apply(args=(customer.pk,)).get() == "created"
    assert Customer.objects.get().sync_status == SyncStatus.SYNCED
    assert push_customer_task.apply(args=(customer.pk,)).get() == "unchanged"


def test_push_pending_task_sends_overdue_rows(quiet, settings):
    Customer.objects.create(email="overdue@example.com")
    assert push_pending_task.apply(kwargs={"older_than": 3600}).get() == 0
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": True}
    assert push_pending_task.apply(kwargs={"older_than": 0}).get() == 1
    assert Customer.objects.get().sync_status == SyncStatus.SYNCED


def test_webhook_event_tasks_apply_stored_events(quiet):
    remote = quiet.seed(1)
    payload = {
        "id": "evt_task_1",
        "object": "event",
        "type": "customer.updated",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": remote[0], "object": "customer", "name": "From the event"}},
    }
    event, _ = store_event(payload)
    assert process_webhook_event_task.apply(args=(event.pk,)).get() == "processed"
    assert Customer.objects.get().name == "From the event"

    second, _ = store_event({**payload, "id": "evt_task_2"})
    WebhookEvent.objects.filter(pk=second.pk).update(received_at="2000-01-01T00:00:00Z")
    assert process_pending_events_task.apply(kwargs={"older_than": 60}).get() == 1
    assert WebhookEvent.objects.get(pk=second.pk).status in ("processed", "stale")


def test_catch_up_events_task_stores_and_applies(quiet):
    since = int(time.time()) - 60
    Customer.objects.create(email="caught@example.com")
    push_customer_task.apply(args=(Customer.objects.get().pk,)).get()
    WebhookEvent.objects.all().delete()

    counts = catch_up_events_task.apply(args=(since,)).get()

    assert counts["listed"] == counts["stored"] == 1
    assert counts["processed"] + counts["stale"] == 1


# -- the retry policy, shared with the client --------------------------------------------------


def test_a_transient_error_is_retried_with_the_policys_backoff(proxy):
    customer = Customer.objects.create(email="retry@example.com")
    proxy.enqueue(STATUS(503, method="POST"))

    with pytest.raises(Retry) as retried:
        push_customer_task.apply(args=(customer.pk,), throw=True)

    assert TASK_RETRY_INITIAL * 0.75 <= retried.value.when <= TASK_RETRY_INITIAL
    assert Customer.objects.get().push_intent is not None, "kept, to be resent with its key"


def test_stripe_should_retry_false_is_obeyed_by_the_task_too(proxy):
    customer = Customer.objects.create(email="no-retry@example.com")
    proxy.enqueue(STATUS(503, method="POST", headers={"Stripe-Should-Retry": "false"}))

    # Stripe says another try will not help: not transient, for the client, the push and the
    # task alike (the push used to raise it as transient; the task then did not retry it)
    assert push_customer_task.apply(args=(customer.pk,), throw=True).get() == "failed"
    assert len([r for r in proxy.requests if r.method == "POST"]) == 1
    customer.refresh_from_db()
    assert customer.sync_status == "failed" and "HTTP 503" in customer.sync_error


def test_retry_after_is_honoured_up_to_the_tasks_cap(proxy):
    customer = Customer.objects.create(email="later@example.com")
    proxy.enqueue(STATUS(429, method="POST", headers={"Retry-After": "42"}))

    with pytest.raises(Retry) as retried:
        push_customer_task.apply(args=(customer.pk,), throw=True)

    assert 42 <= retried.value.when <= TASK_RETRY_MAX
