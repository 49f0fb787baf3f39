"""The reconcile (``sync/reconcile.py``): events since the account's cursor, or a full pull when
they cannot tell (no cursor, one past Stripe's 30-day retention, a gap), over real HTTP to the
emulator, whose Events API lists what each change emitted."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F
from django.utils import timezone

from django_stripe_customers.accounts import default_account
from django_stripe_customers.clients import get_client
from django_stripe_customers.models import Customer, StripeAccount
from django_stripe_customers.sync.audit import audit
from django_stripe_customers.sync.reconcile import Route, reconcile

pytestmark = pytest.mark.django_db


@pytest.fixture
def mirrored(stripe_settings):
    """Ten customers upstream and a first reconcile done (a full pull; the cursor set)."""
    ids = stripe_settings.seed(10)
    first = reconcile(default_account())
    assert first.route is Route.FULL_PULL and "no cursor yet" in first.reason
    assert first.pull is not None and first.pull.created == 10
    # As if the pull was ten seconds ago: what changes next is newer than what it pulled.
    Customer.objects.update(remote_updated_at=F("remote_updated_at") - timedelta(seconds=10))
    return stripe_settings, ids


def state() -> StripeAccount:
    return StripeAccount.objects.get(stripe_account=None, livemode=False)


def test_a_first_reconcile_pulls_everything_and_sets_the_cursor(stripe_settings):
    stripe_settings.seed(3)  # seeded customers have no event
    client = get_client()
    made = [client.customers.create({"email": f"{n}@example.com"}) for n in range(2)]
    newest = stripe_settings.events[-1]["id"]

    report = reconcile(default_account())

    assert report.pull is not None and report.pull.created == 5
    assert Customer.objects.count() == 5
    assert state().events_cursor == newest, "the newest event listed before the pull"
    assert report.requests == 1 + report.pull.requests
    assert {m["id"] for m in made} <= set(Customer.objects.values_list("stripe_id", flat=True))


def test_changes_upstream_are_applied_from_their_events_alone(mirrored):
    emulator, ids = mirrored
    client = get_client()
    client.customers.update(ids[0], {"name": "Renamed"})
    client.customers.delete(ids[1])
    created = client.customers.create({"email": "new@example.com"})
    requests_before = len(emulator.requests)

    report = reconcile(default_account())

    assert report.route is Route.EVENTS
    assert report.applied == {"customer.updated": 1, "customer.deleted": 1, "customer.created": 1}
    assert Customer.objects.get(stripe_id=ids[0]).name == "Renamed"
    assert Customer.objects.get(stripe_id=ids[1]).deleted is True
    assert Customer.objects.get(stripe_id=created["id"]).email == "new@example.com"
    sent = emulator.requests[requests_before:]
    assert [r.path for r in sent] == ["/v1/events"], "one page of events, nothing else"
    assert report.requests == 1
    assert state().events_cursor == emulator.events[-1]["id"]

    again = reconcile(default_account())
    assert (again.route, again.listed, again.applied, again.requests) == (Route.EVENTS, 0, {}, 1)


def test_events_of_several_pages_are_applied_oldest_first(mirrored):
    emulator, ids = mirrored
    client = get_client()
    for n in range(150):  # 150 events: two pages
        client.customers.update(ids[n % 10], {"name": f"Name {n}"})

    report = reconcile(default_account())

    assert (report.listed, report.requests) == (150, 2)
    for n in range(140, 150):
        assert Customer.objects.get(stripe_id=ids[n % 10]).name == f"Name {n}", "the last wins"
    assert state().events_cursor == emulator.events[-1]["id"]


def test_a_cursor_older_than_stripes_retention_falls_back_to_a_full_pull(mirrored):
    StripeAccount.objects.update(events_cursor_at=timezone.now() - timedelta(days=31))

    report = reconcile(default_account())

    assert report.route is Route.FULL_PULL
    assert "older than Stripe keeps events (30 days)" in report.reason
    assert report.pull is not None and report.pull.unchanged == 10
    assert state().events_cursor_at > timezone.now() - timedelta(minutes=1)


def test_a_cursor_stripe_no_longer_has_is_a_gap_and_falls_back(mirrored):
    StripeAccount.objects.update(events_cursor="evt_GoneSinceLongAgo0")

    report = reconcile(default_account())

    assert report.route is Route.FULL_PULL
    assert "no longer has the cursor's event evt_GoneSinceLongAgo0 (a gap" in report.reason
    assert state().events_cursor != "evt_GoneSinceLongAgo0"


def test_an_account_with_no_event_yet_reconciles_from_the_pulls_start(stripe_settings):
    first = reconcile(default_account())
    assert first.route is Route.FULL_PULL and state().events_cursor == ""
    created = get_client().customers.create({"email": "later@example.com"})

    report = reconcile(default_account())

    assert report.route is Route.EVENTS and report.applied == {"customer.created": 1}
    assert Customer.objects.filter(stripe_id=created["id"]).exists()
    assert state().events_cursor == stripe_settings.events[-1]["id"]


def test_an_edit_pending_here_is_kept_by_the_reconcile(mirrored):
    _emulator, ids = mirrored
    row = Customer.objects.get(stripe_id=ids[2])
    Customer.objects.filter(pk=row.pk).update(name="Local, not pushed yet")
    get_client().customers.update(ids[2], {"email": "remote@example.com"})

    reconcile(default_account())

    row.refresh_from_db()
    assert row.name == "Local, not pushed yet" and row.email == "remote@example.com"


def test_the_command_says_what_changed_and_what_it_cost(mirrored, capsys):
    _emulator, ids = mirrored
    get_client().customers.update(ids[3], {"name": "Cmd"})

    call_command("stripe_customers", "reconcile")

    out = capsys.readouterr().out
    assert "own account (test): 1 event since the cursor: 1 customer.updated, 0 stale" in out
    assert "1 request in" in out


def test_the_command_can_force_a_full_pull(mirrored, capsys):
    call_command("stripe_customers", "reconcile", "--full", "--parallel", "2")
    assert "full pull (asked for): 10 customers" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_the_beat_task_reconciles_every_account(stripe_settings):
    from django_stripe_customers.tasks import reconcile_task

    stripe_settings.seed(3)
    assert reconcile_task.apply(kwargs={"all_accounts": True}).get() == {"accounts": 1}
    assert Customer.objects.count() == 3
    answer = reconcile_task.apply().get()
    assert (answer["route"], answer["requests"]) == ("events", 1)


# -- the drift audit -------------------------------------------------------------------------


def test_the_audit_reports_every_difference_and_writes_nothing(mirrored, capsys):
    _emulator, ids = mirrored
    client = get_client()
    client.customers.update(ids[0], {"name": "Changed in Stripe"})
    client.customers.delete(ids[1])
    created = client.customers.create({"email": "unseen@example.com"})
    Customer.objects.filter(stripe_id=ids[2]).update(sync_status="pending")
    before = {row.pk: (row.name, row.deleted) for row in Customer.objects.all()}

    report = audit(default_account())

    kinds = {drift.stripe_id: (str(drift.kind), drift.fields) for drift in report.drifts}
    assert kinds == {
        ids[0]: ("different", ("name",)),
        ids[1]: ("not_listed", ()),
        created["id"]: ("not_mirrored", ()),
        ids[2]: ("pending", ()),
    }
    assert report.drifted == 3 and report.compared == 10
    assert report.requests == 1
    assert {row.pk: (row.name, row.deleted) for row in Customer.objects.all()} == before
    with pytest.raises(CommandError, match="3 customers drifted"):
        call_command("stripe_customers", "reconcile", "--audit")
    assert "nothing written" in capsys.readouterr().out


def test_a_sampled_audit_costs_the_sample(stripe_settings):
    stripe_settings.seed(1000, spacing=60)
    reconcile(default_account())
    before = len(stripe_settings.requests)

    report = audit(default_account(), sample=0.01, rng=random.Random(7))

    assert report.drifted == 0
    assert 90 <= report.compared <= 210, "about one page of the thousand"
    assert len(stripe_settings.requests) - before == report.requests <= 3
