"""``Customer.objects.for_owner(user)``: the customer of a user, never a second one.

Reported (issue 19): ``get_or_create(user=u, defaults={"email": u.email})`` for a user whose
email already had a pulled customer created a second customer in Stripe, and linking the pulled
row afterwards raised ``IntegrityError``.
"""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import pre_save

from django_stripe_customers.models import Customer, SyncStatus
from django_stripe_customers.owners import OwnerLinkError
from django_stripe_customers.sync import pull_all
from tests.support.customers import committed, posts
from tests.support.threads import database_thread

pytestmark = pytest.mark.django_db


def creates(emulator):
    """Customers the app created in Stripe (its pushes carry its own Idempotency-Keys)."""
    return [
        r
        for r in posts(emulator)
        if r.path == "/v1/customers"
        and r.headers.get("Idempotency-Key", "").startswith("django-stripe-customers-")
    ]


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user(
        "ada", email="ada@example.com", first_name="Ada", last_name="Lovelace"
    )


@pytest.fixture
def pulled(emulator_client):
    """A customer made in Stripe (the dashboard, another app), then pulled: not linked."""

    def make(**fields):
        obj = emulator_client.customers.create(fields)
        pull_all()
        return Customer.objects.get(stripe_id=obj["id"])

    return make


def test_a_user_without_a_customer_gets_one_made_and_pushed(stripe_settings, ada):
    emulator = stripe_settings
    with committed():
        customer = Customer.objects.for_owner(ada)

    customer.refresh_from_db()
    assert customer.user == ada
    assert customer.sync_status == SyncStatus.SYNCED, customer.sync_error
    remote = emulator.customers[customer.stripe_id]
    assert (remote["email"], remote["name"]) == ("ada@example.com", "Ada Lovelace")
    assert list(ada.stripe_customers.all()) == [customer], "the reverse name is stripe_customers"


def test_a_second_call_returns_the_same_customer_and_sends_nothing(stripe_settings, ada):
    with committed():
        first = Customer.objects.for_owner(ada)
    sent = len(stripe_settings.requests)

    again = Customer.objects.for_owner(ada, defaults={"name": "Not used"})

    assert again.pk == first.pk
    assert len(stripe_settings.requests) == sent
    assert Customer.objects.count() == 1


def test_a_pulled_customer_with_the_users_email_is_refused_by_default(stripe_settings, ada, pulled):
    emulator = stripe_settings
    existing = pulled(email="ADA@example.com")

    with pytest.raises(OwnerLinkError) as raised, committed():
        Customer.objects.for_owner(ada)

    message = str(raised.value)
    assert f"pk {existing.pk} ({existing.stripe_id})" in message
    assert "OWNER_EMAIL_MATCH" in message and "email_match='ignore'" in message
    assert Customer.objects.count() == 1 and len(emulator.customers) == 1
    assert creates(emulator) == [], "no second customer in Stripe"


def test_linking_by_email_takes_the_pulled_customer(stripe_settings, settings, ada, pulled):
    emulator = stripe_settings
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "OWNER_EMAIL_MATCH": "link"}
    existing = pulled(email="ada@example.com", name="Pulled")

    with committed():
        customer = Customer.objects.for_owner(ada)

    assert customer.pk == existing.pk and customer.user == ada
    assert customer.name == "Pulled", "the pulled data is kept, not the user's"
    assert creates(emulator) == [] and len(emulator.customers) == 1


def test_linking_by_email_refuses_two_matches(stripe_settings, ada, pulled):
    one = pulled(email="ada@example.com")
    two = pulled(email="ada@example.com")

    with pytest.raises(OwnerLinkError, match="2 unlinked customers") as raised:
        Customer.objects.for_owner(ada, email_match="link")

    assert f"pk {one.pk}" in str(raised.value) and f"pk {two.pk}" in str(raised.value)
    assert not Customer.objects.filter(user=ada).exists()


def test_customers_linked_to_others_or_deleted_are_not_matches(
    stripe_settings, django_user_model, ada, pulled
):
    emulator = stripe_settings
    bob = django_user_model.objects.create_user("bob", email="bob@example.com")
    other = pulled(email="ada@example.com")
    Customer.objects.filter(pk=other.pk).update(user=bob)
    gone = pulled(email="ada@example.com")
    Customer.objects.filter(pk=gone.pk).write_from_stripe(deleted=True)

    with committed():
        customer = Customer.objects.for_owner(ada, email_match="link")

    assert customer.pk not in (other.pk, gone.pk)
    assert len(creates(emulator)) == 1


def test_ignoring_matches_creates_a_customer_beside_them(stripe_settings, ada, pulled):
    emulator = stripe_settings
    existing = pulled(email="ada@example.com")

    with committed():
        customer = Customer.objects.for_owner(ada, email_match="ignore")

    assert customer.pk != existing.pk and customer.user == ada
    assert len(creates(emulator)) == 1


def test_a_deleted_customer_keeps_its_owner_and_the_owner_gets_a_new_one(stripe_settings, ada):
    with committed():
        first = Customer.objects.for_owner(ada)
    Customer.objects.filter(pk=first.pk).write_from_stripe(deleted=True)

    with committed():
        second = Customer.objects.for_owner(ada)

    assert second.pk != first.pk
    assert set(ada.stripe_customers.values_list("pk", "deleted")) == {
        (first.pk, True),
        (second.pk, False),
    }


def test_bad_defaults_are_refused_naming_the_field_and_nothing_is_made(stripe_settings, ada):
    with pytest.raises(ValidationError) as raised:
        Customer.objects.for_owner(ada, defaults={"email": "x" * 600 + "@example.com"})

    assert "email" in raised.value.message_dict
    assert "512" in str(raised.value.message_dict["email"])
    assert Customer.objects.count() == 0 and stripe_settings.requests == []


def test_an_unsaved_owner_is_refused(django_user_model):
    with pytest.raises(ValueError, match="must be saved"):
        Customer.objects.for_owner(django_user_model(username="nobody"))


def test_an_unknown_email_match_names_the_choices(ada):
    with pytest.raises(ValueError, match="'sometimes' is not a valid EmailMatch"):
        Customer.objects.for_owner(ada, email_match="sometimes")


def test_the_database_holds_one_live_customer_per_user(ada):
    Customer.objects.create(user=ada, email="a@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.bulk_create([Customer(user=ada, email="b@example.com")])


@pytest.mark.django_db(transaction=True)  # the other request commits on its own connection
def test_a_customer_made_by_another_request_first_is_returned(stripe_settings, ada):
    """The other request's insert commits between this one's look-up and its insert: the
    constraint refuses this insert, and the row the other request made is returned."""
    emulator = stripe_settings
    made_by_the_other = []

    def the_other_request():
        made_by_the_other.append(Customer.objects.create(user=ada, email="first@example.com"))

    def the_other_request_first(sender, instance, **kwargs):
        if instance.email == "ada@example.com":
            database_thread(the_other_request).join(30)

    pre_save.connect(the_other_request_first, sender=Customer, dispatch_uid="race")
    try:
        customer = Customer.objects.for_owner(ada)
    finally:
        pre_save.disconnect(sender=Customer, dispatch_uid="race")

    assert customer.pk == made_by_the_other[0].pk
    assert Customer.objects.filter(user=ada).count() == 1
    assert [r.params["email"] for r in creates(emulator)] == ["first@example.com"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite has one writer; the PostgreSQL tier races two connections for real",
)
def test_two_requests_of_one_user_at_once_make_one_customer(stripe_settings, ada):
    emulator = stripe_settings
    start = threading.Barrier(4)
    found, errors = [], []

    def request():
        start.wait()
        try:
            found.append(Customer.objects.for_owner(ada).pk)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [database_thread(request) for _ in range(4)]
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert len(set(found)) == 1 and len(found) == 4
    assert Customer.objects.filter(user=ada).count() == 1
    assert len(creates(emulator)) == 1 and len(emulator.customers) == 1
