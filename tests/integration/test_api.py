"""The DRF API against the Stripe emulator: verbs, lookups, filters, pagination, the pull action,
permissions, validation errors (nothing saved, nothing sent) and the key kept out of responses.

Tier 1 runs Celery eagerly, so a committed save through the API pushes before the response.
Each test runs in a transaction rolled back after it, its requests ending as committed ones
(``tests.support.http_clients``); the few whose answer shows the push made inside the request
are transactional, so the save really commits there.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django.contrib.auth.models import Permission
from django.db import connections
from django.urls import reverse
from rest_framework.permissions import AllowAny

from django_stripe_customers import schema
from django_stripe_customers.api.filters import identifier_filter, parse_timestamp
from django_stripe_customers.api.serializers import WRITABLE_FIELDS
from django_stripe_customers.clients import clear_client_cache, get_client
from django_stripe_customers.models import Customer, SyncStatus
from tests.support.customers import local_only, pushed
from tests.support.http_clients import CommittingAPIClient

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
LIST = "/api/customers/"


def detail(identifier: object) -> str:
    return f"/api/customers/{identifier}/"


def pull_url(identifier: object) -> str:
    return f"/api/customers/{identifier}/pull/"


# Users without a password: no slow hashing (``force_authenticate`` needs none).
@pytest.fixture
def staff(django_user_model):
    """Staff with the customer permissions the API asks for
    (tests/integration/test_permissions.py covers who may do what)."""
    user = django_user_model.objects.create_user("staff", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="stripe_customers",
            codename__in=["view_customer", "add_customer", "change_customer"],
        )
    )
    return user


@pytest.fixture
def member(django_user_model):
    return django_user_model.objects.create_user("member")


@pytest.fixture
def api(stripe_settings, staff) -> CommittingAPIClient:
    client = CommittingAPIClient()
    client.force_authenticate(staff)
    return client


def at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


# -- routes and representation -------------------------------------------------------------


def test_url_names_are_namespaced():
    assert reverse("stripe_customers_api:customer-list") == LIST
    assert reverse("stripe_customers_api:customer-detail", args=["cus_1"]) == detail("cus_1")
    assert reverse("stripe_customers_api:customer-pull", args=[7]) == pull_url(7)


def test_retrieve_by_stripe_id_shows_stripe_object_plus_sync_fields(api, stripe_settings):
    customer = pushed(email="jenny@example.com", metadata={"order": "1"})

    response = api.get(detail(customer.stripe_id))

    assert response.status_code == 200
    body = response.json()
    expected = {"id", "object", *schema.MIRRORED, "deleted", "pk", "user", "stripe_account"}
    assert set(body) == expected | {"sync_status", "synced_at", "sync_error"}
    remote = stripe_settings.customers[customer.stripe_id]
    assert body["id"] == customer.stripe_id == remote["id"]
    assert body["object"] == "customer"
    assert body["created"] == remote["created"], "unix seconds, as Stripe"
    assert body["email"] == "jenny@example.com"
    assert body["metadata"] == {"order": "1"}
    assert body["invoice_prefix"] == remote["invoice_prefix"]
    assert body["pk"] == customer.pk
    assert body["sync_status"] == "synced"
    assert isinstance(body["synced_at"], int)
    assert body["sync_error"] == ""
    assert body["deleted"] is False


def test_retrieve_by_pk_also_for_a_row_not_in_stripe_yet(api):
    customer = pushed(email="a@example.com")
    draft = local_only(email="draft@example.com")

    assert api.get(detail(customer.pk)).json()["id"] == customer.stripe_id
    body = api.get(detail(draft.pk)).json()
    assert body["id"] is None
    assert body["created"] is None
    assert body["email"] == "draft@example.com"
    assert body["sync_status"] == "pending"


@pytest.mark.parametrize("identifier", ["cus_missing", "999999", "abc", "1" * 30, "cus"])
def test_unknown_or_malformed_ids_are_404(api, identifier):
    pushed(email="a@example.com")
    response = api.get(detail(identifier))
    assert response.status_code == 404
    assert "detail" in response.json()


# -- create ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the answer shows the push made inside the request
def test_create_pushes_to_stripe_and_answers_the_synced_row(api, stripe_settings):
    payload = {
        "email": "jenny@example.com",
        "name": "Jenny Rosen",
        "metadata": {"order_id": "6735"},
        "address": {"line1": "1 Main St", "city": "Paris", "country": "FR"},
        "preferred_locales": ["fr-FR", "en"],
        "tax_exempt": "none",
    }

    response = api.post(LIST, payload, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("cus_")
    assert body["sync_status"] == "synced"
    assert body["id"] in stripe_settings.customers
    (create,) = [r for r in stripe_settings.requests if r.method == "POST"]
    assert create.path == "/v1/customers"
    assert create.params == {**payload, "preferred_locales": {"0": "fr-FR", "1": "en"}}
    remote = stripe_settings.customers[body["id"]]
    assert remote["email"] == "jenny@example.com"
    assert remote["address"]["city"] == "Paris"
    assert body["invoice_prefix"] == remote["invoice_prefix"], "Stripe's answer is shown"
    assert Customer.objects.get(stripe_id=body["id"]).pk == body["pk"]


def test_with_atomic_requests_the_answer_is_pending_and_the_push_follows_the_commit(
    api, stripe_settings, monkeypatch
):
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)

    response = api.post(LIST, {"email": "atomic@example.com"}, format="json")

    assert response.status_code == 201
    assert response.json()["sync_status"] == "pending", "rendered before the commit"
    assert response.json()["id"] is None
    customer = Customer.objects.get(pk=response.json()["pk"])
    assert customer.sync_status == SyncStatus.SYNCED, "pushed once the request committed"
    assert customer.stripe_id in stripe_settings.customers


def test_create_when_stripe_is_down_keeps_the_row_pending(api, settings):
    settings.STRIPE_CUSTOMERS = {
        **settings.STRIPE_CUSTOMERS,
        "API_BASE": "http://127.0.0.1:9",
        "MAX_RETRIES": 0,
    }
    clear_client_cache()

    response = api.post(LIST, {"email": "later@example.com"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["id"] is None
    assert body["sync_status"] == "pending"
    assert api.get(detail(body["pk"])).json()["email"] == "later@example.com"
    clear_client_cache()


def test_bodies_are_json_only(api, stripe_settings):
    response = api.post(LIST, {"email": "a@example.com"})  # multipart
    assert response.status_code == 415
    assert Customer.objects.count() == 0


# -- update ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the answer shows the push made inside the request
def test_put_of_a_retrieved_object_sends_only_the_changed_field(api, stripe_settings):
    customer = pushed(email="a@example.com", name="A", phone="+33100000000")
    body = api.get(detail(customer.stripe_id)).json()
    body["name"] = "B"

    response = api.put(detail(customer.stripe_id), body, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "B"
    assert response.json()["sync_status"] == "synced"
    update = stripe_settings.requests[-1]
    assert (update.method, update.path) == ("POST", f"/v1/customers/{customer.stripe_id}")
    assert update.params == {"name": "B"}
    assert stripe_settings.customers[customer.stripe_id]["name"] == "B"


def test_patch_sends_only_the_changed_metadata_key(api, stripe_settings):
    customer = pushed(email="a@example.com", metadata={"a": "1"})

    response = api.patch(
        detail(customer.stripe_id), {"metadata": {"a": "1", "b": "2"}}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["metadata"] == {"a": "1", "b": "2"}
    assert stripe_settings.requests[-1].params == {"metadata": {"b": "2"}}
    assert stripe_settings.customers[customer.stripe_id]["metadata"] == {"a": "1", "b": "2"}


@pytest.mark.django_db(transaction=True)  # the answer shows the push made inside the request
def test_patch_by_pk_clears_values(api, stripe_settings):
    customer = pushed(email="a@example.com", description="old", metadata={"a": "1"})

    response = api.patch(detail(customer.pk), {"description": None, "metadata": ""}, format="json")

    assert response.status_code == 200
    assert response.json()["description"] is None
    assert response.json()["metadata"] == {}
    assert stripe_settings.requests[-1].params == {"description": "", "metadata": {"a": ""}}
    assert stripe_settings.customers[customer.stripe_id]["metadata"] == {}


def test_read_only_fields_are_ignored(api, stripe_settings):
    customer = pushed(email="a@example.com")
    sent = stripe_settings.count("POST")
    forged = {
        "id": "cus_forged",
        "object": "something",
        "created": 1,
        "delinquent": True,
        "livemode": True,
        "deleted": True,
        "default_source": "card_123",
        "currency": "eur",
        "pk": 12345,
        "sync_status": "failed",
        "sync_error": "forged",
    }

    response = api.patch(detail(customer.stripe_id), forged, format="json")

    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.stripe_id != "cus_forged"
    assert (customer.delinquent, customer.livemode, customer.deleted) == (False, False, False)
    assert customer.default_source is None and customer.currency is None
    assert customer.sync_status == SyncStatus.SYNCED and customer.sync_error == ""
    assert stripe_settings.count("POST") == sent, "nothing writable changed: nothing sent"


def test_writable_fields_are_stripes_writable_attributes():
    assert set(WRITABLE_FIELDS) == {
        "address",
        "balance",
        "business_name",
        "description",
        "email",
        "individual_name",
        "invoice_prefix",
        "invoice_settings",
        "metadata",
        "name",
        "next_invoice_sequence",
        "phone",
        "preferred_locales",
        "shipping",
        "tax_exempt",
        "test_clock",
    }


def test_unknown_fields_are_refused(api, stripe_settings):
    customer = pushed(email="a@example.com")
    sent = stripe_settings.count("POST")

    response = api.patch(
        detail(customer.stripe_id), {"emial": "b@example.com", "name": "B"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"emial": ["emial: unknown field (not a Customer attribute)"]}
    customer.refresh_from_db()
    assert customer.name is None
    assert stripe_settings.count("POST") == sent


def test_test_clock_can_only_be_set_at_creation(api, stripe_settings):
    customer = pushed(email="a@example.com")
    sent = stripe_settings.count("POST")

    response = api.patch(detail(customer.stripe_id), {"test_clock": "clock_1"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "test_clock": ["test_clock: can only be set when the customer is created in Stripe"]
    }
    assert stripe_settings.count("POST") == sent


def test_a_value_stripe_cannot_clear_is_refused_before_saving(api, stripe_settings):
    customer = pushed(email="a@example.com", balance=100)
    sent = stripe_settings.count("POST")

    response = api.patch(detail(customer.stripe_id), {"balance": None}, format="json")

    assert response.status_code == 400
    refused = "balance: Stripe cannot clear this value once it is set"
    assert response.json() == {"balance": [refused]}
    customer.refresh_from_db()
    assert customer.balance == 100 and customer.sync_status == SyncStatus.SYNCED
    assert stripe_settings.count("POST") == sent


def test_a_customer_deleted_in_stripe_cannot_be_updated(api, stripe_settings):
    customer = pushed(email="a@example.com")
    get_client().customers.delete(customer.stripe_id)
    assert api.post(pull_url(customer.stripe_id)).json()["deleted"] is True
    sent = stripe_settings.count("POST")

    for method in (api.patch, api.put):
        response = method(detail(customer.stripe_id), {"name": "B"}, format="json")
        assert response.status_code == 409
        assert "deleted in Stripe" in response.json()["detail"]
    customer.refresh_from_db()
    assert customer.name is None
    assert stripe_settings.count("POST") == sent


# -- validation: every kind of error names the field and the limit, saves and sends nothing ---


def _long_key_metadata() -> dict[str, str]:
    return {"k" * 41: "v"}


VALIDATION_CASES = [
    pytest.param(
        {"email": "a" * 588 + "@example.com"},
        "email",
        "email: at most 512 characters (got 600)",
        id="email-too-long",
    ),
    pytest.param(
        {"email": "not-an-email"},
        "email",
        "email: not a valid email address (got 'not-an-email')",
        id="email-invalid",
    ),
    pytest.param(
        {"metadata": {f"k{i}": "v" for i in range(51)}},
        "metadata",
        "metadata: at most 50 keys (got 51)",
        id="metadata-51-keys",
    ),
    pytest.param(
        {"metadata": _long_key_metadata()},
        "metadata",
        "keys are at most 40 characters (got 41)",
        id="metadata-key-41",
    ),
    pytest.param(
        {"metadata": {"note": "x" * 501}},
        "metadata",
        "metadata[note]: values are at most 500 characters (got 501)",
        id="metadata-value-501",
    ),
    pytest.param(
        {"metadata": {"a[b]": "1"}},
        "metadata",
        "metadata[a[b]]: keys may not contain '[' or ']'",
        id="metadata-key-bracket",
    ),
    pytest.param(
        {"metadata": {"count": 3}},
        "metadata",
        "metadata[count]: values must be strings (got int)",
        id="metadata-value-not-string",
    ),
    pytest.param(
        {"tax_exempt": "sometimes"},
        "tax_exempt",
        "tax_exempt: must be one of exempt, none, reverse (got 'sometimes')",
        id="tax-exempt",
    ),
    pytest.param(
        {"preferred_locales": ["en", "english!"]},
        "preferred_locales",
        "preferred_locales[1]: not a locale such as en, fr-CA or zh-Hant-TW (got 'english!')",
        id="locale",
    ),
    pytest.param(
        {"invoice_prefix": "ab-1"},
        "invoice_prefix",
        "invoice_prefix: 1 to 12 uppercase letters or digits (got 'ab-1')",
        id="invoice-prefix",
    ),
    pytest.param(
        {"shipping": {"address": {"city": "Paris"}}},
        "shipping",
        "shipping[name]: required when shipping is set",
        id="shipping-without-name",
    ),
    pytest.param(
        {"address": {"line1": "1 Main St", "planet": "Mars"}},
        "address",
        "address[planet]: unknown key (Stripe accepts city, country, line1, line2, "
        "postal_code, state)",
        id="address-unknown-key",
    ),
    pytest.param(
        {"phone": "+" + "1" * 20},
        "phone",
        "phone: at most 20 characters (got 21)",
        id="phone-too-long",
    ),
    pytest.param(
        {"name": "n" * 257}, "name", "name: at most 256 characters (got 257)", id="name-too-long"
    ),
    pytest.param(
        {"balance": "100"}, "balance", "balance: must be an integer (got str)", id="balance-type"
    ),
    pytest.param(
        {"description": 5}, "description", "description: must be a string (got int)", id="type"
    ),
]


@pytest.mark.parametrize(("payload", "field", "message"), VALIDATION_CASES)
def test_create_validation_errors_name_the_field_and_the_limit(
    api, stripe_settings, payload, field, message
):
    response = api.post(LIST, {"email": "ok@example.com", **payload}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field]
    (error,) = body[field]  # ours only: no DRF or model duplicate
    assert error.startswith(field)
    assert message in error
    assert Customer.objects.count() == 0
    assert stripe_settings.count() == 0


@pytest.mark.parametrize(("payload", "field", "message"), VALIDATION_CASES)
def test_update_validation_errors_save_and_send_nothing(
    api, stripe_settings, payload, field, message
):
    customer = pushed(email="before@example.com")
    sent = stripe_settings.count()

    response = api.patch(detail(customer.stripe_id), payload, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert message in response.json()[field][0]
    customer.refresh_from_db()
    assert customer.email == "before@example.com"
    assert customer.sync_status == SyncStatus.SYNCED
    assert stripe_settings.count() == sent


def test_several_bad_fields_are_reported_together(api, stripe_settings):
    response = api.post(
        LIST, {"email": "x" * 600, "tax_exempt": "no", "metadata": {"a": "1"}}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()) == {"email", "tax_exempt"}
    assert stripe_settings.count() == 0


def test_a_body_that_is_not_an_object_is_refused(api, stripe_settings):
    response = api.post(LIST, ["email"], format="json")
    assert response.status_code == 400
    assert stripe_settings.count() == 0


# -- list, pagination ------------------------------------------------------------------------


def test_list_is_stripes_list_object_newest_first(api, stripe_settings):
    stripe_settings.clock.set(T0)
    first = pushed(email="first@example.com")
    stripe_settings.clock.advance(60)
    second = pushed(email="second@example.com")
    draft = local_only(email="draft@example.com")

    response = api.get(LIST)

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert body["url"] == LIST
    assert body["has_more"] is False
    assert [c["pk"] for c in body["data"]] == [draft.pk, second.pk, first.pk]
    assert [c["id"] for c in body["data"]] == [None, second.stripe_id, first.stripe_id]


def _ordered_rows() -> list[Customer]:
    """Two rows not in Stripe yet, then rows by created (with a tie) newest first."""
    rows = [
        Customer(stripe_id="cus_old", created=at(T0)),
        Customer(stripe_id="cus_tie1", created=at(T0 + 60)),
        Customer(stripe_id="cus_tie2", created=at(T0 + 60)),
        Customer(stripe_id="cus_mid", created=at(T0 + 120)),
        Customer(stripe_id="cus_new", created=at(T0 + 180)),
        Customer(email="draft1@example.com"),
        Customer(email="draft2@example.com"),
    ]
    Customer.objects.bulk_create(rows)
    by_id = {c.stripe_id or c.email: c.pk for c in Customer.objects.all()}
    return [
        by_id["draft2@example.com"],
        by_id["draft1@example.com"],
        by_id["cus_new"],
        by_id["cus_mid"],
        by_id["cus_tie2"],
        by_id["cus_tie1"],
        by_id["cus_old"],
    ]


def test_pages_walk_forward_and_back_with_starting_after_and_ending_before(api):
    expected = _ordered_rows()
    seen: list[int] = []
    pages = []
    params: dict[str, object] = {"limit": 2}
    while True:
        body = api.get(LIST, params).json()
        pages.append(body)
        seen += [c["pk"] for c in body["data"]]
        if not body["has_more"]:
            break
        last = body["data"][-1]
        params = {"limit": 2, "starting_after": last["id"] or last["pk"]}
    assert seen == expected
    assert [len(p["data"]) for p in pages] == [2, 2, 2, 1]

    first_of_last_page = pages[-1]["data"][0]["id"]
    back = api.get(LIST, {"limit": 2, "ending_before": first_of_last_page}).json()
    assert [c["pk"] for c in back["data"]] == expected[4:6]
    assert back["has_more"] is True
    start = api.get(LIST, {"limit": 5, "ending_before": expected[2]}).json()
    assert [c["pk"] for c in start["data"]] == expected[:2]
    assert start["has_more"] is False


def test_default_page_is_50_and_limit_goes_up_to_100(api):
    Customer.objects.bulk_create([Customer(email=f"c{i}@example.com") for i in range(120)])

    default = api.get(LIST).json()
    assert len(default["data"]) == 50 and default["has_more"] is True
    biggest = api.get(LIST, {"limit": 100}).json()
    assert len(biggest["data"]) == 100 and biggest["has_more"] is True


def test_filters_and_pagination_combine(api):
    _ordered_rows()
    Customer.objects.filter(stripe_id__in=["cus_new", "cus_tie1"]).update(sync_status="failed")

    first = api.get(LIST, {"sync_status": "failed", "limit": 1}).json()
    assert [c["id"] for c in first["data"]] == ["cus_new"] and first["has_more"]
    second = api.get(LIST, {"sync_status": "failed", "limit": 1, "starting_after": "cus_new"})
    assert [c["id"] for c in second.json()["data"]] == ["cus_tie1"]
    assert second.json()["has_more"] is False


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"limit": "0"}, "limit", "limit: must be an integer from 1 to 100 (got '0')"),
        ({"limit": "101"}, "limit", "limit: must be an integer from 1 to 100 (got '101')"),
        ({"limit": "ten"}, "limit", "limit: must be an integer from 1 to 100 (got 'ten')"),
        (
            {"starting_after": "cus_nope"},
            "starting_after",
            "starting_after: no customer 'cus_nope'",
        ),
        ({"ending_before": "x"}, "ending_before", "ending_before: no customer 'x'"),
        (
            {"starting_after": "1", "ending_before": "2"},
            "ending_before",
            "ending_before: cannot be combined with starting_after",
        ),
    ],
)
def test_bad_pagination_parameters_are_400(api, params, param, message):
    local_only(email="a@example.com")
    response = api.get(LIST, params)
    assert response.status_code == 400
    assert response.json() == {param: [message]}


# -- filters ---------------------------------------------------------------------------------


def _emails(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return sorted(c["email"] for c in response.json()["data"])


def test_filter_by_email_is_exact_and_case_sensitive(api):
    pushed(email="jenny@example.com")
    pushed(email="jenny.rosen@example.com")

    assert _emails(api.get(LIST, {"email": "jenny@example.com"})) == ["jenny@example.com"]
    assert _emails(api.get(LIST, {"email": "JENNY@example.com"})) == []


def test_filter_by_sync_status(api):
    pushed(email="synced@example.com")
    local_only(email="pending@example.com")
    failed = pushed(email="failed@example.com")
    Customer.objects.filter(pk=failed.pk).update(sync_status=SyncStatus.FAILED)

    for status in ("synced", "pending", "failed"):
        assert _emails(api.get(LIST, {"sync_status": status})) == [f"{status}@example.com"]


def test_filter_by_deleted(api):
    local_only(email="kept@example.com")
    local_only(email="gone@example.com", deleted=True)

    assert _emails(api.get(LIST)) == ["gone@example.com", "kept@example.com"]
    assert _emails(api.get(LIST, {"deleted": "true"})) == ["gone@example.com"]
    assert _emails(api.get(LIST, {"deleted": "false"})) == ["kept@example.com"]
    assert _emails(api.get(LIST, {"deleted": "1"})) == ["gone@example.com"]


def test_filter_by_created_range_in_unix_seconds_and_iso_8601(api):
    for offset, email in [(0, "t0@example.com"), (100, "t100@example.com")]:
        local_only(email=email, stripe_id=f"cus_{offset}", created=at(T0 + offset))
    local_only(email="t200@example.com", stripe_id="cus_200", created=at(T0 + 200))
    local_only(email="draft@example.com")

    def emails(**params):
        return _emails(api.get(LIST, params))

    assert emails(**{"created[gte]": str(T0 + 100)}) == ["t100@example.com", "t200@example.com"]
    assert emails(**{"created[gt]": str(T0 + 100)}) == ["t200@example.com"]
    assert emails(**{"created[lt]": str(T0 + 100)}) == ["t0@example.com"]
    assert emails(**{"created[lte]": str(T0 + 100)}) == ["t0@example.com", "t100@example.com"]
    assert emails(created=str(T0)) == ["t0@example.com"]
    both = {"created[gt]": str(T0), "created[lt]": str(T0 + 200)}
    assert emails(**both) == ["t100@example.com"]
    assert emails(**{"created[gte]": "2023-11-14T22:13:20Z"}) == [
        "t0@example.com",
        "t100@example.com",
        "t200@example.com",
    ]
    assert emails(**{"created[gt]": "2023-11-14T23:13:20+01:00"}) == [
        "t100@example.com",
        "t200@example.com",
    ]
    assert emails(**{"created[lt]": "2023-11-14"}) == []
    assert emails(**{"created[gte]": "2023-11-15"}) == []


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        (
            {"created[gte]": "notadate"},
            "created[gte]",
            "created[gte]: must be a unix timestamp or an ISO 8601 date or date and time "
            "(got 'notadate')",
        ),
        (
            {"created[lt]": ""},
            "created[lt]",
            "created[lt]: must be a unix timestamp or an ISO 8601 date or date and time (got '')",
        ),
        (
            {"created": "2024-13-01"},
            "created",
            "created: must be a unix timestamp or an ISO 8601 date or date and time "
            "(got '2024-13-01')",
        ),
        ({"deleted": "maybe"}, "deleted", "deleted: must be true or false (got 'maybe')"),
        (
            {"sync_status": "lost"},
            "sync_status",
            "sync_status: must be one of synced, pending, failed (got 'lost')",
        ),
        ({"email": ""}, "email", "email: may not be empty"),
        (
            {"created[between]": "1"},
            "created[between]",
            "created[between]: unknown query parameter",
        ),
        ({"emial": "a@example.com"}, "emial", "emial: unknown query parameter"),
    ],
)
def test_bad_filter_values_are_400_naming_the_parameter(api, params, param, message):
    local_only(email="a@example.com")
    response = api.get(LIST, params)
    assert response.status_code == 400
    assert response.json() == {param: [message]}


def test_format_parameter_is_not_an_unknown_filter(api):
    local_only(email="a@example.com")
    assert api.get(LIST, {"format": "json"}).status_code == 200


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1700000000", T0),
        ("2023-11-14T22:13:20Z", T0),
        ("2023-11-14T22:13:20", T0),
        ("2023-11-14T23:13:20+01:00", T0),
        ("2023-11-14", T0 - 80_000),
    ],
)
def test_parse_timestamp(raw, expected):
    assert parse_timestamp(raw).timestamp() == expected


@pytest.mark.parametrize("raw", ["", "soon", "-5", "1.5", "2024-02-30", "1" * 13, "١٢"])
def test_parse_timestamp_refuses(raw):
    with pytest.raises(ValueError):
        parse_timestamp(raw)


def test_identifier_filter():
    assert identifier_filter("cus_123") is not None
    assert identifier_filter("42") is not None
    assert identifier_filter("x42") is None
    assert identifier_filter("4" * 19) is None


# -- pull ------------------------------------------------------------------------------------


def test_pull_applies_an_upstream_change_without_pushing_it_back(api, stripe_settings):
    customer = pushed(email="a@example.com", name="Local")
    get_client().customers.update(customer.stripe_id, {"name": "Changed upstream"})
    sent = stripe_settings.count("POST")

    response = api.post(pull_url(customer.stripe_id))

    assert response.status_code == 200
    assert response.json()["name"] == "Changed upstream"
    assert response.json()["sync_status"] == "synced"
    customer.refresh_from_db()
    assert customer.name == "Changed upstream"
    assert stripe_settings.count("POST") == sent, "no echo"
    assert stripe_settings.requests[-1].method == "GET"


def test_pull_of_a_row_not_in_stripe_yet_is_400(api, stripe_settings):
    draft = local_only(email="draft@example.com")
    response = api.post(pull_url(draft.pk))
    assert response.status_code == 400
    assert "not in Stripe yet" in response.json()["detail"]
    assert stripe_settings.count() == 0


def test_pull_answered_404_by_stripe_is_409_with_the_recorded_error(api, stripe_settings):
    row = local_only(stripe_id="cus_elsewhere", email="a@example.com")

    response = api.post(pull_url("cus_elsewhere"))

    assert response.status_code == 409
    detail_text = response.json()["detail"]
    assert "cus_elsewhere" in detail_text and "404" in detail_text
    row.refresh_from_db()
    assert row.sync_error == detail_text
    assert row.deleted is False


def test_pull_when_stripe_is_unreachable_is_503(api, settings):
    local_only(stripe_id="cus_1", email="a@example.com")
    settings.STRIPE_CUSTOMERS = {
        **settings.STRIPE_CUSTOMERS,
        "API_BASE": "http://127.0.0.1:9",
        "MAX_RETRIES": 0,
    }
    clear_client_cache()

    response = api.post(pull_url("cus_1"))

    assert response.status_code == 503
    assert "Stripe could not be reached" in response.json()["detail"]
    clear_client_cache()


def test_pull_with_a_refused_key_is_502_and_never_shows_the_key(api, settings, stripe_settings):
    local_only(stripe_id="cus_1", email="a@example.com")
    key = "sk_live_51SecretValueThatMustNotLeak"
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "API_KEY": key}
    clear_client_cache()

    response = api.post(pull_url("cus_1"))

    assert response.status_code == 502
    assert "API key" in response.json()["detail"]
    assert key not in response.content.decode()
    assert key[-4:] not in response.content.decode(), "not even Stripe's masked form"
    clear_client_cache()


@pytest.mark.django_db(transaction=True)  # the answer shows the push made inside the request
def test_the_api_key_never_appears_in_responses(api, stripe_settings, settings):
    key = settings.STRIPE_CUSTOMERS["API_KEY"]
    created = api.post(LIST, {"email": "a@example.com"}, format="json")
    stripe_id = created.json()["id"]
    local_only(stripe_id="cus_elsewhere")
    responses = [
        created,
        api.get(LIST),
        api.get(detail(stripe_id)),
        api.patch(detail(stripe_id), {"name": "B"}, format="json"),
        api.patch(detail(stripe_id), {"email": "bad"}, format="json"),
        api.post(pull_url(stripe_id)),
        api.post(pull_url("cus_elsewhere")),
    ]
    assert [r.status_code for r in responses] == [201, 200, 200, 200, 400, 200, 409]
    for response in responses:
        assert key not in response.content.decode()


# -- permissions -----------------------------------------------------------------------------


def test_anonymous_users_are_refused(stripe_settings):
    customer = pushed(email="a@example.com")
    client = CommittingAPIClient()
    assert client.get(LIST).status_code in (401, 403)
    assert client.get(detail(customer.stripe_id)).status_code in (401, 403)
    assert client.post(LIST, {"email": "b@example.com"}, format="json").status_code in (401, 403)
    assert Customer.objects.count() == 1


def test_non_staff_users_are_refused_by_default(stripe_settings, member):
    customer = pushed(email="a@example.com")
    sent = stripe_settings.count()
    client = CommittingAPIClient()
    client.force_authenticate(member)

    assert client.get(LIST).status_code == 403
    assert client.post(LIST, {"email": "b@example.com"}, format="json").status_code == 403
    patch = client.patch(detail(customer.stripe_id), {"name": "B"}, format="json")
    assert patch.status_code == 403
    assert client.post(pull_url(customer.stripe_id)).status_code == 403
    assert stripe_settings.count() == sent
    assert Customer.objects.count() == 1


def test_staff_users_with_the_permissions_are_allowed(api):
    assert api.get(LIST).status_code == 200


def test_permission_classes_setting_applies_per_request(stripe_settings, settings, member):
    client = CommittingAPIClient()
    client.force_authenticate(member)
    assert client.get(LIST).status_code == 403

    settings.STRIPE_CUSTOMERS = {
        **settings.STRIPE_CUSTOMERS,
        "API_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    }
    assert client.get(LIST).status_code == 200
    assert CommittingAPIClient().get(LIST).status_code in (401, 403)

    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "API_PERMISSION_CLASSES": [AllowAny]}
    assert CommittingAPIClient().get(LIST).status_code == 200

    settings.STRIPE_CUSTOMERS = {
        key: value
        for key, value in settings.STRIPE_CUSTOMERS.items()
        if key != "API_PERMISSION_CLASSES"
    }
    assert client.get(LIST).status_code == 403, "back to the default, the model permissions"
