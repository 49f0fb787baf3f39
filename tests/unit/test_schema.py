"""schema.py is generated from Stripe's published data and covers the whole Customer object."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from django_stripe_customers import schema

ROOT = Path(__file__).resolve().parents[2]
SHARED_SPEC = ROOT.parent / "shared" / "stripe" / "customer.json"


def _generator():
    path = ROOT / "scripts" / "generate_schema.py"
    spec = importlib.util.spec_from_file_location("generate_schema", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not SHARED_SPEC.exists(), reason="shared/stripe/ is not beside the repo")
def test_schema_module_is_what_the_generator_makes_from_the_shared_data():
    data = json.loads(SHARED_SPEC.read_text(encoding="utf-8"))
    expected = _generator().render(data)
    assert (ROOT / "django_stripe_customers" / "schema.py").read_text(encoding="utf-8") == expected


def test_every_seed_attribute_is_described():
    assert set(schema.SEED_ATTRIBUTES) <= set(schema.OBJECT_ATTRIBUTES)
    assert "deleted" in schema.OBJECT_ATTRIBUTES


def test_writable_sets_follow_the_endpoint_params():
    assert "email" in schema.WRITABLE_ON_CREATE and "email" in schema.WRITABLE_ON_UPDATE
    assert "default_source" in schema.WRITABLE_ON_UPDATE
    assert "default_source" not in schema.WRITABLE_ON_CREATE
    assert "id" not in schema.WRITABLE_ON_UPDATE


def test_documented_limits_are_present():
    assert schema.CREATE_PARAMS["email"]["maxLength"] == 512
    assert schema.METADATA_LIMITS["max_keys"] == 50
    assert schema.METADATA_LIMITS["key_max_length"] == 40
    assert schema.METADATA_LIMITS["value_max_length"] == 500
    assert schema.CREATE_PARAMS["tax_exempt"]["enum"] == ["exempt", "none", "reverse"]


def test_every_attribute_has_a_role_and_the_lists_derive_from_them():
    assert set(schema.ROLES) == set(schema.OBJECT_ATTRIBUTES)
    assert set(schema.MIRRORED) == set(schema.OBJECT_ATTRIBUTES) - {"id", "object", "deleted"}
    assert set(schema.PUSHABLE) | set(schema.STRIPE_MANAGED) == set(schema.MIRRORED)
    assert not set(schema.PUSHABLE) & set(schema.STRIPE_MANAGED)
    assert set(schema.CREATE_ONLY) | set(schema.UPDATE_ONLY) <= set(schema.PUSHABLE)


@pytest.mark.parametrize(
    ("name", "sent"),
    [
        ("email", ("create", "update")),
        ("test_clock", ("create",)),  # Stripe takes it when it creates the customer only
        ("default_source", ("update",)),  # no such parameter on create
        ("cash_balance", ()),  # its parameter sets a write-only setting: Stripe computes it
        ("tax", ()),
        ("currency", ()),
        ("created", ()),
    ],
)
def test_roles_say_when_an_attribute_is_sent(name, sent):
    assert schema.ROLES[name]["sent"] == sent


def test_roles_give_the_column_kind_and_stripes_limits():
    assert schema.ROLES["email"]["column"] == "char"
    assert schema.ROLES["email"]["max_length"] == schema.CREATE_PARAMS["email"]["maxLength"]
    assert schema.ROLES["balance"]["column"] == "bigint"
    assert schema.ROLES["created"]["column"] == "datetime"
    assert schema.ROLES["metadata"]["column"] == "json"
    choices = tuple(schema.CREATE_PARAMS["tax_exempt"]["enum"])
    assert schema.ROLES["tax_exempt"]["choices"] == choices
    assert set(schema.INCLUDABLE) == {
        "cash_balance", "invoice_credit_balance", "sources", "subscriptions", "tax", "tax_ids"
    }  # fmt: skip
    assert set(schema.ID_EXPANDABLE) == {"default_source", "test_clock"}
