"""Order at Stripe's one-second resolution: events, pulls and pushes never make a row older.

Events carry whole-second ``created`` times and answers a whole-second ``Date``; the emulator's
clock is frozen here so that everything happens in one second, the case where time alone
cannot order two views of a customer. A deleted customer stays deleted.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest
import requests

from django_stripe_customers.clients import get_client
from django_stripe_customers.models import Customer, SyncStatus, WebhookEvent
from django_stripe_customers.sync import pull_all, pull_customer
from django_stripe_customers.sync.freshness import CLOCK_SKEW, Verdict, agrees, judge
from tests.support.faultproxy import HOLD_RESPONSE
from tests.support.stripe_servers import settings_through_proxy
from tests.support.threads import database_thread
from tests.support.webhook_events import SECRET, post

# Transactional: a push held at the proxy in one thread while events and pulls land in
# another (separate connections, committed data).
pytestmark = pytest.mark.django_db(transaction=True)

T = 1_790_000_000  # a frozen second of Stripe's clock


@pytest.fixture
def frozen(stripe_settings, settings):
    """The emulator at a frozen second, webhooks signed with ``SECRET`` accepted."""
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "WEBHOOK_SECRETS": [SECRET]}
    stripe_settings.clock.set(T)
    return stripe_settings


def gets(emulator, stripe_id):
    return emulator.count("GET", f"/v1/customers/{stripe_id}")


def remote_customer(name="A"):
    return get_client().customers.create({"email": "order@example.com", "name": name})


# -- the emulator speaks Stripe's clock ------------------------------------------------------


def test_answers_carry_the_emulators_clock_and_replays_say_so(frozen):
    url = f"{frozen.url}/v1/customers"
    headers = {"Authorization": "Bearer sk_test_x", "Idempotency-Key": "k1"}
    first = requests.post(url, data={"name": "x"}, headers=headers, timeout=5)
    frozen.clock.advance(30)
    again = requests.post(url, data={"name": "x"}, headers=headers, timeout=5)

    assert parsedate_to_datetime(first.headers["Date"]).timestamp() == T
    assert parsedate_to_datetime(again.headers["Date"]).timestamp() == T + 30
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


def test_the_client_reports_when_an_answer_was_true(frozen):
    created = get_client().customers.create({"name": "x"}, idempotency_key="k2")
    frozen.clock.advance(5)
    replayed = get_client().customers.create({"name": "x"}, idempotency_key="k2")

    assert created.last_response.observed_at == T
    assert replayed.last_response.stripe_time == T + 5
    assert replayed.last_response.replayed is True
    assert replayed.last_response.observed_at is None, "a replay tells nothing about now"


# -- events within one second ----------------------------------------------------------------


@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_two_updates_in_one_second_leave_stripes_state_in_either_order(frozen, order):
    remote = remote_customer("A")
    client = get_client()
    client.customers.update(remote["id"], {"name": "B"})
    client.customers.update(remote["id"], {"name": "C"})
    created, to_b, to_c = frozen.events
    assert created["created"] == to_b["created"] == to_c["created"] == T
    post(created)

    for event in (to_b, to_c) if order == "in order" else (to_c, to_b):
        assert post(event).status_code == 200

    row = Customer.objects.get()
    assert row.name == "C" == frozen.customers[remote["id"]]["name"]
    assert row.sync_status == SyncStatus.SYNCED
    assert set(WebhookEvent.objects.values_list("status", flat=True)) <= {"processed", "stale"}


@pytest.mark.parametrize("order", ["deleted first", "deleted last"])
def test_an_update_in_the_second_of_the_deletion_never_undeletes(frozen, order):
    remote = remote_customer("A")
    client = get_client()
    client.customers.update(remote["id"], {"name": "B"})
    client.customers.delete(remote["id"])
    created, updated, deleted = frozen.events
    assert deleted["type"] == "customer.deleted" and updated["created"] == deleted["created"]
    post(created)

    for event in (deleted, updated) if order == "deleted first" else (updated, deleted):
        assert post(event).status_code == 200

    row = Customer.objects.get()
    assert row.deleted is True
    assert row.name in ("A", "B"), "the last data is kept"


def test_a_late_update_after_the_deletion_is_stale(frozen):
    remote = remote_customer("A")
    client = get_client()
    client.customers.update(remote["id"], {"name": "B"})
    frozen.clock.advance(10)
    client.customers.delete(remote["id"])
    created, updated, deleted = frozen.events
    post(created)
    post(deleted)

    post(updated)

    assert Customer.objects.get().deleted is True
    assert WebhookEvent.objects.get(event_id=updated["id"]).status == WebhookEvent.Status.STALE


def test_the_event_of_our_own_push_costs_no_retrieve(frozen):
    Customer.objects.create(email="own@example.com", name="Own")
    (created,) = frozen.events
    post(created)
    customer = Customer.objects.get()
    customer.name = "Renamed"
    customer.save()
    _, updated = frozen.events
    before = len(frozen.requests)

    post(updated)

    assert len(frozen.requests) == before, "it agrees with the pushed answer: nothing to ask"
    row = Customer.objects.get()
    assert (row.name, row.sync_status) == ("Renamed", SyncStatus.SYNCED)
    assert WebhookEvent.objects.filter(status="processed").count() == 2


def test_the_event_of_an_earlier_push_of_the_same_second_costs_one_retrieve(frozen):
    Customer.objects.create(email="own@example.com", name="Own")
    customer = Customer.objects.get()
    customer.name = "Renamed"
    customer.save()
    created, updated = frozen.events
    stripe_id = customer.stripe_id

    post(created)  # older than the row's data, but of the same second: cannot be told apart
    post(updated)

    assert gets(frozen, stripe_id) == 1
    assert Customer.objects.get().name == "Renamed"


def test_an_older_event_delivered_after_a_push_does_not_revert_it(frozen):
    remote = remote_customer("A")
    get_client().customers.update(remote["id"], {"description": "remote edit"})
    created, remote_edit = frozen.events
    post(created)
    frozen.clock.advance(3)
    customer = Customer.objects.get()
    customer.name = "Pushed later"
    customer.save()

    post(remote_edit)  # older than the push's answer, delivered after it

    row = Customer.objects.get()
    assert row.name == "Pushed later"
    assert row.description == "remote edit", "the push's answer already carried it"
    assert WebhookEvent.objects.get(event_id=remote_edit["id"]).status == "stale"


# -- a pull page in flight while a push lands -----------------------------------------------


@pytest.fixture
def proxied(frozen, settings):
    with settings_through_proxy(settings, frozen.url) as proxy:
        yield frozen, proxy


def _pull_with_the_page_held(proxy, while_held):
    """Run ``pull_all()`` in a thread; its first list page is answered by Stripe, then held
    while ``while_held()`` runs, then delivered."""
    gate, reached = threading.Event(), threading.Event()
    proxy.enqueue(HOLD_RESPONSE(gate, reached, method="GET", path="/v1/customers"))
    results, errors = [], []

    def pull():
        try:
            results.append(pull_all())
        except Exception as exc:  # reported by the test
            errors.append(exc)

    thread = database_thread(pull)
    try:
        assert reached.wait(10), "the page was not requested"
        while_held()
    finally:
        gate.set()
        thread.join(20)
    assert not errors, errors
    return results[0]


@pytest.mark.parametrize("push_second", ["same second", "later second"])
def test_a_page_listed_before_a_push_does_not_revert_it(proxied, push_second):
    emulator, proxy = proxied
    Customer.objects.create(email="race@example.com", name="Old")
    stripe_id = Customer.objects.get().stripe_id

    def edit_and_push():
        if push_second == "later second":
            emulator.clock.advance(1)
        customer = Customer.objects.get()
        customer.name = "New"
        customer.save()  # pushed (Celery eager) while the page with "Old" is held
        assert Customer.objects.get().sync_status == SyncStatus.SYNCED

    _pull_with_the_page_held(proxy, edit_and_push)

    row = Customer.objects.get()
    assert row.name == "New" == emulator.customers[stripe_id]["name"]
    assert row.sync_status == SyncStatus.SYNCED
    assert row.stripe_data["name"] == "New"


def test_a_page_listed_before_a_deletion_does_not_undelete(proxied, settings):
    emulator, _proxy = proxied
    Customer.objects.create(email="gone@example.com", name="Gone")
    stripe_id = Customer.objects.get().stripe_id

    def delete_upstream():
        emulator.clock.advance(1)
        get_client().customers.delete(stripe_id)
        pull_customer(stripe_id)  # as a customer.deleted webhook would

    _pull_with_the_page_held(_proxy, delete_upstream)

    assert Customer.objects.get().deleted is True


def test_a_later_page_does_apply_a_remote_change_of_the_same_second(frozen):
    """The pull's own request came after the row's last write: its page is the newer view,
    even within one second of Stripe's clock (one second of margin for clocks)."""
    frozen.seed(3)
    pull_all()
    stripe_id = Customer.objects.first().stripe_id
    get_client().customers.update(stripe_id, {"name": "Changed"})
    Customer.objects.update(synced_at="2000-01-01T00:00:00Z")  # written long before

    result = pull_all()

    assert Customer.objects.get(stripe_id=stripe_id).name == "Changed"
    assert result.requests == 1, "no retrieve was needed"


# -- the decision, as a pure function --------------------------------------------------------

AT = datetime.fromtimestamp(T, tz=timezone.utc)
SECOND = timedelta(seconds=1)


def verdict(obj=None, observed=AT, *, sent=None, deleted=False, row_at=AT, written=None, row=None):
    return judge(
        obj or {"id": "cus_1", "name": "new"},
        observed,
        sent_at=sent,
        row_deleted=deleted,
        row_observed_at=row_at,
        row_written_at=written,
        row_snapshot={"id": "cus_1", "name": "old"} if row is None else row,
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"observed": AT + SECOND}, Verdict.APPLY),
        ({"observed": AT - SECOND}, Verdict.STALE),
        ({"observed": None}, Verdict.APPLY),  # no Date: ordered as before times were kept
        ({"row_at": None}, Verdict.APPLY),
        ({}, Verdict.REREAD),  # same second, other data, no idea when the row was written
        ({"row": {"id": "cus_1", "name": "new"}}, Verdict.APPLY),  # same second, same data
        ({"row": {}}, Verdict.APPLY),
        ({"sent": AT, "written": AT - CLOCK_SKEW - SECOND}, Verdict.APPLY),
        ({"sent": AT, "written": AT - CLOCK_SKEW / 2}, Verdict.REREAD),  # within clock skew
        ({"sent": AT, "written": AT + SECOND}, Verdict.REREAD),
        ({"deleted": True, "observed": AT + SECOND}, Verdict.STALE),  # never un-deleted
        ({"obj": {"id": "cus_1", "deleted": True}, "observed": AT - SECOND}, Verdict.APPLY),
        ({"obj": {"id": "cus_1", "deleted": True}, "deleted": True}, Verdict.APPLY),
    ],
)
def test_judge(kwargs, expected):
    assert verdict(**kwargs) is expected


def test_agrees_compares_only_what_both_views_carry():
    assert agrees({"id": "c", "name": "a"}, {"id": "c", "name": "a", "tax_ids": {"data": []}})
    assert not agrees({"id": "c", "name": "a"}, {"id": "c", "name": "b"})
    assert agrees({"id": "c"}, None)
