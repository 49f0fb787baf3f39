"""Every way Django writes rows reaches Stripe: ``bulk_create``, ``bulk_update``, ``update()``.

Reported (issue 19): ``bulk_create`` rows were never pushed (``pending_since`` NULL, so neither
the sweep nor the admin's notice saw them); ``bulk_update`` and ``QuerySet.update()`` were never
pushed, and the next pull reverted them.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db.models import F

from django_stripe_customers.models import Customer, SyncStatus
from django_stripe_customers.sync import pull_all, pull_customer
from django_stripe_customers.sync.outbox import overdue, stuck
from django_stripe_customers.tasks import push_pending_task
from tests.support.customers import committed, posts, pushed

pytestmark = pytest.mark.django_db


def updates(emulator, stripe_id):
    return [r.params for r in posts(emulator) if r.path == f"/v1/customers/{stripe_id}"]


def test_bulk_created_rows_are_pending_and_pushed_on_commit(stripe_settings):
    emulator = stripe_settings
    with committed():
        made = Customer.objects.bulk_create(
            [Customer(email=f"bulk{n}@example.com", metadata={"n": str(n)}) for n in range(3)]
        )
        assert {c.sync_status for c in made} == {SyncStatus.PENDING}
        assert all(c.pending_since is not None and c.local_version == 1 for c in made)

    rows = list(Customer.objects.order_by("email"))
    assert [r.sync_status for r in rows] == [SyncStatus.SYNCED] * 3, [r.sync_error for r in rows]
    assert sorted(c["email"] for c in emulator.customers.values()) == [
        f"bulk{n}@example.com" for n in range(3)
    ]


def test_bulk_created_rows_whose_push_never_ran_are_seen_by_the_sweep(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    (row,) = Customer.objects.bulk_create([Customer(email="later@example.com")])

    assert list(overdue(-1).values_list("pk", flat=True)) == [row.pk]
    assert list(stuck(-1).values_list("pk", flat=True)) == [row.pk], "the admin's notice"
    assert push_pending_task(older_than=-1) == 1

    row.refresh_from_db()
    assert row.sync_status == SyncStatus.SYNCED and row.stripe_id in stripe_settings.customers


def test_a_bad_value_in_bulk_create_names_the_field_and_writes_nothing(stripe_settings):
    good = Customer(email="good@example.com")
    bad = Customer(email="bad@example.com", metadata={"k" * 41: "v"})

    with pytest.raises(ValidationError) as raised:
        Customer.objects.bulk_create([good, bad])

    assert "metadata" in raised.value.message_dict and "40" in str(raised.value)
    assert Customer.objects.count() == 0 and stripe_settings.requests == []


def test_rows_written_with_another_status_are_left_as_they_are(stripe_settings):
    """What the pull writes (status synced) is not marked pending, so it is not echoed."""
    with committed():
        (row,) = Customer.objects.bulk_create(
            [Customer(stripe_id="cus_fromstripe", email="s@example.com", sync_status="synced")]
        )
    row.refresh_from_db()
    assert (row.sync_status, row.pending_since, row.local_version) == ("synced", None, 0)
    assert stripe_settings.requests == []


def test_bulk_create_cannot_update_attributes_on_conflict():
    with pytest.raises(ValueError, match="bulk_update"):
        Customer.objects.bulk_create(
            [Customer(stripe_id="cus_x", email="x@example.com")],
            update_conflicts=True,
            unique_fields=["stripe_id"],
            update_fields=["email"],
        )


def test_bulk_update_marks_the_rows_pending_and_pushes_only_what_changed(stripe_settings):
    emulator = stripe_settings
    rows = [pushed(email=f"bu{n}@example.com") for n in range(2)]
    versions = [row.local_version for row in rows]
    for row in rows:
        row.name = f"Renamed {row.pk}"

    with committed():
        assert Customer.objects.bulk_update(rows, ["name"]) == 2
        pending = Customer.objects.filter(pk__in=[r.pk for r in rows])
        assert {r.sync_status for r in pending} == {SyncStatus.PENDING}

    for row, version in zip(rows, versions, strict=True):
        row.refresh_from_db()
        assert row.sync_status == SyncStatus.SYNCED and row.local_version == version + 1
        assert updates(emulator, row.stripe_id) == [{"name": f"Renamed {row.pk}"}]
    pull_all()
    assert Customer.objects.get(pk=rows[0].pk).name == f"Renamed {rows[0].pk}", "not reverted"


def test_bulk_update_of_a_bad_value_names_the_field_and_writes_nothing(stripe_settings):
    row = pushed(email="ok@example.com")
    row.email = "x" * 600 + "@example.com"

    with pytest.raises(ValidationError) as raised:
        Customer.objects.bulk_update([row], ["email"])

    assert "512" in str(raised.value.message_dict["email"])
    assert Customer.objects.get(pk=row.pk).email == "ok@example.com"


def test_bulk_update_of_sync_columns_is_refused():
    row = Customer.objects.create(email="sync@example.com")
    row.stripe_id = "cus_forged"
    with pytest.raises(ValueError, match="stripe_id"):
        Customer.objects.bulk_update([row], ["stripe_id"])


def test_queryset_update_of_an_attribute_is_pushed_and_survives_a_pull(stripe_settings):
    emulator = stripe_settings
    row = pushed(email="qs@example.com", name="Before")

    with committed():
        assert Customer.objects.filter(pk=row.pk).update(name="After") == 1
        assert Customer.objects.get(pk=row.pk).sync_status == SyncStatus.PENDING

    assert updates(emulator, row.stripe_id) == [{"name": "After"}]
    pull_customer(row.stripe_id)
    after = Customer.objects.get(pk=row.pk)
    assert (after.name, after.sync_status) == ("After", SyncStatus.SYNCED)


def test_queryset_update_with_an_expression_is_pushed(stripe_settings):
    emulator = stripe_settings
    row = pushed(email="balance@example.com", balance=100)

    with committed():
        Customer.objects.filter(pk=row.pk).update(balance=F("balance") + 250)

    assert updates(emulator, row.stripe_id) == [{"balance": "350"}]  # as form-encoded
    assert emulator.customers[row.stripe_id]["balance"] == 350


def test_queryset_update_of_a_bad_value_names_the_field_and_writes_nothing(stripe_settings):
    row = pushed(email="limit@example.com")

    with pytest.raises(ValidationError) as raised:
        Customer.objects.filter(pk=row.pk).update(metadata={str(n): "v" for n in range(51)})

    assert "50" in str(raised.value.message_dict["metadata"])
    assert Customer.objects.get(pk=row.pk).metadata == {}


def test_queryset_update_of_other_columns_pushes_nothing(stripe_settings, django_user_model):
    row = pushed(email="owner@example.com")
    user = django_user_model.objects.create_user("owner")
    sent = len(stripe_settings.requests)

    with committed():
        Customer.objects.filter(pk=row.pk).update(user=user)

    after = Customer.objects.get(pk=row.pk)
    assert (after.user_id, after.sync_status) == (user.pk, SyncStatus.SYNCED)
    assert after.local_version == row.local_version
    assert len(stripe_settings.requests) == sent


def test_what_the_sync_writes_from_stripe_is_not_pushed(stripe_settings):
    row = pushed(email="mirror@example.com")
    with committed():
        Customer.objects.filter(pk=row.pk).write_from_stripe(name="As Stripe sent it")
    after = Customer.objects.get(pk=row.pk)
    assert (after.name, after.sync_status) == ("As Stripe sent it", SyncStatus.SYNCED)
    assert updates(stripe_settings, row.stripe_id) == []
