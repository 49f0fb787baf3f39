"""The reconcile's pages of events: listed in several streams (``sync/event_listing.py``) and
stored and applied a page at a time (``sync/event_batch.py``), over real HTTP to the emulator.

The emulator's clock is set back an hour while the mirror is first synced and the changes are
made, a second apart where a test needs its events spread over time (as a day's changes are),
so that Stripe's times stay behind ours, as they are."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from django_stripe_customers.accounts import default_account
from django_stripe_customers.clients import get_client
from django_stripe_customers.models import Customer, StripeAccount, WebhookEvent
from django_stripe_customers.sync.event_batch import apply_page
from django_stripe_customers.sync.reconcile import Route, reconcile
from tests.support.faultproxy import STATUS
from tests.support.stripe_servers import settings_through_proxy

pytestmark = pytest.mark.django_db


@pytest.fixture
def past(stripe_settings):
    """Ten customers mirrored by a first reconcile, an hour ago on Stripe's clock."""
    stripe_settings.clock.set(int(time.time()) - 3600)
    ids = stripe_settings.seed(10)
    get_client().customers.update(ids[0], {"name": "Before"})  # the cursor: an event id
    first = reconcile(default_account())
    assert first.route is Route.FULL_PULL and state().events_cursor
    return stripe_settings, ids


def state() -> StripeAccount:
    return StripeAccount.objects.get(stripe_account=None, livemode=False)


def event_requests(emulator, since: int) -> list[dict]:
    return [r.params for r in emulator.requests[since:] if r.path == "/v1/events"]


@pytest.mark.parametrize(
    ("step", "sliced"),
    [(2, True), (0, False)],
    ids=["spread over 16 seconds: slices of time", "within a second: two chains"],
)
def test_events_are_listed_in_streams_and_applied(past, step, sliced):
    emulator, ids = past
    client = get_client()
    last: dict[str, str] = {}
    emulator.clock.advance(1)
    for batch in range(8):  # 8 batches of 60 edits: 480 events, 5 pages
        emulator.clock.advance(step)
        for n in range(60):
            stripe_id = ids[n % 10]
            last[stripe_id] = f"Batch {batch} edit {n}"
            client.customers.update(stripe_id, {"name": last[stripe_id]})
    newest = emulator.events[-1]["id"]
    before = len(emulator.requests)

    report = reconcile(default_account(), parallel=4)

    assert report.route is Route.EVENTS and report.failed == 0
    assert dict(Customer.objects.values_list("stripe_id", "name")) == last
    assert state().events_cursor == newest
    listed = event_requests(emulator, before)
    assert len(listed) == report.requests
    slices = [query for query in listed if "lt" in query.get("created", {})]
    assert bool(slices) is sliced
    if not sliced:  # one chain up from the page after the cursor, one down from the newest
        assert sum("ending_before" in query for query in listed) >= 2
        assert sum("starting_after" in query for query in listed) >= 1
        # 5 pages: the two ends, the 3 between by two chains (the page where they meet is
        # listed by both), and one more when a chain runs ahead while the other's page is on
        # its way (seen in CI on a slow machine: 7).
        assert report.requests <= 7, "two pages, then two chains of about 2 pages each"
    assert report.listed >= 480, "every event listed (those at slice edges twice)"
    stored = WebhookEvent.objects.filter(source="events_api", type="customer.updated")
    assert stored.count() == 480, "each event stored once"
    assert not stored.filter(status="received").exists(), "each one applied or stale"
    assert report.applied["customer.updated"] + report.stale >= 480

    again = reconcile(default_account(), parallel=4)
    # Nothing after it: the page after the cursor and the newest page, asked at once.
    assert (again.listed, again.applied, again.requests) == (0, {}, 2)
    assert (reconcile(default_account()).requests, state().events_cursor) == (1, newest)


def test_one_stream_and_four_give_the_same_rows(past):
    emulator, ids = past
    client = get_client()
    for second in range(4):
        emulator.clock.advance(1)
        for n in range(40):
            client.customers.update(ids[n % 10], {"email": f"s{second}n{n}@example.com"})
        client.customers.create({"email": f"new{second}@example.com"})
    client.customers.delete(ids[9])
    cursor = (state().events_cursor, state().events_cursor_at)

    reconcile(default_account(), parallel=4)
    four = sorted(Customer.objects.values_list("stripe_id", "email", "deleted"))
    with connection.cursor() as sql:  # an empty mirror again, nothing sent to Stripe
        sql.execute(f"DELETE FROM {Customer._meta.db_table}")
    WebhookEvent.objects.all().delete()
    StripeAccount.objects.update(events_cursor=cursor[0], events_cursor_at=cursor[1])

    reconcile(default_account(), parallel=1)
    one = sorted(Customer.objects.values_list("stripe_id", "email", "deleted"))

    assert four == one
    assert Customer.objects.get(stripe_id=ids[9]).deleted is True
    assert Customer.objects.filter(email__startswith="new").count() == 4


def test_per_customer_the_newest_event_of_a_page_is_applied_and_the_others_are_stale(past):
    emulator, ids = past
    client = get_client()
    emulator.clock.advance(1)
    for n in range(5):
        client.customers.update(ids[1], {"name": f"Edit {n}"})
    emulator.clock.advance(1)
    client.customers.update(ids[2], {"name": "Edited, then deleted"})
    client.customers.delete(ids[2])
    made = client.customers.create({"email": "brief@example.com", "name": "Brief"})
    client.customers.delete(made["id"])

    report = reconcile(default_account())

    assert Customer.objects.get(stripe_id=ids[1]).name == "Edit 4"
    assert Customer.objects.get(stripe_id=ids[2]).deleted is True
    brief = Customer.objects.get(stripe_id=made["id"])
    assert (brief.deleted, brief.email) == (True, "brief@example.com"), "its data is kept"
    statuses = Counter(
        WebhookEvent.objects.filter(source="events_api").values_list("status", flat=True)
    )
    assert statuses == {"processed": 3, "stale": 6}, statuses
    assert report.applied == {"customer.updated": 1, "customer.deleted": 2}
    assert report.stale == 6


def test_a_deletion_of_a_customer_never_mirrored_leaves_a_tombstone(past):
    emulator, _ids = past
    made = get_client().customers.create({"email": "gone@example.com"})
    WebhookEvent.objects.all().delete()
    creation = emulator.events[-1]["id"]
    StripeAccount.objects.update(events_cursor=creation)
    get_client().customers.delete(made["id"])  # the creation is before the cursor

    reconcile(default_account())

    row = Customer.objects.get(stripe_id=made["id"])
    assert row.deleted is True and row.email in ("", None), "a tombstone: no data to keep"


def test_an_event_that_fails_keeps_the_cursor_and_is_applied_by_the_next_reconcile(past, settings):
    emulator, ids = past
    emulator.clock.advance(1)
    get_client().customers.update(ids[3], {"name": "Refetched"})
    cursor = state().events_cursor
    with settings_through_proxy(settings, emulator.url, WEBHOOK_REFETCH=True, MAX_RETRIES=0) as (
        proxy
    ):
        proxy.enqueue(STATUS(500, method="GET", path=f"/v1/customers/{ids[3]}"))

        failed = reconcile(default_account())

        assert (failed.route, failed.failed, failed.applied) == (Route.EVENTS, 1, {})
        assert state().events_cursor == cursor, "the cursor waits for the failed event"
        event = WebhookEvent.objects.get(customer_stripe_id=ids[3], type="customer.updated")
        assert event.status == "failed" and "500" in event.error

        retried = reconcile(default_account())

    assert retried.applied == {"customer.updated": 1} and retried.failed == 0
    assert Customer.objects.get(stripe_id=ids[3]).name == "Refetched"
    assert state().events_cursor == emulator.events[-1]["id"]


@override_settings(TIME_ZONE="Pacific/Auckland")
def test_the_cursor_holds_across_restarts_under_a_non_utc_time_zone(past):
    emulator, ids = past
    emulator.clock.advance(1)
    get_client().customers.update(ids[4], {"name": "Auckland"})
    reconcile(default_account(), parallel=4)
    saved = state()

    emulator.clock.advance(1)
    get_client().customers.update(ids[5], {"name": "Later"})
    report = reconcile(default_account(), parallel=4)  # a fresh read of the stored cursor

    assert report.route is Route.EVENTS and report.applied == {"customer.updated": 1}
    assert state().events_cursor_at > saved.events_cursor_at
    assert Customer.objects.get(stripe_id=ids[5]).name == "Later"


@pytest.mark.django_db(transaction=True)
def test_a_row_another_transaction_holds_is_applied_alone_once_it_is_released(stripe_settings):
    """Two connections: a thread holds one row's lock while the reconcile applies its page."""
    if not connection.features.has_select_for_update_skip_locked:
        pytest.skip("SQLite has one writer: no row is ever held by another transaction")
    stripe_settings.clock.set(int(time.time()) - 3600)
    ids = stripe_settings.seed(5)
    get_client().customers.update(ids[0], {"name": "Before"})
    reconcile(default_account())
    stripe_settings.clock.advance(1)
    for stripe_id in ids:
        get_client().customers.update(stripe_id, {"name": f"After {stripe_id}"})
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Customer.objects.select_for_update().get(stripe_id=ids[2])
                held.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    released_at = []

    def let_go() -> None:
        released_at.append(timezone.now())
        release.set()

    threading.Timer(0.5, let_go).start()
    report = reconcile(default_account())
    holder.join()

    assert report.applied == {"customer.updated": 5} and report.failed == 0
    assert dict(Customer.objects.values_list("stripe_id", "name")) == {
        stripe_id: f"After {stripe_id}" for stripe_id in ids
    }
    applied_at = dict(
        WebhookEvent.objects.filter(source="events_api", type="customer.updated")
        .exclude(customer_stripe_id=ids[0], payload__data__object__name="Before")
        .values_list("customer_stripe_id", "processed_at")
    )
    others = [applied_at[i] for i in ids if i != ids[2]]
    assert all(at < released_at[0] for at in others), "the page did not wait for the held row"
    assert applied_at[ids[2]] >= released_at[0], "the held row: alone, once released"


def test_a_page_with_an_event_that_is_not_one_applies_the_others_and_names_it(past):
    emulator, ids = past
    emulator.clock.advance(1)
    get_client().customers.update(ids[6], {"name": "Fine"})
    good = emulator.events[-1]
    broken = {"id": "evt_Broken0000000000000", "object": "event", "created": good["created"]}

    outcome = apply_page([good, broken], default_account())

    assert outcome.applied == {"customer.updated": 1} and outcome.failed == 1
    assert outcome.problems and outcome.problems[0].startswith("evt_Broken0000000000000: ")
    assert "type" in outcome.problems[0], outcome.problems
    assert not WebhookEvent.objects.filter(event_id=broken["id"]).exists(), "nothing stored"
    assert Customer.objects.get(stripe_id=ids[6]).name == "Fine"
