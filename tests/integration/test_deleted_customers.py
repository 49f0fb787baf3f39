"""One rule for a customer deleted in Stripe, at every door: it cannot be edited.

Reported (issue 19): the admin accepted edits to a customer deleted in Stripe ("changed
successfully", then pending forever) while the API refused the same edit with 409.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from django_stripe_customers.models import Customer
from tests.support.admin_pages import change_url
from tests.support.customers import pushed

pytestmark = pytest.mark.django_db


@pytest.fixture
def deleted(stripe_settings):
    customer = pushed(email="gone@example.com", name="Gone")
    Customer.objects.filter(pk=customer.pk).write_from_stripe(deleted=True)
    return Customer.objects.get(pk=customer.pk)


def test_the_admin_shows_a_deleted_customer_read_only_with_why(deleted, admin_client):
    page = admin_client.get(change_url(deleted))

    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="name"' not in html, "no editable field"
    assert "This customer was deleted in Stripe" in html
    assert 'name="_save"' not in html


def test_the_admin_refuses_a_posted_edit_of_a_deleted_customer(deleted, admin_client):
    response = admin_client.post(change_url(deleted), {"name": "Edited", "email": deleted.email})

    assert response.status_code == 403
    assert Customer.objects.get(pk=deleted.pk).name == "Gone"


def test_save_refuses_an_edit_of_a_deleted_customer_naming_the_field(deleted):
    deleted.name = "Edited"
    with pytest.raises(ValidationError) as raised:
        deleted.save()
    assert "deleted in Stripe" in str(raised.value.message_dict["name"])
    assert Customer.objects.get(pk=deleted.pk).name == "Gone"


def test_the_owner_of_a_deleted_customer_may_still_be_set(deleted, django_user_model):
    user = django_user_model.objects.create_user("former")
    deleted.user = user
    deleted.save()
    assert Customer.objects.get(pk=deleted.pk).user == user


def test_the_api_refuses_it_too(deleted, admin_client):
    response = admin_client.patch(
        f"/api/customers/{deleted.stripe_id}/", {"name": "Edited"}, content_type="application/json"
    )
    assert response.status_code == 409
