"""A model instance kept across a push (a view, a form, a loop) stays an ordinary edit.

The push writes ``stripe_id``, the snapshot and what Stripe filled in to the database, not to
the caller's instance; saving that instance afterwards must not put the stale values back (a
cleared ``stripe_id`` made the next push create a second customer in Stripe).
Tier 1 runs Celery eagerly: ``create()`` has pushed by the time it returns.
"""

from __future__ import annotations

import pytest

from django_stripe_customers.models import Customer, SyncStatus

# Transactional: instances saved one after the other, each save committed and pushed before
# the next, and a webhook racing a create's answer from another thread.
pytestmark = pytest.mark.django_db(transaction=True)


def creates(emulator):
    return [r for r in emulator.requests if (r.method, r.path) == ("POST", "/v1/customers")]


def test_the_readme_pattern_edits_the_customer_it_created(stripe_settings):
    emulator = stripe_settings
    customer = Customer.objects.create(email="readme@example.com")
    assert customer.stripe_id is None, "the push wrote the id to the row, not to this instance"

    customer.metadata["tier"] = "gold"
    customer.save()

    assert len(creates(emulator)) == 1, "one customer created in Stripe, not two"
    (stripe_id,) = emulator.customers
    assert emulator.customers[stripe_id]["metadata"] == {"tier": "gold"}
    row = Customer.objects.get()
    assert row.stripe_id == stripe_id
    assert row.sync_status == SyncStatus.SYNCED
    update = emulator.requests[-1]
    assert (update.method, update.path) == ("POST", f"/v1/customers/{stripe_id}")
    assert update.params == {"metadata": {"tier": "gold"}}, "only the edit is sent"


def test_a_stale_save_keeps_what_stripe_filled_in(stripe_settings):
    emulator = stripe_settings
    customer = Customer.objects.create(email="kept@example.com")
    row = Customer.objects.get()
    assert row.invoice_prefix and row.created, "Stripe assigned these on create"

    customer.name = "Renamed"
    customer.save()

    row.refresh_from_db()
    assert len(emulator.customers) == 1
    assert row.name == "Renamed"
    assert row.invoice_prefix == emulator.customers[row.stripe_id]["invoice_prefix"]
    assert row.created is not None and row.stripe_data["id"] == row.stripe_id
    assert row.sync_status == SyncStatus.SYNCED and row.sync_error == ""


def test_two_instances_of_one_row_each_save_their_own_edit(stripe_settings):
    emulator = stripe_settings
    Customer.objects.create(email="two@example.com")
    first, second = Customer.objects.get(), Customer.objects.get()

    first.name = "From the first"
    first.save()
    second.phone = "+33100000000"
    second.save()

    row = Customer.objects.get()
    assert (row.name, row.phone) == ("From the first", "+33100000000")
    remote = emulator.customers[row.stripe_id]
    assert (remote["name"], remote["phone"]) == ("From the first", "+33100000000")


def test_a_stale_save_does_not_undo_a_remote_change_to_another_field(stripe_settings):
    emulator = stripe_settings
    customer = Customer.objects.create(email="remote@example.com", name="Local")
    row = Customer.objects.get()
    Customer.objects.filter(pk=row.pk).update(description="pulled since")

    customer.name = "Edited"
    customer.save()

    row.refresh_from_db()
    assert (row.name, row.description) == ("Edited", "pulled since")
    assert len(emulator.customers) == 1


def test_a_new_instance_with_an_explicit_pk_is_still_written_whole(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    Customer(pk=41, email="explicit@example.com", name="Whole").save()
    row = Customer.objects.get(pk=41)
    assert (row.email, row.name, row.sync_status) == ("explicit@example.com", "Whole", "pending")


def test_update_fields_limited_to_one_field_writes_only_that_field(stripe_settings):
    emulator = stripe_settings
    customer = Customer.objects.create(email="limited@example.com")
    customer.name = "Only this"
    customer.email = "not-this@example.com"
    customer.save(update_fields=["name"])

    row = Customer.objects.get()
    assert (row.name, row.email) == ("Only this", "limited@example.com")
    assert emulator.customers[row.stripe_id]["name"] == "Only this"
    assert len(creates(emulator)) == 1


def test_bookkeeping_set_on_a_stale_instance_is_not_written(stripe_settings):
    customer = Customer.objects.create(email="books@example.com")
    row = Customer.objects.get()
    customer.stripe_data = {}
    customer.push_intent = {"method": "create"}
    customer.pushed_version = 0
    customer.name = "Edit"
    customer.save()

    after = Customer.objects.get()
    assert after.stripe_id == row.stripe_id
    assert after.stripe_data["id"] == row.stripe_id
    assert after.push_intent is None and after.pushed_version == after.local_version


@pytest.mark.parametrize("mirror", ["untouched", "edited"])
def test_the_created_webhook_racing_the_create_answer_leaves_one_row(
    stripe_settings, settings, mirror
):
    """Stripe may deliver customer.created before the push has stored the create's answer."""

    import threading

    from django_stripe_customers.clients import clear_client_cache
    from tests.support.faultproxy import HOLD_RESPONSE
    from tests.support.stripe_servers import settings_through_proxy
    from tests.support.threads import database_thread
    from tests.support.webhook_events import SECRET, post

    emulator = stripe_settings
    with settings_through_proxy(settings, emulator.url, WEBHOOK_SECRETS=[SECRET]) as proxy:
        gate, reached = threading.Event(), threading.Event()
        proxy.enqueue(HOLD_RESPONSE(gate, reached, method="POST", path="/v1/customers"))
        errors = []

        def create():
            try:
                Customer.objects.create(email="race@example.com", name="Racer")
            except Exception as exc:
                errors.append(exc)

        thread = database_thread(create)
        try:
            assert reached.wait(10)
            (created,) = emulator.events
            assert post(created).status_code == 200  # a mirror row for the new customer
            if mirror == "edited":
                row = Customer.objects.get(stripe_id=created["data"]["object"]["id"])
                row.description = "edited on the mirror"
                row.save()
        finally:
            gate.set()
            thread.join(20)
        clear_client_cache()

    assert not errors, errors
    assert len(emulator.customers) == 1, "never a second customer in Stripe"
    stripe_id = created["data"]["object"]["id"]
    if mirror == "untouched":
        (row,) = Customer.objects.all()
        assert row.stripe_id == stripe_id
        assert (row.name, row.sync_status, row.sync_error) == ("Racer", "synced", "")
        return
    mine = Customer.objects.get(stripe_id=None)
    assert mine.sync_status == "failed" and "merge them into one row" in mine.sync_error
    assert mine.push_intent is not None, "kept: a retry replays the same create"
    assert Customer.objects.get(stripe_id=stripe_id).description == "edited on the mirror"


def test_assigning_a_field_its_loaded_value_still_writes_it(stripe_settings):
    """The caller asked for that value; the database may hold another by now."""
    emulator = stripe_settings
    Customer.objects.create(email="same@example.com", balance=0)
    kept = Customer.objects.get()
    Customer.objects.filter(pk=kept.pk).update(balance=-500)  # changed since it was loaded

    kept.balance = 0
    kept.save()

    row = Customer.objects.get()
    assert row.balance == 0 == emulator.customers[row.stripe_id]["balance"]


def test_a_copy_of_an_instance_keeps_its_own_assignments(stripe_settings, settings):
    import copy

    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    Customer.objects.create(email="copy@example.com", name="Same")
    original = Customer.objects.get()
    candidate = copy.copy(original)
    candidate.name = "Only on the copy"
    Customer.objects.filter(pk=original.pk).update(name="Changed since")

    original.save()

    assert Customer.objects.get().name == "Changed since", "the copy's assignment is its own"
