"""``edits.check_edit``: can Stripe take this edit? Plain dicts in, the request or errors out."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from django_stripe_customers.edits import check_edit, metadata_diff
from tests.support.stripe_reference import REFERENCE_EXAMPLE

SNAPSHOT = {
    **REFERENCE_EXAMPLE,
    "name": "Jenny",
    "email": "jenny@example.com",
    "balance": 0,
    "metadata": {"a": "1"},
    "invoice_settings": {"footer": "Thanks", "custom_fields": None},
}
DEFAULTS = {"balance": 0, "metadata": {}, "preferred_locales": []}


def update(**values):
    return check_edit(values, SNAPSHOT, stripe_id=SNAPSHOT["id"], defaults=DEFAULTS)


def create(**values):
    return check_edit(values, None, stripe_id=None, defaults=DEFAULTS)


def errors(call, **values):
    with pytest.raises(ValidationError) as refused:
        call(**values)
    return refused.value.message_dict


def test_a_create_sends_every_value_set_but_defaults_and_empties():
    edit = create(email="new@example.com", balance=0, metadata={}, name="", phone=None)
    assert (edit.method, edit.params) == ("create", {"email": "new@example.com"})


def test_an_update_sends_only_what_differs_from_the_snapshot():
    edit = update(name="Jenny", email="other@example.com", balance=0)
    assert (edit.method, edit.params) == ("update", {"email": "other@example.com"})


def test_metadata_goes_key_by_key_and_a_removed_key_is_sent_empty():
    assert update(metadata={"b": "2"}).params == {"metadata": {"a": "", "b": "2"}}
    assert metadata_diff({"a": "1"}, {"a": "1"}) == {}


def test_invoice_settings_go_key_by_key_and_cannot_be_cleared():
    assert update(invoice_settings={"footer": "New"}).params == {
        "invoice_settings": {"footer": "New"}
    }
    assert errors(update, invoice_settings={"footer": None}) == {
        "invoice_settings": [
            "invoice_settings[footer]: Stripe cannot clear this value once it is set"
        ]
    }


def test_a_cleared_string_is_sent_as_empty_and_a_cleared_integer_is_refused():
    assert update(name=None).params == {"name": ""}
    assert errors(update, balance=None) == {
        "balance": ["balance: Stripe cannot clear this value once it is set"]
    }


def test_only_values_that_would_be_sent_are_checked():
    stored = {**SNAPSHOT, "name": "x" * 300}  # what Stripe holds is Stripe's business
    edit = check_edit({"name": "x" * 300, "email": "b@example.com"}, stored, stripe_id="cus_1")
    assert edit.params == {"email": "b@example.com"}


def test_every_refused_field_is_reported_at_once_naming_its_rule():
    found = errors(update, email="not an email", balance=1.5, tax_exempt="sometimes")
    assert set(found) == {"email", "balance", "tax_exempt"}
    assert found["balance"] == ["balance: must be an integer (got float)"]


@pytest.mark.parametrize("value", [True, 1.0])
def test_a_value_of_another_type_is_an_edit_even_when_equal(value):
    """``True == 1`` and ``1.0 == 1`` in Python, but Stripe's integer is neither."""
    assert "balance" in errors(update, balance=value)


def test_values_absent_from_the_input_are_left_alone():
    assert update().params == {}
    assert create().params == {}
