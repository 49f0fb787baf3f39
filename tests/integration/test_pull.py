"""Pull reconciliation against the Stripe emulator, through the real client and database."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_stripe_customers import schema
from django_stripe_customers.accounts import default_account
from django_stripe_customers.clients import get_client
from django_stripe_customers.models import Customer, PullRun, SyncStatus
from django_stripe_customers.stripe import (
    APIConnectionError,
    AuthenticationError,
    InvalidRequestError,
)
from django_stripe_customers.sync import apply_customer, pull_all, pull_customer
from tests.support.faultproxy import AFTER, REFUSE
from tests.support.stripe_servers import settings_through_proxy

pytestmark = pytest.mark.django_db(transaction=False)

ALL_WRITABLE = {
    "address": {
        "line1": "1 Main St",
        "line2": "Apt 2",
        "city": "Paris",
        "state": "IDF",
        "postal_code": "75001",
        "country": "FR",
    },
    "balance": -1500,
    "business_name": "Rosen Ltd",
    "description": "Our best customer",
    "email": "jenny@example.com",
    "individual_name": "Jenny Rosen",
    "invoice_prefix": "JENNY42",
    "invoice_settings": {"footer": "Thanks!", "custom_fields": [{"name": "PO", "value": "123"}]},
    "metadata": {"order_id": "6735", "tier": "gold"},
    "name": "Jenny Rosen",
    "next_invoice_sequence": 7,
    "phone": "+33123456789",
    "preferred_locales": ["fr", "en"],
    "shipping": {
        "name": "Jenny",
        "phone": "+33100000000",
        "address": {"line1": "2 Side St", "city": "Lyon", "country": "FR"},
    },
    "tax_exempt": "reverse",
}


def remote_column_value(name, value):
    """How a remote attribute is expected to look in its column (read from the spec)."""
    spec = schema.OBJECT_ATTRIBUTES[name]
    if spec["type"] == "timestamp":
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if spec.get("expandable") and spec["type"] == "string" and isinstance(value, dict):
        return value["id"]
    return value


def test_every_attribute_round_trips(stripe_settings):
    client = get_client()
    remote = client.customers.create(ALL_WRITABLE)
    expanded = client.customers.retrieve(
        remote["id"], expand=["tax", "sources", "subscriptions", "tax_ids", "cash_balance"]
    )

    customer = pull_customer(remote["id"])

    customer.refresh_from_db()
    compared = []
    for name in schema.OBJECT_ATTRIBUTES:
        if name in ("id", "object", "deleted") or name not in expanded:
            continue
        compared.append(name)
        assert getattr(customer, name) == remote_column_value(name, expanded[name]), name
    assert set(schema.SEED_ATTRIBUTES) - {"id", "object"} <= set(compared) | {
        "cash_balance",
        "invoice_credit_balance",
        "sources",
        "subscriptions",
        "tax",
        "tax_ids",
    }
    for name, value in ALL_WRITABLE.items():
        if name not in ("invoice_settings", "shipping"):
            assert getattr(customer, name) == value, name
    assert customer.stripe_id == remote["id"]
    assert customer.sync_status == SyncStatus.SYNCED
    assert customer.stripe_data == expanded or customer.stripe_data["id"] == remote["id"]
    assert customer.deleted is False


def test_expanded_objects_are_kept_and_id_expandables_reduced_to_ids(db):
    obj = {
        "id": "cus_expanded000001",
        "object": "customer",
        "created": 1_700_000_000,
        "email": "x@example.com",
        "default_source": {"id": "card_123", "object": "card"},
        "test_clock": {"id": "clock_9", "object": "test_helpers.test_clock"},
        "tax_ids": {"object": "list", "data": [], "has_more": False},
        "future_attribute_from_2030": {"anything": [1, 2]},
    }
    customer, outcome = apply_customer(obj, account=default_account())
    assert outcome == "created"
    customer.refresh_from_db()
    assert customer.default_source == "card_123"
    assert customer.test_clock == "clock_9"
    assert customer.tax_ids == obj["tax_ids"]
    assert customer.created == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
    assert customer.stripe_data["future_attribute_from_2030"] == {"anything": [1, 2]}


def test_absent_includable_attribute_does_not_erase_stored_value(db):
    base = {"id": "cus_includable0001", "object": "customer", "created": 1_700_000_000}
    apply_customer({**base, "tax": {"automatic_tax": "supported"}}, account=default_account())
    customer, outcome = apply_customer(
        {**base, "email": "new@example.com"}, account=default_account()
    )
    customer.refresh_from_db()
    assert outcome == "updated"
    assert customer.tax == {"automatic_tax": "supported"}
    assert customer.email == "new@example.com"


def test_deleted_upstream_flags_row_and_keeps_its_data(stripe_settings):
    client = get_client()
    remote = client.customers.create({"email": "gone@example.com", "name": "Gone"})
    pull_customer(remote["id"])
    client.customers.delete(remote["id"])

    customer = pull_customer(remote["id"])

    customer.refresh_from_db()
    assert customer.deleted is True
    assert customer.email == "gone@example.com"
    assert customer.name == "Gone"
    assert customer.stripe_data["email"] == "gone@example.com"
    assert Customer.objects.count() == 1


def test_404_records_error_and_changes_nothing_else(stripe_settings):
    (row,) = Customer.objects.bulk_create(  # as a pull stores it: no save signals
        [Customer(stripe_id="cus_NotInThisAcct1", email="kept@example.com", sync_status="synced")]
    )
    with pytest.raises(InvalidRequestError) as raised:
        pull_customer("cus_NotInThisAcct1")
    assert raised.value.http_status == 404
    row.refresh_from_db()
    assert "404" in row.sync_error and "mode" in row.sync_error
    assert row.deleted is False
    assert row.email == "kept@example.com"
    assert row.sync_status == SyncStatus.SYNCED


def test_pull_keeps_pending_local_edits_and_takes_remote_for_the_rest(stripe_settings):
    client = get_client()
    remote = client.customers.create({"email": "a@example.com", "name": "Remote Name"})
    customer = pull_customer(remote["id"])
    Customer.objects.filter(pk=customer.pk).update(
        name="Local Edit", sync_status=SyncStatus.PENDING
    )
    client.customers.update(remote["id"], {"email": "b@example.com", "name": "Remote Again"})

    pulled = pull_customer(remote["id"])

    pulled.refresh_from_db()
    assert pulled.name == "Local Edit", "a pending local edit is never overwritten by a pull"
    assert pulled.email == "b@example.com", "fields not edited locally take the remote value"
    assert pulled.sync_status == SyncStatus.PENDING, "still to be pushed"
    assert pulled.stripe_data["name"] == "Remote Again", "the snapshot is the new merge base"


def test_full_pull_sends_ceil_n_over_100_list_requests(stripe_settings):
    emulator = stripe_settings
    emulator.seed(250)

    result = pull_all()

    assert result.created == 250 and result.updated == 0 and result.unchanged == 0
    assert emulator.count("GET", "/v1/customers") == math.ceil(250 / 100) == result.requests
    assert result.pages == 3
    assert emulator.count("GET", "/v1/customers/*") == 0, "nothing unseen, nothing retrieved"
    assert Customer.objects.filter(sync_status=SyncStatus.SYNCED).count() == 250
    assert set(Customer.objects.values_list("stripe_id", flat=True)) == set(emulator.customers)


def test_re_pull_is_idempotent_and_writes_nothing(stripe_settings):
    stripe_settings.seed(120)
    pull_all()
    before = {c.pk: (c.synced_at, c.stripe_data) for c in Customer.objects.all()}

    with CaptureQueriesContext(connection) as queries:
        result = pull_all()

    assert (result.created, result.updated, result.unchanged) == (0, 0, 120)
    writes = [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and "stripe_customers_customer" in q["sql"]
    ]
    assert writes == [], "only the PullRun record is written"
    assert before == {c.pk: (c.synced_at, c.stripe_data) for c in Customer.objects.all()}


def test_queries_per_page_are_bounded_whatever_the_mix(
    stripe_settings, django_assert_max_num_queries
):
    emulator = stripe_settings
    ids = emulator.seed(300)
    pull_all()
    # Later changes, in a later second of Stripe's clock (in the pull's own second they could
    # not be ordered against it, and would be retrieved again: tests/integration/test_freshness.py).
    emulator.clock.advance(2)
    client = get_client()
    for stripe_id in ids[::3]:  # a third changed upstream, a third new, a third unchanged
        client.customers.update(stripe_id, {"name": "Changed upstream"})
    Customer.objects.filter(stripe_id__in=ids[1::3]).forget()

    # Per page: savepoint, lock-and-read, the upsert, release, the unseen-rows read; on
    # PostgreSQL, which skips rows other transactions hold, a read of the page's rows not
    # locked (new, or held). SQLite's 999-parameter limit makes Django split one upsert of 100
    # rows into a few statements.
    fields = Customer._meta.concrete_fields
    upsert_statements = math.ceil(100 / connection.ops.bulk_batch_size(fields, [None] * 100))
    skipped_read = 1 if connection.features.has_select_for_update_skip_locked else 0
    # Once per run: the PullRun insert, the last unseen-rows read, closing the run (4).
    pages, per_run = 3, 6
    per_page = 4 + upsert_statements + skipped_read
    with django_assert_max_num_queries(pages * per_page + per_run):
        result = pull_all()

    assert (result.created, result.updated, result.unchanged) == (100, 100, 100)


def test_rows_not_listed_upstream_are_checked_and_flagged_deleted(stripe_settings):
    emulator = stripe_settings
    ids = emulator.seed(150)
    pull_all()
    client = get_client()
    client.customers.delete(ids[10])
    client.customers.delete(ids[120])

    result = pull_all()

    assert result.marked_deleted == 2
    assert emulator.count("GET", "/v1/customers/*") == 2, "only the unseen rows are retrieved"
    assert set(Customer.objects.filter(deleted=True).values_list("stripe_id", flat=True)) == {
        ids[10],
        ids[120],
    }


@pytest.mark.parametrize("parallel", [1, 4])
def test_an_account_whose_every_customer_was_deleted_upstream_flags_every_row(
    stripe_settings, parallel
):
    """Stripe then lists nothing at all: every local row went unseen (a regression: the
    unbounded pass checked only the rows with no ``created``)."""
    ids = stripe_settings.seed(3)
    pull_all()
    for stripe_id in ids:
        get_client().customers.delete(stripe_id)

    result = pull_all(parallel=parallel)

    assert result.marked_deleted == 3
    assert Customer.objects.filter(deleted=True).count() == 3


def test_created_range_limits_the_pull(stripe_settings):
    emulator = stripe_settings
    emulator.seed(30, spacing=60)
    created = sorted(c["created"] for c in emulator.customers.values())
    result = pull_all(created_gte=created[10], created_lt=created[20])
    assert result.created == 10
    got = sorted(int(c.created.timestamp()) for c in Customer.objects.all())
    assert got == created[10:20]


@pytest.mark.django_db(transaction=True)  # slices are handed out once the run commits
def test_partitions_produce_the_same_rows_as_one_pass(stripe_settings):
    emulator = stripe_settings
    emulator.seed(230, spacing=3600)
    one_pass = pull_all()
    rows_one = sorted(Customer.objects.values_list("stripe_id", "email", "created"))
    Customer.objects.all().forget()

    partitioned = pull_all(partitions=4)

    rows_partitioned = sorted(Customer.objects.values_list("stripe_id", "email", "created"))
    assert rows_partitioned == rows_one
    assert partitioned.created == one_pass.created == 230
    run = PullRun.objects.latest()
    assert run.partitions == run.partitions_done > 4, "more slices than workers, all reported"
    assert run.status == "succeeded"


def test_progress_callback_sees_each_page(stripe_settings):
    stripe_settings.seed(205)
    seen = []
    pull_all(progress=lambda result: seen.append(result.created))
    assert seen == [100, 200, 205]


def test_partitioned_pull_inside_a_transaction_is_refused(stripe_settings):
    with pytest.raises(RuntimeError, match=r"outside transaction\.atomic"):
        pull_all(partitions=2)
    assert not PullRun.objects.exists()


def test_a_pull_that_fails_half_way_records_what_it_wrote(stripe_settings, settings):
    stripe_settings.seed(250)
    with settings_through_proxy(settings, stripe_settings.url, MAX_RETRIES=0) as proxy:
        # Two pages go through, then the server is gone.
        proxy.enqueue(AFTER(2, REFUSE(method="GET", path="/v1/customers")))
        with pytest.raises(APIConnectionError):
            pull_all()

    assert Customer.objects.count() == 200
    run = PullRun.objects.get()
    assert run.status == PullRun.Status.FAILED and run.finished_at is not None
    assert (run.created, run.updated, run.unchanged, run.pages, run.requests) == (200, 0, 0, 2, 2)
    (error,) = run.errors
    assert error.startswith("APIConnectionError: ")


@pytest.mark.django_db(transaction=True)  # slices are handed out once the run commits
def test_a_partitioned_slice_that_fails_records_what_it_wrote(stripe_settings, settings):
    from tests.support.faultproxy import STATUS

    stripe_settings.seed(150, spacing=60)
    with settings_through_proxy(settings, stripe_settings.url, MAX_RETRIES=0) as proxy:
        # The newest page (listed by the run itself) goes through; the slices' pages are
        # refused for good (401).
        proxy.enqueue(AFTER(1, STATUS(401, method="GET", path="/v1/customers")))
        proxy.enqueue(*[STATUS(401, method="GET", path="/v1/customers")] * 10)
        with pytest.raises(AuthenticationError):
            pull_all(created_gte=0, created_lt=2**31, partitions=2)

    run = PullRun.objects.get()
    assert run.status == PullRun.Status.FAILED
    # the newest page but its last second (which goes with the slices)
    written = Customer.objects.count()
    assert run.created == written == 99, "the run counts what was written"
    assert any("AuthenticationError" in error for error in run.errors)
