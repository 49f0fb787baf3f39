"""Deleting a customer is an edit like the others: sent to Stripe by the outbox, the row kept.

Reported (issue 19): "Delete" in the admin removed the local row only, said nothing about
Stripe, and the next pull brought the customer back under a new pk, its user link gone.

Every door (``instance.delete()``, ``QuerySet.delete()``, the admin's delete page and its bulk
action, the API's DELETE) is tried with Stripe failing on the first try: a 503 that the client
retries with the same Idempotency-Key.
"""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError

from django_stripe_customers.models import Customer, SyncStatus
from django_stripe_customers.sync import pull_all
from tests.support.admin_pages import change_url
from tests.support.customers import committed, local_only, pushed
from tests.support.faultproxy import STATUS
from tests.support.http_clients import CommittingAPIClient
from tests.support.stripe_servers import settings_through_proxy

pytestmark = pytest.mark.django_db


@pytest.fixture
def proxy(stripe_settings, settings):
    with settings_through_proxy(settings, stripe_settings.url) as proxy:
        yield proxy


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("owner", email="owner@example.com")


@pytest.fixture
def customer(proxy, owner):
    return pushed(email="owner@example.com", name="Owner", user=owner)


def deletes(proxy):
    return [r for r in proxy.requests if r.method == "DELETE"]


def assert_deleted_in_stripe_and_kept(customer, proxy, emulator, owner):
    """Stripe deleted it (after one refused try, resent with the same key); the row is a
    tombstone with its owner; a pull does not bring the customer back."""
    tries = deletes(proxy)
    assert len(tries) == 2 and tries[0].idempotency_key == tries[1].idempotency_key
    assert emulator.customers[customer.stripe_id].get("deleted") is True
    row = Customer.objects.get(pk=customer.pk)
    assert row.deleted and row.delete_requested_at is not None
    assert (row.sync_status, row.sync_error, row.user_id) == (SyncStatus.SYNCED, "", owner.pk)
    assert row.email == "owner@example.com", "the last data is kept by default"
    pull_all()
    assert Customer.objects.count() == 1
    assert Customer.objects.get(pk=customer.pk).deleted


def test_instance_delete(customer, proxy, stripe_settings, owner):
    proxy.enqueue(STATUS(503, method="DELETE"))
    with committed():
        assert customer.delete() == (1, {"stripe_customers.Customer": 1})
    assert customer.pk is not None and customer.deleted, "the instance is the tombstone"
    assert_deleted_in_stripe_and_kept(customer, proxy, stripe_settings, owner)


def test_queryset_delete(customer, proxy, stripe_settings, owner):
    never_pushed = local_only(email="local@example.com")
    proxy.enqueue(STATUS(503, method="DELETE"))
    with committed():
        count, by_model = Customer.objects.filter(pk__in=[customer.pk, never_pushed.pk]).delete()
    assert (count, by_model) == (2, {"stripe_customers.Customer": 2})
    assert not Customer.objects.filter(pk=never_pushed.pk).exists(), "simply deleted"
    assert_deleted_in_stripe_and_kept(customer, proxy, stripe_settings, owner)


def test_the_admin_delete_page(customer, proxy, stripe_settings, owner, admin_client):
    url = f"/admin/stripe_customers/customer/{customer.pk}/delete/"
    page = admin_client.get(url).content.decode()
    assert "Stripe deletes this customer" in page and "cancels" in page
    proxy.enqueue(STATUS(503, method="DELETE"))

    response = admin_client.post(url, {"post": "yes"}, follow=True)

    assert "Its deletion is sent to Stripe" in response.content.decode()
    assert_deleted_in_stripe_and_kept(customer, proxy, stripe_settings, owner)
    page = admin_client.get(change_url(customer)).content.decode()
    assert "This customer was deleted in Stripe" in page, "shown read-only, with why"


def test_the_admin_bulk_delete(customer, proxy, stripe_settings, owner, admin_client):
    data = {"action": "delete_selected", "_selected_action": [customer.pk]}
    page = admin_client.post("/admin/stripe_customers/customer/", data).content.decode()
    assert "Stripe deletes each of these customers" in page
    proxy.enqueue(STATUS(503, method="DELETE"))

    admin_client.post("/admin/stripe_customers/customer/", {**data, "post": "yes"})

    assert_deleted_in_stripe_and_kept(customer, proxy, stripe_settings, owner)


def test_the_api_delete(customer, proxy, stripe_settings, owner, admin_user):
    api = CommittingAPIClient()
    api.force_authenticate(admin_user)
    proxy.enqueue(STATUS(503, method="DELETE"))

    response = api.delete(f"/api/customers/{customer.stripe_id}/")

    assert response.status_code == 202
    assert response.json()["deleted"] is True
    assert_deleted_in_stripe_and_kept(customer, proxy, stripe_settings, owner)


def test_the_api_deletes_a_row_never_pushed_outright(proxy, admin_user):
    api = CommittingAPIClient()
    api.force_authenticate(admin_user)
    row = local_only(email="local@example.com")
    assert api.delete(f"/api/customers/{row.pk}/").status_code == 204
    assert not Customer.objects.exists() and deletes(proxy) == []


def test_deleting_needs_the_delete_permission(customer, proxy, django_user_model, client):
    editor = django_user_model.objects.create_user("editor", is_staff=True)
    editor.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_customer", "change_customer"])
    )
    api = CommittingAPIClient()
    api.force_authenticate(editor)
    client.force_login(editor)

    refused = api.delete(f"/api/customers/{customer.stripe_id}/")
    admin_page = client.post(f"/admin/stripe_customers/customer/{customer.pk}/delete/")

    assert refused.status_code == 403 and "delete_customer" in refused.json()["detail"]
    assert admin_page.status_code == 403
    assert not Customer.objects.get(pk=customer.pk).deleted and deletes(proxy) == []


def test_a_deletion_waiting_for_stripe_survives_a_pull(customer, proxy, settings, stripe_settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer.delete()

    pull_all()  # Stripe still lists the customer

    row = Customer.objects.get(pk=customer.pk)
    assert row.deleted and row.sync_status == SyncStatus.PENDING
    call_command("stripe_customers", "push", "--pending", stdout=io.StringIO())
    assert stripe_settings.customers[customer.stripe_id].get("deleted") is True
    assert Customer.objects.get(pk=customer.pk).sync_status == SyncStatus.SYNCED


def test_a_deletion_stripe_refuses_restores_the_customer_with_why(customer, proxy):
    proxy.enqueue(STATUS(400, method="DELETE"))
    with committed():
        customer.delete()

    row = Customer.objects.get(pk=customer.pk)
    assert not row.deleted and row.delete_requested_at is None
    assert row.sync_status == SyncStatus.FAILED
    assert row.sync_error.startswith("Stripe refused the deletion")


def test_deleting_a_tombstone_removes_it(customer, proxy):
    with committed():
        customer.delete()
    with committed():
        assert Customer.objects.filter(pk=customer.pk).delete()[0] == 1
    assert not Customer.objects.exists()
    assert len(deletes(proxy)) == 1


def test_the_owner_of_a_deleted_customer_gets_a_new_one(customer, proxy, owner):
    with committed():
        customer.delete()
    with committed():
        fresh = Customer.objects.for_owner(owner, email_match="ignore")
    assert fresh.pk != customer.pk
    assert owner.stripe_customers.count() == 2


def test_forget_removes_rows_from_the_mirror_only(customer, proxy, stripe_settings):
    assert Customer.objects.filter(pk=customer.pk).forget()[0] == 1
    assert deletes(proxy) == [] and not stripe_settings.customers[customer.stripe_id].get("deleted")


# -- erasing -------------------------------------------------------------------------------


PERSONAL = ("name", "email", "phone", "address", "shipping", "metadata", "description")


def test_erase_scrubs_the_row_and_its_snapshot(proxy):
    customer = pushed(
        email="erase@example.com",
        name="Erase Me",
        phone="+33100000000",
        description="private",
        metadata={"crm": "123"},
        address={"city": "Paris", "country": "FR"},
    )
    with committed():
        customer.delete()

    call_command("stripe_customers", "erase", customer.stripe_id, stdout=io.StringIO())

    row = Customer.objects.get(pk=customer.pk)
    assert [getattr(row, name) for name in PERSONAL] == [None, None, None, None, None, {}, None]
    assert row.stripe_data == {"id": customer.stripe_id, "object": "customer", "deleted": True}
    assert row.deleted and row.stripe_id == customer.stripe_id


def test_erase_refuses_a_customer_not_deleted(customer):
    with pytest.raises(CommandError, match="delete these first"):
        call_command("stripe_customers", "erase", str(customer.pk), stdout=io.StringIO())
    assert Customer.objects.get(pk=customer.pk).email == "owner@example.com"


def test_the_admin_erase_action(customer, proxy, admin_client):
    with committed():
        customer.delete()
    live = pushed(email="live@example.com")
    data = {"action": "erase_personal_data", "_selected_action": [customer.pk, live.pk]}

    page = admin_client.post("/admin/stripe_customers/customer/", data, follow=True)

    html = page.content.decode()
    assert "Erased the personal data of 1 deleted customer." in html
    assert f"Not erased (not deleted in Stripe: delete them first): {live.stripe_id}" in html
    assert Customer.objects.get(pk=customer.pk).email is None
    assert Customer.objects.get(pk=live.pk).email == "live@example.com"


def test_tombstones_can_keep_no_data(customer, proxy, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "DELETED_KEEP_DATA": False}
    with committed():
        customer.delete()
    row = Customer.objects.get(pk=customer.pk)
    assert (row.email, row.name, row.user_id) == (None, None, customer.user_id)
