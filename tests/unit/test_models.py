"""The Customer row mirrors every attribute of Stripe's Customer object (from schema.py)."""

from __future__ import annotations

import pytest
from django.db import models

from django_stripe_customers import schema
from django_stripe_customers.models import Customer

KIND = {
    "string": (models.CharField, models.TextField),
    "integer": (models.BigIntegerField, models.IntegerField),
    "boolean": (models.BooleanField,),
    "timestamp": (models.DateTimeField,),
    "object": (models.JSONField,),
    "map": (models.JSONField,),
    "array<string>": (models.JSONField,),
    "list_object": (models.JSONField,),
}


@pytest.mark.parametrize("name", sorted(set(schema.OBJECT_ATTRIBUTES) - {"id", "object"}))
def test_every_attribute_has_a_column_of_its_kind(name):
    spec = schema.OBJECT_ATTRIBUTES[name]
    field = Customer._meta.get_field(name)
    assert isinstance(field, KIND[spec["type"]]), f"{name}: {type(field).__name__}"
    if spec["nullable"] and name != "deleted":
        assert field.null, f"{name} is nullable in Stripe's data, so its column must be"


def test_string_columns_hold_stripe_s_published_lengths():
    for name in schema.MIRRORED:
        spec = schema.CREATE_PARAMS.get(name) or schema.UPDATE_PARAMS.get(name) or {}
        field = Customer._meta.get_field(name)
        if isinstance(field, models.CharField) and "maxLength" in spec:
            assert field.max_length == spec["maxLength"], name


def test_str_and_dashboard_url():
    assert str(Customer(email="a@example.com")) == "a@example.com"
    assert str(Customer(email="a@example.com", stripe_id="cus_1")) == "a@example.com (cus_1)"
    assert str(Customer(name="Jenny")) == "Jenny"
    assert Customer().dashboard_url is None
    test = Customer(stripe_id="cus_1", livemode=False).dashboard_url
    live = Customer(stripe_id="cus_1", livemode=True).dashboard_url
    assert test == "https://dashboard.stripe.com/test/customers/cus_1"
    assert live == "https://dashboard.stripe.com/customers/cus_1"
