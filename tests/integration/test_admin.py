"""The Customer admin through Django's test client, against the Stripe emulator.

Each test runs in a transaction rolled back after it; each request of the test client ends as
a committed request would (``tests.support.http_clients``), and ``committed()`` does the same
for a save in the test itself, so a save pushes (Celery eager) as it does in production.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_stripe_customers import schema
from django_stripe_customers.admin import (
    FieldChange,
    format_amount,
    pending_changes,
)
from django_stripe_customers.clients import get_client
from django_stripe_customers.models import Customer, PullRun, SyncStatus
from tests.support.admin_pages import (
    ADD,
    CHANGELIST,
    change_url,
    form_data,
    messages_of,
    result_rows,
)
from tests.support.customers import committed, posts, pushed

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_push_on_save(settings: Any, stripe_settings: Any) -> Any:
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    return stripe_settings


# -- amounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (-500, "usd", "-5.00 USD"),
        (123456, "eur", "1,234.56 EUR"),
        (1000, "jpy", "1,000 JPY"),
        (-2500, "XOF", "-2,500 XOF"),
        (5124, "kwd", "5.124 KWD"),
        (0, "gbp", "0.00 GBP"),
        (-500, None, "-500 (no currency)"),
    ],
)
def test_amounts_are_shown_in_the_currency_s_units(amount, currency, shown):
    assert format_amount(amount, currency) == shown


# -- the list ----------------------------------------------------------------------------------


def test_list_shows_the_columns_badges_and_formatted_balances(admin_client, no_push_on_save):
    Customer.objects.bulk_create(
        [
            Customer(
                stripe_id="cus_synced",
                email="synced@example.com",
                name="Synced",
                balance=-500,
                currency="usd",
                sync_status=SyncStatus.SYNCED,
            ),
            Customer(
                stripe_id="cus_yen",
                email="yen@example.com",
                balance=1000,
                currency="jpy",
                sync_status=SyncStatus.PENDING,
                delinquent=True,
            ),
            Customer(
                stripe_id="cus_failed",
                email="failed@example.com",
                sync_status=SyncStatus.FAILED,
                sync_error="Stripe refused the change (param: email): Invalid email address",
                deleted=True,
            ),
        ]
    )
    response = admin_client.get(CHANGELIST)
    html = response.content.decode()
    for header in ("Email", "Name", "Stripe id", "Sync", "Balance", "Delinquent", "Deleted"):
        assert f">{header}</a>" in html or f">{header}</span>" in html, header
    rows = result_rows(response)
    assert '<span class="sc-badge sc-badge--synced"' in rows and ">synced</span>" in rows
    assert '<span class="sc-badge sc-badge--pending"' in rows and ">pending push</span>" in rows
    assert '<span class="sc-badge sc-badge--failed"' in rows and ">failed</span>" in rows
    assert 'title="Stripe refused the change (param: email): Invalid email address"' in rows
    assert "-5.00 USD" in rows and "1,000 JPY" in rows
    assert "stripe_customers/admin.css" in html, "the badge styles are linked"


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("jenny@", {"jenny@example.com"}),
        ("Rosen", {"jenny@example.com"}),
        ("+33612", {"jenny@example.com"}),
        ("cus_other", {"other@example.com"}),
        ("gold", {"jenny@example.com"}),  # a metadata value
        ("Gold", {"jenny@example.com"}),  # case-insensitive
        ("olde", {"other@example.com"}),  # part of a metadata value
        ("tier", set()),  # a metadata key is not a value
        ("caf\u00e9", {"other@example.com"}),  # non-ASCII, stored escaped on SQLite
    ],
)
def test_search_by_email_name_phone_stripe_id_and_metadata_value(admin_client, term, expected):
    Customer.objects.bulk_create(
        [
            Customer(
                stripe_id="cus_jenny",
                email="jenny@example.com",
                name="Jenny Rosen",
                phone="+33612345678",
                metadata={"tier": "gold"},
                sync_status=SyncStatus.SYNCED,
            ),
            Customer(
                stripe_id="cus_other",
                email="other@example.com",
                name="Someone Else",
                metadata={"tier": "holder", "shop": "caf\u00e9"},
                sync_status=SyncStatus.SYNCED,
            ),
        ]
    )
    response = admin_client.get(CHANGELIST, {"q": term})
    rows = result_rows(response) if expected else response.content.decode()
    found = {email for email in ("jenny@example.com", "other@example.com") if email in rows}
    if not expected:
        assert "0 results" in rows
    else:
        assert found == expected


FILTER_CASES = [
    ("sync_status__exact", "failed", "failed@example.com"),
    ("deleted__exact", "1", "deleted@example.com"),
    ("delinquent__exact", "1", "delinquent@example.com"),
    ("livemode__exact", "1", "live@example.com"),
    ("currency", "eur", "euro@example.com"),
    ("tax_exempt__exact", "reverse", "reverse@example.com"),
]


@pytest.mark.parametrize(("param", "value", "only"), FILTER_CASES)
def test_each_filter_narrows_the_list(admin_client, param, value, only):
    plain = {"sync_status": SyncStatus.SYNCED, "tax_exempt": "none"}
    Customer.objects.bulk_create(
        [
            Customer(stripe_id="cus_plain", email="plain@example.com", **plain),
            Customer(stripe_id="cus_f", email="failed@example.com", sync_status="failed"),
            Customer(stripe_id="cus_d", email="deleted@example.com", deleted=True, **plain),
            Customer(stripe_id="cus_l", email="delinquent@example.com", delinquent=True, **plain),
            Customer(stripe_id="cus_live", email="live@example.com", livemode=True, **plain),
            Customer(stripe_id="cus_e", email="euro@example.com", currency="eur", **plain),
            Customer(
                stripe_id="cus_r",
                email="reverse@example.com",
                tax_exempt="reverse",
                sync_status=SyncStatus.SYNCED,
            ),
        ]
    )
    unfiltered = admin_client.get(CHANGELIST)
    assert f"?{param}={value}" in unfiltered.content.decode(), "the filter is offered"
    rows = result_rows(admin_client.get(CHANGELIST, {param: value}))
    assert only in rows
    assert "plain@example.com" not in rows


def _customers(count: int, start: int = 0) -> None:
    Customer.objects.bulk_create(
        Customer(
            stripe_id=f"cus_{number:05d}",
            email=f"c{number}@example.com",
            name=f"Customer {number}",
            metadata={"n": str(number)},
            balance=-number,
            currency="usd",
            sync_status=SyncStatus.SYNCED,
        )
        for number in range(start, start + count)
    )


def test_the_changelist_runs_the_same_number_of_queries_for_10_and_100_rows(admin_client):
    admin_client.get(CHANGELIST)  # warm the session and caches
    _customers(10)
    with CaptureQueriesContext(connection) as ten:
        assert admin_client.get(CHANGELIST).status_code == 200
    _customers(90, start=10)
    with CaptureQueriesContext(connection) as hundred:
        response = admin_client.get(CHANGELIST)
    assert response.context["cl"].result_count == 100
    assert result_rows(response).count('class="sc-badge') == 100
    assert len(hundred) == len(ten), [q["sql"] for q in hundred]
    assert len(hundred) <= 10
    (page,) = [q["sql"] for q in hundred if '"stripe_customers_customer"."email"' in q["sql"]]
    assert '"stripe_data"' not in page, "the snapshots are not read for the list"


# -- the change form: structured fields ---------------------------------------------------------


def test_structured_fields_round_trip_to_the_model_and_to_stripe(admin_client, stripe_settings):
    customer = pushed(email="jenny@example.com", metadata={"tier": "silver", "old": "x"})
    data = form_data(admin_client, change_url(customer))
    assert [data[f"metadata_key_{i}"] for i in range(3)] == ["old", "tier", ""], "sorted rows"
    assert data["metadata_value_1"] == "silver"
    data.update(
        {
            "address_line1": "1 Main St",
            "address_city": "Paris",
            "address_postal_code": "75001",
            "address_country": "FR",
            "shipping_name": "Jenny Rosen",
            "shipping_phone": "+33 1 23",
            "shipping_address_line1": "2 Dock Rd",
            "shipping_address_city": "Lyon",
            "shipping_address_country": "FR",
            "invoice_settings_footer": "Thank you",
            "invoice_settings_rendering_options_amount_tax_display": "exclude_tax",
            "invoice_settings_custom_fields_key_0": "PO",
            "invoice_settings_custom_fields_value_0": "12345",
            "metadata_value_0": "",  # "old" removed by emptying its value
            "metadata_value_1": "gold",  # changed
            "metadata_key_2": "region",  # added in an empty row
            "metadata_value_2": "eu",
            "preferred_locales": "fr-CA, en",
        }
    )
    response = admin_client.post(change_url(customer), data)
    assert response.status_code == 302, response.content.decode()[:3000]

    customer.refresh_from_db()
    assert customer.address == {
        "line1": "1 Main St",
        "line2": None,
        "postal_code": "75001",
        "city": "Paris",
        "state": None,
        "country": "FR",
    }
    assert customer.shipping["name"] == "Jenny Rosen"
    assert customer.shipping["address"]["city"] == "Lyon"
    assert customer.invoice_settings["footer"] == "Thank you"
    assert customer.invoice_settings["custom_fields"] == [{"name": "PO", "value": "12345"}]
    assert customer.invoice_settings["rendering_options"]["amount_tax_display"] == "exclude_tax"
    assert customer.metadata == {"tier": "gold", "region": "eu"}
    assert customer.preferred_locales == ["fr-CA", "en"]
    assert customer.sync_status == SyncStatus.SYNCED, customer.sync_error

    update = posts(stripe_settings)[-1]
    assert update.params["metadata"] == {"tier": "gold", "region": "eu", "old": ""}
    assert update.params["address"]["city"] == "Paris"
    remote = stripe_settings.customers[customer.stripe_id]
    assert remote["invoice_settings"]["custom_fields"] == [{"name": "PO", "value": "12345"}]
    assert remote["metadata"] == {"tier": "gold", "region": "eu"}
    assert remote["shipping"]["address"]["city"] == "Lyon"
    assert remote["preferred_locales"] == ["fr-CA", "en"]


def test_saving_an_untouched_form_sends_no_change(admin_client, stripe_settings):
    client = get_client()
    created = client.customers.create(
        {
            "email": "jenny@example.com",
            "address": {"line1": "1 Main St", "city": "Paris", "country": "FR"},
            "shipping": {"name": "J", "address": {"line1": "2 Dock Rd"}},
            "metadata": {"tier": "gold"},
            "preferred_locales": ["fr", "en"],
        }
    )
    from django_stripe_customers.sync import pull_customer

    customer = pull_customer(created["id"])
    before = len(posts(stripe_settings))
    data = form_data(admin_client, change_url(customer))
    response = admin_client.post(change_url(customer), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED
    assert len(posts(stripe_settings)) == before, "nothing to send, nothing sent"


def test_clearing_an_address_sends_an_empty_value(admin_client, stripe_settings):
    customer = pushed(email="a@example.com", address={"line1": "1 Main St", "country": "FR"})
    data = form_data(admin_client, change_url(customer))
    data.update(address_line1="", address_country="")
    assert admin_client.post(change_url(customer), data).status_code == 302
    customer.refresh_from_db()
    assert customer.address is None
    assert posts(stripe_settings)[-1].params == {"address": ""}


def test_adding_a_customer_creates_it_in_stripe(admin_client, stripe_settings):
    data = form_data(admin_client, ADD)
    data.update(
        email="new@example.com",
        name="New",
        metadata_key_0="source",
        metadata_value_0="admin",
        address_city="Berlin",
        address_country="DE",
    )
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    customer = Customer.objects.get(email="new@example.com")
    assert customer.sync_status == SyncStatus.SYNCED
    assert stripe_settings.customers[customer.stripe_id]["metadata"] == {"source": "admin"}
    assert stripe_settings.customers[customer.stripe_id]["address"]["city"] == "Berlin"


# -- the change form: Stripe's limits ----------------------------------------------------------

MAX = schema.METADATA_LIMITS


def _many_keys(count: int) -> dict[str, str]:
    rows: dict[str, str] = {}
    for index in range(count):
        rows[f"metadata_key_{index}"] = f"k{index}"
        rows[f"metadata_value_{index}"] = "v"
    return rows


LIMIT_CASES = [
    ("email", {"email": "a" * 501 + "@example.com"}, "email: at most 512 characters (got 513)"),
    ("email", {"email": "not an email"}, "email: not a valid email address"),
    ("name", {"name": "n" * 257}, "name: at most 256 characters (got 257)"),
    ("phone", {"phone": "1" * 21}, "phone: at most 20 characters (got 21)"),
    ("business_name", {"business_name": "b" * 151}, "business_name: at most 150 characters"),
    ("description", {"description": "d" * 5001}, "description: at most 5000 characters"),
    ("invoice_prefix", {"invoice_prefix": "abc"}, "invoice_prefix: 1 to 12 uppercase letters"),
    ("invoice_prefix", {"invoice_prefix": "A" * 13}, "invoice_prefix: 1 to 12 uppercase"),
    ("tax_exempt", {"tax_exempt": "sometimes"}, "tax_exempt: Select a valid choice"),
    (
        "preferred_locales",
        {"preferred_locales": "en, not a locale"},
        "preferred_locales[1]: not a locale",
    ),
    (
        "next_invoice_sequence",
        {"next_invoice_sequence": "x"},
        "next_invoice_sequence: Enter a whole number",
    ),
    ("metadata", _many_keys(MAX["max_keys"] + 1), "metadata: at most 50 keys (got 51)"),
    (
        "metadata",
        {"metadata_key_0": "k" * 41, "metadata_value_0": "v"},
        "metadata[kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...]: keys are at most 40 characters (got 41)",
    ),
    (
        "metadata",
        {"metadata_key_0": "a[b]", "metadata_value_0": "v"},
        "metadata[a[b]]: keys may not contain '[' or ']'",
    ),
    (
        "metadata",
        {"metadata_key_0": "k", "metadata_value_0": "v" * 501},
        "metadata[k]: values are at most 500 characters (got 501)",
    ),
    (
        "metadata",
        {"metadata_key_0": "", "metadata_value_0": "v"},
        "metadata: row 1 has a value but no key",
    ),
    (
        "metadata",
        {
            "metadata_key_0": "k",
            "metadata_value_0": "1",
            "metadata_key_1": "k",
            "metadata_value_1": "2",
        },
        "metadata[k]: the key appears twice",
    ),
    (
        "address",
        {"address_line1": "l" * 5001},
        "address[line1]: at most 5000 characters (got 5001)",
    ),
    (
        "shipping",
        {"shipping_address_city": "Paris"},
        "shipping[name]: required when shipping is set",
    ),
    ("shipping", {"shipping_name": "Jenny"}, "shipping[address]: required when shipping is set"),
    (
        "invoice_settings",
        {
            "invoice_settings_custom_fields_key_0": "n" * 41,
            "invoice_settings_custom_fields_value_0": "v",
        },
        "invoice_settings[custom_fields][0][name]: at most 40 characters (got 41)",
    ),
    (
        "invoice_settings",
        {
            "invoice_settings_custom_fields_key_0": "PO",
            "invoice_settings_custom_fields_value_0": "v" * 141,
        },
        "invoice_settings[custom_fields][0][value]: at most 140 characters (got 141)",
    ),
    (
        "invoice_settings",
        {"invoice_settings_custom_fields_key_0": "PO"},
        "invoice_settings[custom_fields][0][value]: required",
    ),
    (
        "invoice_settings",
        {"invoice_settings_rendering_options_amount_tax_display": "sometimes"},
        "invoice_settings[rendering_options][amount_tax_display]: Select a valid choice",
    ),
]


@pytest.mark.parametrize(
    ("field", "changes", "message"), LIMIT_CASES, ids=[c[2][:40] for c in LIMIT_CASES]
)
def test_every_limit_is_refused_next_to_its_field_naming_it_and_nothing_is_sent(
    admin_client, stripe_settings, field, changes, message
):
    customer = pushed(email="jenny@example.com", metadata={})
    sent = len(stripe_settings.requests)
    data = form_data(admin_client, change_url(customer))
    data.update(changes)
    response = admin_client.post(change_url(customer), data)
    assert response.status_code == 200, "the form is shown again with the error"
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert any(message in error for error in errors[field]), errors[field]
    html = response.content.decode()
    shown_in_row = (
        f'class="form-row errors field-{field}' in html  # a field alone on its line
        or f"fieldBox field-{field} errors" in html  # a field sharing its line
    )
    assert shown_in_row, f"the error is shown in {field}'s row"
    assert len(stripe_settings.requests) == sent, "nothing sent to Stripe"
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED


def test_clearing_what_stripe_cannot_clear_is_refused_by_the_form(admin_client, stripe_settings):
    customer = pushed(email="a@example.com", invoice_settings={"footer": "Thanks"})
    data = form_data(admin_client, change_url(customer))
    data["invoice_settings_footer"] = ""
    response = admin_client.post(change_url(customer), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["invoice_settings"]
    assert "invoice_settings[footer]: Stripe cannot clear this value once it is set" in errors


# -- read-only fields --------------------------------------------------------------------------

#: What Stripe computes, and the row of the change page that shows it (read-only).
READ_ONLY = {
    "stripe_id": "stripe_id",
    "created": "created",
    "livemode": "livemode",
    "currency": "currency",
    "delinquent": "delinquent",
    "deleted": "deleted",
    "discount": "discount_display",
    "cash_balance": "cash_balance_display",
    "invoice_credit_balance": "invoice_credit_balance_display",
    "sources": "sources_display",
    "subscriptions": "subscriptions_display",
    "tax_ids": "tax_ids_display",
    "tax": "tax_display",
    "test_clock": "test_clock",
}


def test_fields_stripe_computes_are_shown_read_only(admin_client, stripe_settings):
    customer = pushed(email="a@example.com")
    Customer.objects.filter(pk=customer.pk).update(
        discount={"id": "di_1", "coupon": {"id": "SUMMER", "percent_off": 10}}
    )
    data = form_data(admin_client, change_url(customer))
    html = admin_client.get(change_url(customer)).content.decode()
    for name, row in READ_ONLY.items():
        assert name not in data, f"{name} has no input"
        shown = html.split(f'class="form-row field-{row}"', 1)
        assert len(shown) == 2, f"{name} is shown"
        assert '<div class="readonly">' in shown[1].split("</fieldset>", 1)[0].split("form-row")[0]
    assert "SUMMER" in html and 'class="sc-json"' in html, "the discount is shown, readable"

    data.update(stripe_id="cus_forged", livemode="on", delinquent="on", deleted="on")
    assert admin_client.post(change_url(customer), data).status_code == 302
    customer.refresh_from_db()
    assert customer.stripe_id != "cus_forged"
    assert not customer.livemode and not customer.delinquent and not customer.deleted


# -- the sync panel ----------------------------------------------------------------------------


def test_the_sync_panel_shows_pending_edits_field_by_field(admin_client, no_push_on_save, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": True}
    customer = pushed(email="old@example.com", metadata={"tier": "silver", "gone": "1"})
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer.email = "new@example.com"
    customer.metadata = {"tier": "gold"}
    customer.address = {"city": "Paris", "country": "FR"}
    customer.save()

    assert pending_changes(customer) == [
        FieldChange("address[city]", None, "Paris"),
        FieldChange("address[country]", None, "FR"),
        FieldChange("email", "old@example.com", "new@example.com"),
        FieldChange("metadata[gone]", "1", None),
        FieldChange("metadata[tier]", "silver", "gold"),
    ]
    html = admin_client.get(change_url(customer)).content.decode()
    panel = html.split('id="sync-panel"', 1)[1].split("</fieldset>", 1)[0]
    assert "sc-badge--pending" in panel
    assert "Local edits are waiting to be pushed to Stripe." in panel
    assert f"https://dashboard.stripe.com/test/customers/{customer.stripe_id}" in panel
    assert "Last synced" in panel and "never" not in panel
    for path, old, new in (
        ("email", "old@example.com", "new@example.com"),
        ("metadata[tier]", "silver", "gold"),
    ):
        row = panel.split(f"<code>{path}</code>", 1)[1].split("</tr>", 1)[0]
        assert old in row and new in row
    gone = panel.split("<code>metadata[gone]</code>", 1)[1].split("</tr>", 1)[0]
    assert "(not set)" in gone


def test_the_sync_panel_says_why_a_push_failed_in_plain_words(admin_client, stripe_settings):
    customer = pushed(email="a@example.com")
    del stripe_settings.customers[customer.stripe_id]  # gone from this account: 404
    customer.name = "Renamed"
    with committed():
        customer.save()
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.FAILED
    html = admin_client.get(change_url(customer)).content.decode()
    panel = html.split('id="sync-panel"', 1)[1].split("</fieldset>", 1)[0]
    assert "sc-badge--failed" in panel
    assert "The last push failed; the local edits are kept." in panel
    assert "check the API key" in panel, customer.sync_error
    assert "<code>name</code>" in panel


def test_a_customer_not_yet_in_stripe_says_so(admin_client, no_push_on_save):
    customer = Customer.objects.create(email="local@example.com")
    html = admin_client.get(change_url(customer)).content.decode()
    assert "Not created in Stripe yet: the next push creates it." in html
    assert "never" in html
    assert "<code>email</code>" in html


# -- actions -----------------------------------------------------------------------------------


def _act(client: Any, action: str, *customers: Customer) -> Any:
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [c.pk for c in customers]},
        follow=True,
    )


def test_pull_from_stripe_applies_upstream_changes_and_names_failures(
    admin_client, stripe_settings
):
    one = pushed(email="one@example.com")
    two = pushed(email="two@example.com")
    local_only = Customer.objects.bulk_create([Customer(email="local@example.com")])[0]
    stripe_settings.customers[one.stripe_id]["email"] = "changed-upstream@example.com"
    del stripe_settings.customers[two.stripe_id]

    response = _act(admin_client, "pull_from_stripe", one, two, local_only)

    one.refresh_from_db()
    assert one.email == "changed-upstream@example.com"
    notes = messages_of(response)
    assert "Pulled 1 customer." in notes
    (failure,) = [n for n in notes if n.startswith("Could not pull 2 customers:")]
    assert two.stripe_id in failure and f"#{local_only.pk}" in failure


def test_push_to_stripe_pushes_pending_rows_now(admin_client, no_push_on_save):
    emulator = no_push_on_save
    pending = Customer.objects.create(email="pending@example.com")
    customer_in_sync = Customer.objects.bulk_create(
        [Customer(email="s@example.com", stripe_id="cus_s", sync_status=SyncStatus.SYNCED)]
    )[0]
    failed = Customer.objects.bulk_create(
        [Customer(email="f@example.com", sync_status=SyncStatus.FAILED, sync_error="x")]
    )[0]
    assert emulator.count("POST") == 0

    response = _act(admin_client, "push_to_stripe", pending, customer_in_sync, failed)

    pending.refresh_from_db()
    assert pending.sync_status == SyncStatus.SYNCED and pending.stripe_id in emulator.customers
    notes = messages_of(response)
    assert "Pushed 1 customer." in notes
    assert "1 customer was already in sync (nothing to push)." in notes
    (failure,) = [n for n in notes if n.startswith("Could not push 1 customer:")]
    assert f"#{failed.pk}" in failure and "Retry failed pushes" in failure


def test_push_reports_a_refused_push_with_stripe_s_reason(admin_client, stripe_settings, settings):
    customer = pushed(email="a@example.com")
    del stripe_settings.customers[customer.stripe_id]  # not in this account: 404
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer.name = "Renamed"
    customer.save()
    response = _act(admin_client, "push_to_stripe", customer)
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.FAILED
    (failure,) = [n for n in messages_of(response) if n.startswith("Could not push")]
    assert "Stripe refused the change" in failure and customer.sync_error in failure


def test_retry_failed_pushes_marks_failed_rows_pending_and_pushes_them(
    admin_client, stripe_settings
):
    customer = pushed(email="a@example.com")
    Customer.objects.filter(pk=customer.pk).update(
        name="Retried", sync_status=SyncStatus.FAILED, sync_error="Stripe was down"
    )
    in_sync = pushed(email="b@example.com")

    response = _act(admin_client, "retry_failed_pushes", customer, in_sync)

    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SYNCED and customer.sync_error == ""
    assert stripe_settings.customers[customer.stripe_id]["name"] == "Retried"
    notes = messages_of(response)
    assert "Pushed 1 customer." in notes
    assert "1 selected customer had no failed push to retry." in notes


def test_retry_names_the_rows_that_fail_again(admin_client, stripe_settings):
    customer = pushed(email="a@example.com")
    del stripe_settings.customers[customer.stripe_id]
    Customer.objects.filter(pk=customer.pk).update(name="X", sync_status=SyncStatus.FAILED)
    response = _act(admin_client, "retry_failed_pushes", customer)
    (failure,) = [n for n in messages_of(response) if n.startswith("Could not push 1 customer:")]
    assert customer.stripe_id in failure and "No such customer" in failure


@pytest.fixture
def viewer(client: Any) -> Any:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(user)
    return client


@pytest.fixture
def editor(client: Any) -> Any:
    user = User.objects.create_user("editor", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_customer", "change_customer"])
    )
    client.force_login(user)
    return client


ACTIONS = ("pull_from_stripe", "push_to_stripe", "retry_failed_pushes")


def test_actions_need_the_change_permission(viewer, no_push_on_save):
    customer = Customer.objects.create(email="a@example.com")
    html = viewer.get(CHANGELIST).content.decode()
    assert "a@example.com" in html
    for action in ACTIONS:
        assert f'value="{action}"' not in html
    response = _act(viewer, "push_to_stripe", customer)
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.PENDING, "nothing pushed"
    assert no_push_on_save.count("POST") == 0
    assert not any(n.startswith("Pushed") for n in messages_of(response))


def test_a_staff_user_with_change_permission_sees_the_actions(editor, stripe_settings):
    Customer.objects.create(email="a@example.com")
    html = editor.get(CHANGELIST).content.decode()
    for action in ACTIONS:
        assert f'value="{action}"' in html


def test_a_viewer_sees_the_change_page_read_only(viewer, stripe_settings):
    customer = pushed(email="a@example.com", metadata={"tier": "gold"}, address={"city": "Paris"})
    response = viewer.get(change_url(customer))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="email"' not in html and "a@example.com" in html
    assert "Paris" in html and "gold" in html


# -- pull runs ---------------------------------------------------------------------------------


def test_pull_runs_are_listed_read_only(admin_client):
    run = PullRun.objects.create(created=3, updated=1, requests=2, errors=["boom"])
    html = admin_client.get("/admin/stripe_customers/pullrun/").content.decode()
    assert "0/1" in html
    assert admin_client.get("/admin/stripe_customers/pullrun/add/").status_code == 403
    change = admin_client.get(f"/admin/stripe_customers/pullrun/{run.pk}/change/")
    assert change.status_code == 200 and 'name="created"' not in change.content.decode()
