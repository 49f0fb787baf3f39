"""``save()`` checks every value as assigned: nothing coerced is written or sent.

Reported (issue 20): ``balance=1.5`` reached Stripe as 1, ``2.9`` as 2, ``True`` as 1, ``"100"`` as
100; ``name=["x"]`` as ``"['x']"``, ``name=5`` as ``"5"``, ``description={"a": 1}`` as a string;
status ``synced``, no error. Django converted them on the way to the database, and the push sent
what the database held.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from django_stripe_customers.models import Customer
from tests.support.customers import committed, pushed

pytestmark = pytest.mark.django_db

BAD = [
    ("balance", 1.5, "must be an integer (got float)"),
    ("balance", 2.9, "must be an integer (got float)"),
    ("balance", True, "must be an integer (got bool)"),
    ("balance", "100", "must be an integer (got str)"),
    ("next_invoice_sequence", 1.0, "must be an integer (got float)"),
    ("name", ["x"], "must be a string (got list)"),
    ("name", 5, "must be a string (got int)"),
    ("description", {"a": 1}, "must be a string (got dict)"),
    ("email", 5, "got int"),
    ("metadata", {"a": 1}, "values must be strings (got int)"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD)
def test_a_new_customer_with_a_value_of_the_wrong_type_is_refused(
    stripe_settings, field, value, message
):
    with pytest.raises(ValidationError) as raised, committed():
        Customer.objects.create(**{"email": "typed@example.com", field: value})

    assert message in " ".join(raised.value.message_dict[field])
    assert Customer.objects.count() == 0 and stripe_settings.requests == []


@pytest.mark.parametrize(("field", "value", "message"), BAD)
def test_an_edit_with_a_value_of_the_wrong_type_is_refused(stripe_settings, field, value, message):
    customer = pushed(email="typed@example.com" if field != "email" else "e@example.com")
    before = Customer.objects.filter(pk=customer.pk).values(field).get()
    sent = len(stripe_settings.requests)
    setattr(customer, field, value)

    with pytest.raises(ValidationError) as raised, committed():
        customer.save()

    assert message in " ".join(raised.value.message_dict[field])
    assert Customer.objects.filter(pk=customer.pk).values(field).get() == before
    assert Customer.objects.get(pk=customer.pk).sync_status == "synced", "not marked pending"
    assert len(stripe_settings.requests) == sent, "nothing sent"


def test_values_of_the_right_type_are_saved_as_given(stripe_settings):
    with committed():
        customer = Customer.objects.create(email="fine@example.com", balance=-250, name="Fine")
    customer.refresh_from_db()
    assert (customer.balance, customer.name, customer.sync_status) == (-250, "Fine", "synced")
    assert stripe_settings.customers[customer.stripe_id]["balance"] == -250
