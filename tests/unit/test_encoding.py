"""Stripe's nested form encoding (``stripe/encoding.py``)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest

from django_stripe_customers.stripe.encoding import encode_params, urlencode_params


def test_flat_scalars_become_strings():
    assert encode_params({"email": "a@example.com", "balance": 100, "rate": 1.5}) == [
        ("email", "a@example.com"),
        ("balance", "100"),
        ("rate", "1.5"),
    ]


def test_decimal_is_sent_as_written():
    assert encode_params({"amount": Decimal("12.50")}) == [("amount", "12.50")]


def test_dict_uses_brackets():
    assert encode_params({"metadata": {"order_id": 6735}}) == [("metadata[order_id]", "6735")]


def test_nested_dicts():
    params = {"shipping": {"name": "Ada", "address": {"city": "Paris", "line1": "1 rue"}}}
    assert encode_params(params) == [
        ("shipping[name]", "Ada"),
        ("shipping[address][city]", "Paris"),
        ("shipping[address][line1]", "1 rue"),
    ]


def test_list_uses_indexes():
    assert encode_params({"preferred_locales": ["en", "fr"]}) == [
        ("preferred_locales[0]", "en"),
        ("preferred_locales[1]", "fr"),
    ]


def test_tuple_is_a_list():
    assert encode_params({"expand": ("a", "b")}) == [("expand[0]", "a"), ("expand[1]", "b")]


def test_list_of_dicts():
    params = {
        "invoice_settings": {
            "custom_fields": [{"name": "x", "value": "1"}, {"name": "y", "value": "2"}]
        }
    }
    assert encode_params(params) == [
        ("invoice_settings[custom_fields][0][name]", "x"),
        ("invoice_settings[custom_fields][0][value]", "1"),
        ("invoice_settings[custom_fields][1][name]", "y"),
        ("invoice_settings[custom_fields][1][value]", "2"),
    ]


def test_booleans_are_lowercase_words():
    assert encode_params({"a": True, "b": False, "c": {"d": True}}) == [
        ("a", "true"),
        ("b", "false"),
        ("c[d]", "true"),
    ]


def test_none_is_omitted_at_every_depth():
    params = {
        "email": None,
        "name": "Ada",
        "address": {"line1": None, "city": "Paris"},
        "tags": [None, "x"],
        "invoice_settings": {"custom_fields": [{"name": "n", "value": None}]},
    }
    assert encode_params(params) == [
        ("name", "Ada"),
        ("address[city]", "Paris"),
        ("tags[1]", "x"),
        ("invoice_settings[custom_fields][0][name]", "n"),
    ]


def test_empty_string_is_sent_to_unset_a_field():
    assert encode_params({"description": "", "address": ""}) == [
        ("description", ""),
        ("address", ""),
    ]


def test_empty_string_unsets_a_metadata_key():
    assert encode_params({"metadata": {"old": "", "kept": "v"}}) == [
        ("metadata[old]", ""),
        ("metadata[kept]", "v"),
    ]


def test_empty_containers_encode_nothing():
    assert encode_params({"metadata": {}, "preferred_locales": [], "name": "x"}) == [("name", "x")]


def test_none_and_empty_params():
    assert encode_params(None) == []
    assert encode_params({}) == []


def test_aware_datetime_is_a_unix_timestamp():
    moment = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert encode_params({"created": {"gte": moment}}) == [("created[gte]", "1704164645")]


def test_datetime_in_another_zone_is_the_same_instant():
    paris = datetime.timezone(datetime.timedelta(hours=1))
    moment = datetime.datetime(2024, 1, 2, 4, 4, 5, 999_000, tzinfo=paris)
    assert encode_params({"t": moment}) == [("t", "1704164645")]


def test_naive_datetime_is_local_time():
    naive = datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert encode_params({"t": naive}) == [("t", str(int(naive.timestamp())))]


def test_key_order_is_preserved():
    params = {"z": 1, "a": 2, "metadata": {"k2": "b", "k1": "a"}, "m": 3}
    keys = [key for key, _ in encode_params(params)]
    assert keys == ["z", "a", "metadata[k2]", "metadata[k1]", "m"]


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"tags": {"a", "b"}}, "'tags'"),
        ({"shipping": {"address": {"city": object()}}}, "'shipping[address][city]'"),
        ({"items": [1, b"raw"]}, "'items[1]'"),
        ({"day": datetime.date(2024, 1, 2)}, "'day'"),
    ],
)
def test_unsupported_type_names_the_key_path(params, path):
    with pytest.raises(TypeError, match=path.replace("[", r"\[").replace("]", r"\]")):
        encode_params(params)


def test_non_string_key_is_refused():
    with pytest.raises(TypeError, match=r"metadata"):
        encode_params({"metadata": {1: "x"}})


def test_urlencode_round_trips():
    params = {"metadata": {"order id": "a&b=c"}, "preferred_locales": ["en"], "description": ""}
    body = urlencode_params(params)
    assert "&b=c" not in body
    assert parse_qsl(body, keep_blank_values=True) == [
        ("metadata[order id]", "a&b=c"),
        ("preferred_locales[0]", "en"),
        ("description", ""),
    ]


def test_urlencode_of_nothing_is_empty():
    assert urlencode_params(None) == ""
