"""``sync/merge.py``, the three-way merge, on its own: plain dicts, no database."""

from __future__ import annotations

import pytest

from django_stripe_customers.sync.merge import merge, merge_metadata

WRITABLE = ("name", "email", "metadata", "address")


def test_fields_not_edited_locally_take_the_remote_value():
    base = {"name": "A", "email": "a@example.com"}
    local = dict(base)
    remote = {"name": "Remote", "email": "remote@example.com"}
    assert merge(local, base, remote, WRITABLE) == remote


def test_a_field_edited_locally_keeps_the_local_value():
    base = {"name": "A", "email": "a@example.com"}
    local = {"name": "Local", "email": "a@example.com"}
    remote = {"name": "Remote", "email": "remote@example.com"}
    assert merge(local, base, remote, WRITABLE) == {"name": "Local", "email": "remote@example.com"}


def test_fields_that_are_not_writable_always_take_the_remote_value():
    base = {"currency": "usd"}
    assert merge({"currency": "eur"}, base, {"currency": "gbp"}, WRITABLE) == {"currency": "gbp"}


def test_only_fields_present_remotely_or_edited_are_returned():
    base = {"name": "A", "address": {"city": "Paris"}}
    local = {"name": "A", "address": {"city": "Lyon"}}
    assert merge(local, base, {"email": "x@example.com"}, WRITABLE) == {
        "email": "x@example.com",
        "address": {"city": "Lyon"},
    }


@pytest.mark.parametrize(
    ("local", "base", "remote", "expected"),
    [
        ({"a": "1"}, {"a": "1"}, {"a": "2"}, {"a": "2"}),  # remote change
        ({"a": "L"}, {"a": "1"}, {"a": "2"}, {"a": "L"}),  # both changed: local wins
        ({}, {"a": "1"}, {"a": "2"}, {}),  # removed locally
        ({"a": "1", "b": "L"}, {"a": "1"}, {"a": "1", "c": "R"}, {"a": "1", "b": "L", "c": "R"}),
        ({"a": "1"}, {"a": "1"}, {}, {}),  # removed remotely
        (None, None, None, {}),
    ],
)
def test_metadata_merges_key_by_key(local, base, remote, expected):
    assert merge_metadata(local, base, remote) == expected


def test_metadata_is_merged_even_when_the_field_is_unchanged_as_a_whole():
    base = {"metadata": {"a": "1"}}
    local = {"metadata": {"a": "1", "new": "L"}}
    remote = {"metadata": {"a": "2"}}
    assert merge(local, base, remote, WRITABLE)["metadata"] == {"a": "2", "new": "L"}


def test_inputs_are_not_changed():
    base, local, remote = {"metadata": {"a": "1"}}, {"metadata": {}}, {"metadata": {"a": "1"}}
    merge(local, base, remote, WRITABLE)
    assert (base, local, remote) == (
        {"metadata": {"a": "1"}},
        {"metadata": {}},
        {"metadata": {"a": "1"}},
    )
