"""The API with several accounts: the ``stripe_account`` and ``livemode`` filters and their
400s, both fields in the representation (read-only on existing rows), and a create that names
its account: pushed to that account's store in the emulator, or a 400 when no key reaches it.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission

from django_stripe_customers.models import Customer, SyncStatus
from tests.support.connected import ACCT_A, ACCT_B
from tests.support.customers import local_only, posts
from tests.support.http_clients import CommittingAPIClient

pytestmark = pytest.mark.django_db

LIST = "/api/customers/"
UNKNOWN = "acct_1Zzzzzzzzzzzzzzz"


def detail(identifier: object) -> str:
    return f"/api/customers/{identifier}/"


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_user("staff", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="stripe_customers",
            codename__in=["view_customer", "add_customer", "change_customer"],
        )
    )
    return user


@pytest.fixture
def api(stripe_settings, staff) -> CommittingAPIClient:
    client = CommittingAPIClient()
    client.force_authenticate(staff)
    return client


def _rows() -> None:
    """Own and connected rows, in both modes (synced: nothing to push)."""
    for email, stripe_account, livemode in [
        ("own-test", None, False),
        ("own-live", None, True),
        ("a-test", ACCT_A, False),
        ("a-live", ACCT_A, True),
        ("blank-test", "", False),  # an empty account is the own one too
    ]:
        local_only(
            email=f"{email}@example.com",
            stripe_id=f"cus_{email.replace('-', '_')}",
            stripe_account=stripe_account,
            livemode=livemode,
            sync_status=SyncStatus.SYNCED,
        )


def _emails(response: Any) -> set[str]:
    assert response.status_code == 200, response.json()
    return {c["email"].removesuffix("@example.com") for c in response.json()["data"]}


# -- filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"stripe_account": "own"}, {"own-test", "own-live", "blank-test"}),
        ({"stripe_account": ACCT_A}, {"a-test", "a-live"}),
        ({"stripe_account": ACCT_B}, set()),
        ({"livemode": "true"}, {"own-live", "a-live"}),
        ({"livemode": "false"}, {"own-test", "a-test", "blank-test"}),
        ({"livemode": "1"}, {"own-live", "a-live"}),
        ({"stripe_account": "own", "livemode": "true"}, {"own-live"}),
        ({"stripe_account": ACCT_A, "livemode": "FALSE"}, {"a-test"}),
    ],
)
def test_account_and_mode_filters(api, params, expected):
    _rows()
    assert _emails(api.get(LIST, params)) == expected


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        (
            {"stripe_account": ""},
            "stripe_account",
            "stripe_account: must be own (the API key's own account) or an acct_ id (got '')",
        ),
        (
            {"stripe_account": "cus_1"},
            "stripe_account",
            "stripe_account: must be own (the API key's own account) or an acct_ id (got 'cus_1')",
        ),
        (
            {"stripe_account": "acct_"},
            "stripe_account",
            "stripe_account: must be own (the API key's own account) or an acct_ id (got 'acct_')",
        ),
        (
            {"stripe_account": "acct_1\x00"},
            "stripe_account",
            "stripe_account: must be own (the API key's own account) or an acct_ id "
            "(got 'acct_1\\x00')",
        ),
        ({"livemode": "yes"}, "livemode", "livemode: must be true or false (got 'yes')"),
        ({"livemode": ""}, "livemode", "livemode: must be true or false (got '')"),
    ],
)
def test_bad_account_or_mode_values_are_400_naming_the_parameter(api, params, param, message):
    _rows()
    response = api.get(LIST, params)
    assert response.status_code == 400
    assert response.json() == {param: [message]}


# -- representation ----------------------------------------------------------------------------


def test_the_account_and_mode_are_shown(api):
    _rows()
    shown = {c["id"]: (c["stripe_account"], c["livemode"]) for c in api.get(LIST).json()["data"]}
    assert shown["cus_own_test"] == (None, False)
    assert shown["cus_a_live"] == (ACCT_A, True)
    assert api.get(detail("cus_a_test")).json()["stripe_account"] == ACCT_A


def test_the_account_and_mode_of_an_existing_row_are_read_only(api, connected):
    customer = local_only(email="a@example.com", stripe_account=ACCT_A)
    response = api.patch(
        detail(customer.pk),
        {"stripe_account": ACCT_B, "livemode": "not even a boolean", "name": "Renamed"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    customer.refresh_from_db()
    assert (customer.name, customer.stripe_account, customer.livemode) == ("Renamed", ACCT_A, False)
    assert response.json()["stripe_account"] == ACCT_A


# -- create in an account ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_create_in_a_connected_account_pushes_it_there(api, connected):
    response = api.post(
        LIST, {"email": "conn@example.com", "stripe_account": ACCT_A}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["stripe_account"], body["livemode"], body["sync_status"]) == (
        ACCT_A,
        False,
        "synced",
    )
    customer = Customer.objects.get(pk=body["pk"])
    assert (customer.stripe_account, customer.livemode) == (ACCT_A, False)
    assert body["id"] in connected.customers_of(ACCT_A)
    assert body["id"] not in connected.customers_of(None), "not in the platform's own account"
    (create,) = posts(connected)
    assert {k.lower(): v for k, v in create.headers.items()}.get("stripe-account") == ACCT_A


def test_create_without_an_account_goes_to_the_default_one(api, connected):
    response = api.post(LIST, {"email": "own@example.com"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["stripe_account"], body["livemode"]) == (None, False)
    assert Customer.objects.get(pk=body["pk"]).stripe_id in connected.customers_of(None)


def test_create_with_a_null_account_is_the_own_account(api, connected):
    response = api.post(
        LIST, {"email": "own@example.com", "stripe_account": None, "livemode": False}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert Customer.objects.get(email="own@example.com").stripe_account is None


@pytest.mark.parametrize(
    ("body", "field", "starts"),
    [
        (
            {"stripe_account": UNKNOWN},
            "stripe_account",
            f"stripe_account: No API key in STRIPE_CUSTOMERS['ACCOUNTS'] reaches {UNKNOWN} in "
            "test mode",
        ),
        (
            {"stripe_account": ACCT_A, "livemode": True},
            "stripe_account",
            f"stripe_account: No API key in STRIPE_CUSTOMERS['ACCOUNTS'] reaches {ACCT_A} in "
            "live mode",
        ),
        (
            {"livemode": True},
            "livemode",
            "livemode: No API key in STRIPE_CUSTOMERS['ACCOUNTS'] reaches the own account in "
            "live mode",
        ),
        (
            {"stripe_account": "cus_123"},
            "stripe_account",
            "stripe_account: must be an acct_ id, or null for the API key's own account "
            "(got 'cus_123')",
        ),
        (
            {"stripe_account": 7},
            "stripe_account",
            "stripe_account: must be an acct_ id, or null for the API key's own account (got 7)",
        ),
        ({"livemode": "true"}, "livemode", "livemode: must be true or false (got 'true')"),
        ({"livemode": None}, "livemode", "livemode: must be true or false (got None)"),
    ],
)
def test_create_in_an_account_no_key_reaches_is_400_and_sends_nothing(
    api, connected, body, field, starts
):
    response = api.post(LIST, {"email": "x@example.com", **body}, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [field], errors
    assert errors[field][0].startswith(starts), errors[field]
    assert not Customer.objects.filter(email="x@example.com").exists()
    assert posts(connected) == []


def test_an_unknown_account_is_refused_without_accounts_settings_too(api, stripe_settings):
    response = api.post(LIST, {"email": "x@example.com", "stripe_account": ACCT_A}, format="json")
    assert response.status_code == 400
    assert "no api key" in response.json()["stripe_account"][0].lower()
    assert posts(stripe_settings) == []


# -- one customer per user and account ---------------------------------------------------------


def test_a_user_may_have_one_customer_per_account(api, connected, django_user_model):
    owner = django_user_model.objects.create_user("owner")
    local_only(email="own@example.com", user=owner)
    elsewhere = {"email": "a@example.com", "user": owner.pk, "stripe_account": ACCT_A}
    assert api.post(LIST, elsewhere, format="json").status_code == 201

    again = api.post(LIST, {**elsewhere, "email": "b@example.com"}, format="json")
    assert again.status_code == 400
    assert again.json()["user"][0].startswith("user: already has a customer in this account")
