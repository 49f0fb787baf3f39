"""Two editors of one customer, each on its own connection, both keep their edits.

Reported (issue 20): two processes load the same customer; one adds ``metadata["c"]``, the
other ``metadata["d"]``; both save. "c" was gone locally and in Stripe (29 of 30 customers):
the second save wrote the whole column and its push unset "c".

Each editor runs in its own thread with its own database connection (``database_thread``); the
second loads the row before the first saves, and saves after it.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from django_stripe_customers.models import Customer
from django_stripe_customers.sync import pull_all
from tests.support.admin_pages import change_url, form_data
from tests.support.customers import pushed
from tests.support.http_clients import CommittingAPIClient
from tests.support.threads import database_thread

# Transactional: each editor commits on its own connection, and its push runs at its commit.
pytestmark = pytest.mark.django_db(transaction=True)


def two_editors(pk, first_edit, second_edit):
    """Both load the row; the first saves; then the second (holding its stale instance)."""
    loaded, first_saved = threading.Barrier(2), threading.Event()
    errors = []

    def editor(edit, wait_for_the_other):
        try:
            customer = Customer.objects.get(pk=pk)
            loaded.wait(10)
            if wait_for_the_other:
                assert first_saved.wait(20)
            edit(customer)
            customer.save()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            if not wait_for_the_other:
                first_saved.set()

    threads = [database_thread(lambda: editor(first_edit, False)),
               database_thread(lambda: editor(second_edit, True))]  # fmt: skip
    for thread in threads:
        thread.join(30)
    assert errors == []


def test_two_editors_of_different_metadata_keys_both_keep_theirs(stripe_settings):
    customer = pushed(email="keys@example.com", metadata={"a": "1", "b": "2"})

    def add_c(row):
        row.metadata["c"] = "from the first"

    def add_d_and_drop_a(row):
        row.metadata["d"] = "from the second"
        del row.metadata["a"]

    two_editors(customer.pk, add_c, add_d_and_drop_a)

    row = Customer.objects.get(pk=customer.pk)
    expected = {"b": "2", "c": "from the first", "d": "from the second"}
    assert row.metadata == expected, "locally"
    assert stripe_settings.customers[row.stripe_id]["metadata"] == expected, "in Stripe"
    assert row.sync_status == "synced"


def test_two_editors_of_different_fields_both_keep_theirs(stripe_settings):
    customer = pushed(email="fields@example.com", name="Before")

    def rename(row):
        row.name = "Renamed"

    def describe(row):
        row.description = "Described"
        row.metadata["note"] = "second"

    two_editors(customer.pk, rename, describe)

    row = Customer.objects.get(pk=customer.pk)
    remote = stripe_settings.customers[row.stripe_id]
    assert (row.name, row.description, row.metadata) == ("Renamed", "Described", {"note": "second"})
    assert (remote["name"], remote["description"]) == ("Renamed", "Described")


def test_a_replaced_metadata_dict_still_merges_by_key(stripe_settings):
    customer = pushed(email="replace@example.com", metadata={"keep": "x"})

    def add_first(row):
        row.metadata["first"] = "1"

    def replace(row):
        row.metadata = {"keep": "x", "second": "2"}  # assigned whole, from the stale copy

    two_editors(customer.pk, add_first, replace)

    row = Customer.objects.get(pk=customer.pk)
    assert row.metadata == {"keep": "x", "first": "1", "second": "2"}
    assert stripe_settings.customers[row.stripe_id]["metadata"] == row.metadata


# -- the API: If-Match -------------------------------------------------------------------------


@pytest.fixture
def api(stripe_settings, admin_user):
    client = CommittingAPIClient()
    client.force_authenticate(admin_user)
    return client


def test_the_api_refuses_an_update_of_a_row_changed_since_it_was_read(api, stripe_settings):
    customer = pushed(email="etag@example.com", name="Read")
    url = f"/api/customers/{customer.stripe_id}/"
    read = api.get(url)
    version = read.headers["ETag"]

    other = Customer.objects.get(pk=customer.pk)  # another editor, meanwhile
    other.name = "Changed meanwhile"
    other.save()

    refused = api.patch(url, {"name": "Mine"}, format="json", HTTP_IF_MATCH=version)
    assert refused.status_code == 412
    assert "changed since you read it" in refused.json()["detail"]
    assert Customer.objects.get(pk=customer.pk).name == "Changed meanwhile", "not overwritten"

    again = api.get(url)
    accepted = api.patch(url, {"name": "Mine"}, format="json", HTTP_IF_MATCH=again.headers["ETag"])
    assert accepted.status_code == 200 and accepted.headers["ETag"] != again.headers["ETag"]
    assert stripe_settings.customers[customer.stripe_id]["name"] == "Mine"


def test_without_if_match_or_with_a_star_the_update_applies(api):
    customer = pushed(email="star@example.com")
    url = f"/api/customers/{customer.stripe_id}/"
    assert api.patch(url, {"name": "A"}, format="json").status_code == 200
    assert api.patch(url, {"name": "B"}, format="json", HTTP_IF_MATCH="*").status_code == 200
    assert Customer.objects.get(pk=customer.pk).name == "B"


# -- the admin: two staff on one change page -----------------------------------------------------


def test_the_admin_saves_only_what_this_page_changed(stripe_settings, admin_client):
    """Reported: the later submission wrote back every field it was shown, reverting what the
    first had changed in the meantime."""
    customer = pushed(email="page@example.com", name="Before", metadata={"a": "1"})
    first = form_data(admin_client, change_url(customer))
    second = form_data(admin_client, change_url(customer))  # both open the page

    first.update(name="Renamed by the first")
    first.update(metadata_key_1="by_first", metadata_value_1="x")
    assert admin_client.post(change_url(customer), first).status_code == 302
    second["description"] = "Described by the second"
    assert admin_client.post(change_url(customer), second).status_code == 302

    row = Customer.objects.get(pk=customer.pk)
    assert (row.name, row.description) == ("Renamed by the first", "Described by the second")
    assert row.metadata == {"a": "1", "by_first": "x"}, "the second page did not remove it"
    remote = stripe_settings.customers[row.stripe_id]
    assert (remote["name"], remote["description"]) == (row.name, row.description)
    assert remote["metadata"] == row.metadata


def test_a_field_both_pages_changed_is_a_conflict_with_both_values(stripe_settings, admin_client):
    customer = pushed(email="clash@example.com", name="Before")
    first = form_data(admin_client, change_url(customer))
    second = form_data(admin_client, change_url(customer))
    first["name"] = "First"
    assert admin_client.post(change_url(customer), first).status_code == 302
    sent = len(stripe_settings.requests)

    second["name"] = "Second"
    page = admin_client.post(change_url(customer), second)

    assert page.status_code == 200, "the form again, with the conflict"
    html = page.content.decode()
    assert "changed by someone else since you opened this page" in html
    assert "now: First; yours: Second" in html
    assert Customer.objects.get(pk=customer.pk).name == "First", "not overwritten"
    assert len(stripe_settings.requests) == sent


def test_a_page_that_changed_nothing_writes_nothing(stripe_settings, admin_client):
    customer = pushed(email="idle@example.com", name="Kept")
    idle = form_data(admin_client, change_url(customer))
    Customer.objects.filter(pk=customer.pk).update(name="Changed meanwhile")
    sent = len(stripe_settings.requests)

    assert admin_client.post(change_url(customer), idle).status_code == 302

    assert Customer.objects.get(pk=customer.pk).name == "Changed meanwhile"
    assert len(stripe_settings.requests) == sent


# -- a pull never blocks a user's save --------------------------------------------------------


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks: the PostgreSQL tier (SQLite has one writer)",
)
def test_a_pull_skips_a_row_another_transaction_holds_and_blocks_no_save(stripe_settings):
    """Reported: with another transaction open on one row of a page, an unrelated customer's save
    in that page waited 2.9 s for the pull."""
    held, other = pushed(email="held@example.com"), pushed(email="other@example.com")
    stripe_settings.customers[held.stripe_id]["name"] = "Pulled later"
    stripe_settings.customers[other.stripe_id]["name"] = "Pulled now"
    locked, release, pulled = threading.Event(), threading.Event(), threading.Event()
    saved_in = []

    def hold_the_row():
        with transaction.atomic():
            Customer.objects.select_for_update().get(pk=held.pk)
            locked.set()
            release.wait(20)

    def pull():
        pull_all()
        pulled.set()

    holder = database_thread(hold_the_row)
    assert locked.wait(10)
    puller = database_thread(pull)
    time.sleep(0.5)  # the pull has reached the page, and waits for the held row alone

    def save_other():
        started = time.monotonic()
        row = Customer.objects.get(pk=other.pk)
        row.description = "saved while the pull runs"
        row.save()
        saved_in.append(time.monotonic() - started)

    database_thread(save_other).join(10)
    release.set()
    for thread in (holder, puller):
        thread.join(20)

    assert pulled.is_set() and saved_in and saved_in[0] < 1.0, saved_in
    assert Customer.objects.get(pk=other.pk).name == "Pulled now"
    assert Customer.objects.get(pk=held.pk).name == "Pulled later", "retrieved after the page"
