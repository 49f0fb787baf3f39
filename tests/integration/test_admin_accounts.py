"""The Customer admin with several accounts: the account and mode filters, the account column,
search by account id, the account on the change page (read-only, in the dashboard link), the
warning for a disconnected account, and the choice of account on the add form (pushed there).

Rows are made directly (``bulk_create``, no push) where only the admin's reading is tested;
the add form pushes to the emulator's store of the chosen account.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import WARNING
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_stripe_customers.accounts import find
from django_stripe_customers.models import Customer, StripeAccount, SyncStatus
from django_stripe_customers.sync.connect import deauthorize
from tests.support.admin_pages import ADD, CHANGELIST, change_url, form_data, result_rows
from tests.support.connected import ACCT_A, ACCT_B

pytestmark = pytest.mark.django_db


def _rows() -> None:
    """Own and connected rows, in both modes, in Stripe already (synced: nothing to push)."""
    synced = {"sync_status": SyncStatus.SYNCED}
    Customer.objects.bulk_create(
        [
            Customer(stripe_id="cus_own_test", email="own-test@example.com", **synced),
            Customer(
                stripe_id="cus_own_live", email="own-live@example.com", livemode=True, **synced
            ),
            Customer(
                stripe_id="cus_a_test",
                email="a-test@example.com",
                stripe_account=ACCT_A,
                **synced,
            ),
            Customer(
                stripe_id="cus_a_live",
                email="a-live@example.com",
                stripe_account=ACCT_A,
                livemode=True,
                **synced,
            ),
        ]
    )


ALL = {"own-test", "own-live", "a-test", "a-live"}


def _row(html: str, name: str) -> str:
    """The change page's row of ``name``."""
    return html.split(f'class="form-row field-{name}"', 1)[1].split('class="form-row', 1)[0]


def _shown(response: Any) -> set[str]:
    rows = result_rows(response)
    return {name for name in ALL if f"{name}@example.com" in rows}


# -- the list ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ALL),
        ({"stripe_account": "own"}, {"own-test", "own-live"}),
        ({"stripe_account": ACCT_A}, {"a-test", "a-live"}),
        ({"stripe_account": ACCT_B}, set()),
        ({"livemode__exact": "1"}, {"own-live", "a-live"}),
        ({"livemode__exact": "0"}, {"own-test", "a-test"}),
        ({"stripe_account": "own", "livemode__exact": "1"}, {"own-live"}),
        ({"stripe_account": ACCT_A, "livemode__exact": "0"}, {"a-test"}),
    ],
)
def test_account_and_mode_filters_narrow_the_list(admin_client, stripe_settings, params, expected):
    _rows()
    response = admin_client.get(CHANGELIST, params)
    assert response.status_code == 200
    if expected:
        assert _shown(response) == expected
    else:
        assert "0 results" in response.content.decode()


def test_the_filters_offer_the_accounts_the_table_holds_and_both_modes(
    admin_client, stripe_settings
):
    _rows()
    html = admin_client.get(CHANGELIST).content.decode()
    assert "By Stripe account" in html and "By mode" in html
    assert 'href="?stripe_account=own"' in html and ">Own account</a>" in html
    assert f'href="?stripe_account={ACCT_A}"' in html
    assert ACCT_B not in html, "only accounts present in the table are offered"
    assert 'href="?livemode__exact=1"' in html and ">live</a>" in html
    assert 'href="?livemode__exact=0"' in html and ">test</a>" in html


def test_the_account_filter_treats_an_empty_account_as_the_own_account(
    admin_client, stripe_settings
):
    Customer.objects.bulk_create(
        [Customer(stripe_id="cus_blank", email="own-test@example.com", stripe_account="")]
    )
    Customer.objects.bulk_create(
        [Customer(stripe_id="cus_a", email="a-test@example.com", stripe_account=ACCT_A)]
    )
    html = admin_client.get(CHANGELIST).content.decode()
    assert html.count('href="?stripe_account=own"') == 1, "one choice for null and empty"
    assert _shown(admin_client.get(CHANGELIST, {"stripe_account": "own"})) == {"own-test"}


def test_a_bad_mode_value_is_refused_as_django_refuses_bad_filters(admin_client, stripe_settings):
    _rows()
    response = admin_client.get(CHANGELIST, {"livemode__exact": "maybe"})
    assert response.status_code == 302
    assert response.url.endswith("?e=1")


def test_the_accounts_are_read_with_one_query(admin_client, stripe_settings):
    _rows()
    admin_client.get(CHANGELIST)  # warm the session and caches
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(CHANGELIST).status_code == 200
    distinct = [
        q["sql"] for q in queries if "DISTINCT" in q["sql"] and '"stripe_account"' in q["sql"]
    ]
    assert len(distinct) == 1, distinct


def test_the_account_column_shows_only_when_the_table_holds_several_accounts(
    admin_client, stripe_settings
):
    Customer.objects.bulk_create([Customer(stripe_id="cus_own", email="own-test@example.com")])
    response = admin_client.get(CHANGELIST)
    assert "column-account_column" not in response.content.decode()

    Customer.objects.bulk_create(
        [Customer(stripe_id="cus_a", email="a-test@example.com", stripe_account=ACCT_A)]
    )
    response = admin_client.get(CHANGELIST)
    html = response.content.decode()
    assert "column-account_column" in html and ">Stripe account</a>" in html
    rows = result_rows(response)
    assert f"{ACCT_A} (test mode)" in rows and "Own account (test mode)" in rows


def test_searching_an_account_id_finds_its_customers(admin_client, stripe_settings):
    _rows()
    assert _shown(admin_client.get(CHANGELIST, {"q": ACCT_A})) == {"a-test", "a-live"}


# -- the change page ---------------------------------------------------------------------------


def _connected_row(**fields: Any) -> Customer:
    (customer,) = Customer.objects.bulk_create(
        [
            Customer(
                stripe_id="cus_conn",
                email="a-test@example.com",
                stripe_account=ACCT_A,
                sync_status=SyncStatus.SYNCED,
                **fields,
            )
        ]
    )
    return customer


def test_the_change_page_shows_the_account_read_only_and_links_to_its_dashboard(
    admin_client, connected, settings
):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer = _connected_row()
    html = admin_client.get(change_url(customer)).content.decode()
    row = _row(html, "account_display")
    assert '<div class="readonly">' in row and f"{ACCT_A} (test mode)" in row
    panel = html.split('id="sync-panel"', 1)[1].split("</fieldset>", 1)[0]
    assert f'href="https://dashboard.stripe.com/{ACCT_A}/test/customers/cus_conn"' in panel
    assert f"({ACCT_A}, test mode)" in panel

    data = form_data(admin_client, change_url(customer))
    assert not {"stripe_account", "livemode", "account"} & set(data), "no input for them"
    data.update(stripe_account=ACCT_B, livemode="on", account=f"live:{ACCT_B}", name="Renamed")
    assert admin_client.post(change_url(customer), data).status_code == 302
    customer.refresh_from_db()
    assert (customer.name, customer.stripe_account, customer.livemode) == ("Renamed", ACCT_A, False)


def test_the_own_account_is_shown_by_name_and_its_link_has_no_account(
    admin_client, stripe_settings
):
    (customer,) = Customer.objects.bulk_create(
        [Customer(stripe_id="cus_own", email="own-live@example.com", livemode=True)]
    )
    html = admin_client.get(change_url(customer)).content.decode()
    assert "Own account (live mode)" in _row(html, "account_display")
    assert 'href="https://dashboard.stripe.com/customers/cus_own"' in html


def test_a_disconnected_account_is_warned_about_on_its_customers_pages(admin_client, connected):
    customer = _connected_row()
    (own,) = Customer.objects.bulk_create([Customer(stripe_id="cus_own", email="o@example.com")])
    deauthorize(find(ACCT_A, False))  # as account.application.deauthorized does

    response = admin_client.get(change_url(customer))
    warnings = [m for m in response.context["messages"] if m.level == WARNING]
    assert len(warnings) == 1
    assert f"{ACCT_A} (test mode), disconnected from the platform on" in str(warnings[0])
    assert "local edits are no longer sent to Stripe" in str(warnings[0])
    html = response.content.decode()
    assert 'class="messagelist"' in html and "disconnected from the platform on" in html
    assert "disconnected from the platform on" in _row(html, "account_display")

    other = admin_client.get(change_url(own))
    assert not [m for m in other.context["messages"] if m.level == WARNING]
    assert "disconnected from the platform" not in other.content.decode()


def test_a_live_record_of_the_account_does_not_warn_a_test_row(admin_client, connected):
    customer = _connected_row()
    StripeAccount.objects.create(
        stripe_account=ACCT_A, livemode=True, connected=True, deauthorized_at=timezone.now()
    )
    response = admin_client.get(change_url(customer))
    assert not [m for m in response.context["messages"] if m.level == WARNING]


# -- the add form ------------------------------------------------------------------------------


def test_with_one_account_the_add_form_has_no_account_choice(admin_client, stripe_settings):
    data = form_data(admin_client, ADD)
    assert "account" not in data
    assert 'name="account"' not in admin_client.get(ADD).content.decode()


def test_the_add_form_offers_the_configured_accounts_default_first(admin_client, connected):
    StripeAccount.objects.create(stripe_account=ACCT_B, livemode=False, deauthorized_at=None)
    html = admin_client.get(ADD).content.decode()
    select = html.split('name="account"', 1)[1].split("</select>", 1)[0]
    values = [part.split('"', 1)[0] for part in select.split('value="')[1:]]
    assert values == ["test:", f"test:{ACCT_A}", f"test:{ACCT_B}"]
    assert 'value="test:" selected' in select
    assert "Own account (test mode)" in select and f"{ACCT_A} (test mode)" in select


def test_accounts_listed_from_stripe_are_offered_when_a_key_reaches_them(
    admin_client, connected, settings
):
    key = settings.STRIPE_CUSTOMERS["API_KEY"]
    settings.STRIPE_CUSTOMERS = {
        **settings.STRIPE_CUSTOMERS,
        "ACCOUNTS": [{"API_KEY": key, "CONNECTED": "all"}],
    }
    StripeAccount.objects.create(stripe_account=ACCT_B, livemode=False, connected=True)
    StripeAccount.objects.create(stripe_account=ACCT_A, livemode=True, connected=True)  # no key
    select = admin_client.get(ADD).content.decode().split('name="account"', 1)[1]
    values = [part.split('"', 1)[0] for part in select.split("</select>", 1)[0].split('value="')]
    assert values[1:] == ["test:", f"test:{ACCT_B}"]


def test_a_disconnected_account_is_not_offered(admin_client, connected):
    StripeAccount.objects.create(
        stripe_account=ACCT_B, livemode=False, connected=True, deauthorized_at=timezone.now()
    )
    select = admin_client.get(ADD).content.decode().split('name="account"', 1)[1]
    assert ACCT_B not in select.split("</select>", 1)[0]


def test_a_customer_added_in_a_connected_account_is_created_there(admin_client, connected):
    data = form_data(admin_client, ADD)
    assert data["account"] == "test:"
    data.update(email="conn@example.com", account=f"test:{ACCT_A}")
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    customer = Customer.objects.get(email="conn@example.com")
    assert (customer.stripe_account, customer.livemode) == (ACCT_A, False)
    assert customer.sync_status == SyncStatus.SYNCED, customer.sync_error
    assert customer.stripe_id in connected.customers_of(ACCT_A)
    assert customer.stripe_id not in connected.customers_of(None), "not in the platform's"
    (create,) = [r for r in connected.requests if r.method == "POST"]
    assert {k.lower(): v for k, v in create.headers.items()}.get("stripe-account") == ACCT_A


def test_an_account_not_offered_is_refused(admin_client, connected):
    data = form_data(admin_client, ADD)
    data.update(email="x@example.com", account="test:acct_1Zzzzzzzzzzzzzzz")
    response = admin_client.post(ADD, data)
    assert response.status_code == 200
    assert "account" in response.context["adminform"].form.errors
    assert not Customer.objects.filter(email="x@example.com").exists()
