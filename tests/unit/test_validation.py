"""Local checks of Stripe's limits (``validation.py``): both sides of each limit, from schema."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django import forms
from django.core.exceptions import ValidationError

from django_stripe_customers import schema
from django_stripe_customers.validation import (
    FIELD_VALIDATORS,
    INVOICE_PREFIX_MAX_LENGTH,
    validate_address,
    validate_customer_fields,
    validate_email,
    validate_invoice_prefix,
    validate_invoice_settings,
    validate_metadata,
    validate_preferred_locales,
    validate_shipping,
    validate_tax_exempt,
)
from tests.support.stripe_reference import REFERENCE_EXAMPLE

PARAMS = schema.CREATE_PARAMS
EMAIL_MAX = PARAMS["email"]["maxLength"]
LIMITS = schema.METADATA_LIMITS
MAX_KEYS = LIMITS["max_keys"]
KEY_MAX = LIMITS["key_max_length"]
VALUE_MAX = LIMITS["value_max_length"]
ADDRESS_FIELDS = PARAMS["address"]["fields"]
CUSTOM_FIELD = PARAMS["invoice_settings"]["fields"]["custom_fields"]["fields"]
TAX_EXEMPT = PARAMS["tax_exempt"]["enum"]
AMOUNT_TAX_DISPLAY = PARAMS["invoice_settings"]["fields"]["rendering_options"]["fields"][
    "amount_tax_display"
]["enum"]

#: The example Customer object of Stripe's API reference
#: (``tests/integration/test_emulator.py`` checks it against ``shared/stripe/``),
#: plus nested objects as Stripe returns them: unset keys are null.
STRIPE_CUSTOMER: dict[str, Any] = {
    **REFERENCE_EXAMPLE,
    "address": {key: None for key in ADDRESS_FIELDS},
    "shipping": {
        "address": {**{key: None for key in ADDRESS_FIELDS}, "city": "Paris"},
        "name": "Jenny Rosen",
        "phone": None,
        "carrier": None,
        "tracking_number": None,
    },
    "cash_balance": {"object": "cash_balance", "available": None, "settings": {}},
    "tax": {"automatic_tax": "unrecognized_location", "ip_address": None, "provider": "stripe"},
}


def messages(validator: Any, value: Any) -> list[str]:
    """The messages ``validator`` raises for ``value`` (``[]`` when it passes)."""
    try:
        validator(value)
    except ValidationError as exc:
        return exc.messages
    return []


def codes(validator: Any, value: Any) -> list[str | None]:
    with pytest.raises(ValidationError) as info:
        validator(value)
    return [error.code for error in info.value.error_list]


def email_of_length(length: int) -> str:
    domain = "@example.com"
    return "a" * (length - len(domain)) + domain


def metadata_of(count: int, value: str = "v") -> dict[str, str]:
    return {f"key{index}": value for index in range(count)}


# -- email ---------------------------------------------------------------------------------------


def test_email_at_stripes_limit_passes_even_beyond_djangos_320():
    assert EMAIL_MAX > 320
    assert messages(validate_email, email_of_length(EMAIL_MAX)) == []


def test_email_one_over_the_limit_names_field_and_limit():
    assert messages(validate_email, email_of_length(EMAIL_MAX + 1)) == [
        f"email: at most {EMAIL_MAX} characters (got {EMAIL_MAX + 1})"
    ]
    assert codes(validate_email, email_of_length(EMAIL_MAX + 1)) == ["max_length"]


@pytest.mark.parametrize("value", ["jenny", "jenny@", "@example.com", "a b@example.com", "a@b@c"])
def test_malformed_email_is_refused(value):
    assert messages(validate_email, value) == [f"email: not a valid email address (got {value!r})"]
    assert codes(validate_email, value) == ["invalid"]


@pytest.mark.parametrize("value", ["jenny@example.com", "j.r+tag@sub.example.co.uk", "", None])
def test_valid_or_unset_email_passes(value):
    assert messages(validate_email, value) == []


def test_email_must_be_a_string():
    assert messages(validate_email, 42) == ["email: must be a string (got int)"]


# -- metadata ------------------------------------------------------------------------------------


def test_metadata_at_max_keys_passes_one_more_fails():
    assert messages(validate_metadata, metadata_of(MAX_KEYS)) == []
    assert messages(validate_metadata, metadata_of(MAX_KEYS + 1)) == [
        f"metadata: at most {MAX_KEYS} keys (got {MAX_KEYS + 1})"
    ]
    assert codes(validate_metadata, metadata_of(MAX_KEYS + 1)) == ["max_keys"]


def test_metadata_keys_being_unset_do_not_count():
    assert messages(validate_metadata, {**metadata_of(MAX_KEYS), "old": ""}) == []


def test_metadata_key_at_limit_passes_one_over_fails_with_key_shortened():
    assert messages(validate_metadata, {"k" * KEY_MAX: "v"}) == []
    [message] = messages(validate_metadata, {"k" * (KEY_MAX + 1): "v"})
    assert message.startswith("metadata[kkk")
    assert "...]" in message and "k" * (KEY_MAX + 1) not in message
    assert message.endswith(f"keys are at most {KEY_MAX} characters (got {KEY_MAX + 1})")


@pytest.mark.parametrize("char", LIMITS["key_forbidden_chars"])
def test_metadata_key_with_a_square_bracket_is_refused(char):
    key = f"a{char}b"
    assert messages(validate_metadata, {key: "v"}) == [
        f"metadata[{key}]: keys may not contain '[' or ']'"
    ]
    assert codes(validate_metadata, {key: "v"}) == ["forbidden_chars"]


def test_metadata_value_at_limit_passes_one_over_fails():
    assert messages(validate_metadata, {"note": "x" * VALUE_MAX}) == []
    assert messages(validate_metadata, {"note": "x" * (VALUE_MAX + 1)}) == [
        f"metadata[note]: values are at most {VALUE_MAX} characters (got {VALUE_MAX + 1})"
    ]


@pytest.mark.parametrize(
    ("value", "kind"),
    [(6735, "int"), (1.5, "float"), (True, "bool"), (None, "NoneType"), ({"a": "b"}, "dict")],
)
def test_metadata_values_must_be_strings(value, kind):
    assert messages(validate_metadata, {"order_id": value}) == [
        f"metadata[order_id]: values must be strings (got {kind})"
    ]


def test_metadata_keys_must_be_strings():
    assert messages(validate_metadata, {7: "v"}) == ["metadata[7]: must be a string key (got int)"]


def test_metadata_must_be_a_mapping_and_empty_string_unsets_all():
    assert messages(validate_metadata, ["a"]) == [
        "metadata: must be an object of strings (got list)"
    ]
    assert messages(validate_metadata, "") == []
    assert messages(validate_metadata, {}) == []


def test_every_metadata_problem_is_reported_at_once():
    bad = {**metadata_of(MAX_KEYS), "a[b": "v", "n": 1}
    assert codes(validate_metadata, bad) == ["max_keys", "forbidden_chars", "invalid_type"]


# -- tax_exempt ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [*TAX_EXEMPT, "", None])
def test_tax_exempt_values_from_the_spec_pass(value):
    assert messages(validate_tax_exempt, value) == []


def test_unknown_tax_exempt_is_refused_listing_the_choices():
    assert set(TAX_EXEMPT) == {"none", "exempt", "reverse"}
    assert messages(validate_tax_exempt, "partial") == [
        f"tax_exempt: must be one of {', '.join(TAX_EXEMPT)} (got 'partial')"
    ]
    assert codes(validate_tax_exempt, "partial") == ["invalid_choice"]


# -- preferred_locales ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [["en"], ["fr-CA", "en"], ["zh-Hant-TW"], ["es-419"], ["zh-Hant"], [], None]
)
def test_well_formed_locales_pass(value):
    assert messages(validate_preferred_locales, value) == []


@pytest.mark.parametrize("locale", ["english", "en_US", "e", "en-", "fr-CAN", "", "en US"])
def test_malformed_locale_is_refused_naming_its_index(locale):
    assert messages(validate_preferred_locales, ["en", locale]) == [
        f"preferred_locales[1]: not a locale such as en, fr-CA or zh-Hant-TW (got {locale!r})"
    ]
    assert codes(validate_preferred_locales, ["en", locale]) == ["invalid_locale"]


def test_locales_must_be_a_list_of_strings_within_max_length():
    limit = PARAMS["preferred_locales"]["maxLength"]
    assert messages(validate_preferred_locales, "en") == [
        "preferred_locales: must be a list (got str)"
    ]
    assert messages(validate_preferred_locales, "") == ["preferred_locales: may not be empty"]
    assert messages(validate_preferred_locales, [3]) == [
        "preferred_locales[0]: must be a string (got int)"
    ]
    assert messages(validate_preferred_locales, ["e" * (limit + 1)]) == [
        f"preferred_locales[0]: at most {limit} characters (got {limit + 1})"
    ]


# -- invoice_prefix ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0759376C", "A", "9", "ABCDEFGHIJ12", "", None])
def test_good_invoice_prefix_passes(value):
    assert messages(validate_invoice_prefix, value) == []


@pytest.mark.parametrize(
    "value", ["abc", "AB-1", " AB", "ÉCOLE", "A" * (INVOICE_PREFIX_MAX_LENGTH + 1)]
)
def test_bad_invoice_prefix_is_refused(value):
    assert messages(validate_invoice_prefix, value) == [
        f"invoice_prefix: 1 to {INVOICE_PREFIX_MAX_LENGTH} uppercase letters or digits "
        f"(got {value!r})"
    ]


def test_invoice_prefix_limit_is_twelve_and_the_spec_is_looser():
    assert INVOICE_PREFIX_MAX_LENGTH == 12
    assert messages(validate_invoice_prefix, "A" * 12) == []
    assert PARAMS["invoice_prefix"]["maxLength"] > INVOICE_PREFIX_MAX_LENGTH


# -- address and shipping ------------------------------------------------------------------------


def test_address_as_stripe_returns_it_passes():
    assert messages(validate_address, {key: None for key in ADDRESS_FIELDS}) == []
    assert messages(validate_address, {"line1": "1 rue de Rivoli", "country": "FR"}) == []
    assert messages(validate_address, "") == []


def test_address_unknown_key_is_refused_listing_stripes_keys():
    assert messages(validate_address, {"city": "Paris", "zip": "75001"}) == [
        f"address[zip]: unknown key (Stripe accepts {', '.join(ADDRESS_FIELDS)})"
    ]
    assert codes(validate_address, {"zip": "75001"}) == ["unknown_key"]


def test_address_unknown_key_holding_null_is_tolerated_as_it_is_never_sent():
    assert messages(validate_address, {"city": "Paris", "zip": None}) == []


@pytest.mark.parametrize("key", sorted(set(ADDRESS_FIELDS) - {"country"}))  # a code: below
def test_address_strings_at_max_length_pass_one_over_fails(key):
    limit = ADDRESS_FIELDS[key]["maxLength"]
    assert messages(validate_address, {key: "x" * limit}) == []
    assert messages(validate_address, {key: "x" * (limit + 1)}) == [
        f"address[{key}]: at most {limit} characters (got {limit + 1})"
    ]


@pytest.mark.parametrize("code", ["US", "FR", "GB", "DE", "JP", "XK", "AX", "SS", None, ""])
def test_country_codes_stripe_knows_pass(code):
    assert messages(validate_address, {"country": code}) == []
    assert messages(validate_shipping, {"name": "J", "address": {"country": code}}) == []


@pytest.mark.parametrize("code", ["ZZZ", "Narnia", "ZZ", "UK", "fr", "F", "FRA", " FR"])
def test_other_country_codes_are_refused_naming_the_rule(code):
    assert messages(validate_address, {"country": code}) == [
        "address[country]: a two-letter country code (ISO 3166-1 alpha-2) such as US or FR "
        f"(got {code!r})"
    ]


def test_address_values_must_be_strings_and_address_an_object():
    assert messages(validate_address, {"postal_code": 75001}) == [
        "address[postal_code]: must be a string (got int)"
    ]
    assert messages(validate_address, ["Paris"]) == ["address: must be an object (got list)"]


def test_shipping_requires_name_and_address():
    assert messages(validate_shipping, {"phone": "+33 1"}) == [
        "shipping[address]: required when shipping is set",
        "shipping[name]: required when shipping is set",
    ]
    assert codes(validate_shipping, {"name": None, "address": {}}) == ["required"]
    assert messages(validate_shipping, {"name": "", "address": {}}) == [
        "shipping[name]: may not be empty"
    ]


def test_shipping_nested_unknown_key_names_the_full_path():
    value = {"name": "Jenny", "address": {"zip": "75001"}}
    [message] = messages(validate_shipping, value)
    assert message.startswith("shipping[address][zip]: unknown key")


def test_shipping_as_stripe_returns_it_or_cleared_passes():
    assert messages(validate_shipping, STRIPE_CUSTOMER["shipping"]) == []
    assert messages(validate_shipping, "") == []
    assert messages(validate_shipping, {"name": "J", "address": {}, "carrier": "UPS"}) != []


# -- invoice_settings ----------------------------------------------------------------------------


def test_invoice_settings_as_stripe_returns_it_passes():
    assert messages(validate_invoice_settings, STRIPE_CUSTOMER["invoice_settings"]) == []


@pytest.mark.parametrize("value", [*AMOUNT_TAX_DISPLAY, ""])
def test_amount_tax_display_enum_passes(value):
    settings = {"rendering_options": {"amount_tax_display": value}}
    assert messages(validate_invoice_settings, settings) == []


def test_amount_tax_display_outside_enum_names_the_nested_path():
    settings = {"rendering_options": {"amount_tax_display": "all"}}
    assert messages(validate_invoice_settings, settings) == [
        "invoice_settings[rendering_options][amount_tax_display]: must be one of "
        f"{', '.join(AMOUNT_TAX_DISPLAY)} (got 'all')"
    ]


@pytest.mark.parametrize("key", ["name", "value"])
def test_custom_field_strings_at_limit_pass_one_over_fails(key):
    limit = CUSTOM_FIELD[key]["maxLength"]
    good = {"name": "PO", "value": "42", key: "x" * limit}
    assert messages(validate_invoice_settings, {"custom_fields": [good]}) == []
    bad = {**good, key: "x" * (limit + 1)}
    assert messages(validate_invoice_settings, {"custom_fields": [good, bad]}) == [
        f"invoice_settings[custom_fields][1][{key}]: at most {limit} characters (got {limit + 1})"
    ]


def test_custom_fields_limits_are_stripes():
    assert (CUSTOM_FIELD["name"]["maxLength"], CUSTOM_FIELD["value"]["maxLength"]) == (40, 140)


def test_custom_fields_require_name_and_value_and_must_be_a_list():
    assert messages(validate_invoice_settings, {"custom_fields": [{"name": "PO"}]}) == [
        "invoice_settings[custom_fields][0][value]: required when "
        "invoice_settings[custom_fields][0] is set"
    ]
    assert messages(validate_invoice_settings, {"custom_fields": {"name": "PO"}}) == [
        "invoice_settings[custom_fields]: must be a list (got dict)"
    ]
    assert messages(validate_invoice_settings, {"custom_fields": ""}) == []


def test_invoice_settings_cannot_be_emptied_with_an_empty_string():
    assert codes(validate_invoice_settings, "") == ["empty"]


# -- every other string, integers ----------------------------------------------------------------

PLAIN_STRINGS = [
    name
    for name in schema.PUSHABLE
    if name not in ("email", "invoice_prefix")
    and (schema.UPDATE_PARAMS.get(name) or PARAMS[name])["type"] == "string"
    and not (schema.UPDATE_PARAMS.get(name) or PARAMS[name]).get("list")
    and not (schema.UPDATE_PARAMS.get(name) or PARAMS[name]).get("enum")
]


def test_plain_strings_cover_the_named_fields():
    assert {"name", "phone", "description", "business_name"} <= set(PLAIN_STRINGS)


@pytest.mark.parametrize("name", PLAIN_STRINGS)
def test_plain_string_at_max_length_passes_one_over_fails(name):
    limit = (schema.UPDATE_PARAMS.get(name) or PARAMS[name])["maxLength"]
    assert validate_customer_fields({name: "x" * limit}) is None
    with pytest.raises(ValidationError) as info:
        validate_customer_fields({name: "x" * (limit + 1)})
    assert info.value.message_dict == {
        name: [f"{name}: at most {limit} characters (got {limit + 1})"]
    }


@pytest.mark.parametrize(
    ("name", "limit"), [("name", 256), ("phone", 20), ("description", 5000), ("business_name", 150)]
)
def test_known_string_limits_match_the_spec(name, limit):
    assert PARAMS[name]["maxLength"] == limit


@pytest.mark.parametrize("name", ["balance", "next_invoice_sequence"])
def test_integers_must_be_integers(name):
    assert validate_customer_fields({name: -5}) is None
    with pytest.raises(ValidationError) as info:
        validate_customer_fields({name: True})
    assert info.value.message_dict == {name: [f"{name}: must be an integer (got bool)"]}


# -- the entry point -----------------------------------------------------------------------------


def test_stripes_own_customer_object_passes_unchanged():
    assert validate_customer_fields(STRIPE_CUSTOMER) is None


def test_errors_are_keyed_by_field_with_code_and_params():
    values = {
        "email": email_of_length(EMAIL_MAX + 1),
        "metadata": metadata_of(MAX_KEYS + 1),
        "tax_exempt": "maybe",
        "preferred_locales": ["english"],
        "name": "fine",
    }
    with pytest.raises(ValidationError) as info:
        validate_customer_fields(values)
    errors = info.value.error_dict
    assert set(errors) == {"email", "metadata", "tax_exempt", "preferred_locales"}
    [email_error] = errors["email"]
    assert email_error.code == "max_length"
    assert email_error.params == {"field": "email", "limit": EMAIL_MAX, "length": EMAIL_MAX + 1}
    assert errors["metadata"][0].params["limit"] == MAX_KEYS


def test_validation_does_not_change_its_input():
    values = {"metadata": {"a[b": 1}, "shipping": {"name": "J"}}
    before = copy.deepcopy(values)
    with pytest.raises(ValidationError):
        validate_customer_fields(values)
    assert values == before


def test_fields_without_validators_are_ignored():
    assert (
        validate_customer_fields({"stripe_id": 5, "created": object(), "sync_status": []}) is None
    )


def test_field_validators_cover_the_writable_attributes():
    assert set(FIELD_VALIDATORS) == set(schema.PUSHABLE)
    assert {"cash_balance", "tax"}.isdisjoint(FIELD_VALIDATORS)
    assert {
        "email",
        "metadata",
        "tax_exempt",
        "preferred_locales",
        "invoice_prefix",
        "address",
        "shipping",
        "invoice_settings",
        "name",
        "phone",
        "description",
    } <= set(FIELD_VALIDATORS)
    assert all(callable(v) for validators in FIELD_VALIDATORS.values() for v in validators)


def test_validators_attach_to_a_form_field():
    class CustomerForm(forms.Form):
        email = forms.CharField(validators=FIELD_VALIDATORS["email"])

    form = CustomerForm(data={"email": email_of_length(EMAIL_MAX + 1)})
    assert not form.is_valid()
    assert form.errors["email"] == [f"email: at most {EMAIL_MAX} characters (got {EMAIL_MAX + 1})"]
