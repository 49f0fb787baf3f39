"""The webhook endpoint and event processing: signatures, storage once, order, merge, no echo."""

from __future__ import annotations

import json
import time

import pytest
import requests
from django.test import Client

from django_stripe_customers.clients import get_client
from django_stripe_customers.models import Customer, SyncStatus, WebhookEvent
from django_stripe_customers.stripe.webhooks import sign_payload
from tests.support.webhook_events import OLD_SECRET, SECRET, URL, event, post

pytestmark = pytest.mark.django_db


@pytest.fixture
def webhook_settings(stripe_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "WEBHOOK_SECRETS": [SECRET]}
    return stripe_settings


def test_a_validly_signed_event_is_stored_and_applied(webhook_settings):
    response = post(event("customer.created", email="new@example.com"))
    assert response.status_code == 200
    stored = WebhookEvent.objects.get(event_id="evt_1")
    assert stored.status == WebhookEvent.Status.PROCESSED
    assert stored.customer_stripe_id == "cus_Webhook0000001"
    customer = Customer.objects.get(stripe_id="cus_Webhook0000001")
    assert customer.email == "new@example.com"
    assert customer.sync_status == SyncStatus.SYNCED
    assert webhook_settings.count() == 0, "nothing sent to Stripe (no echo)"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("wrong secret", "no signature matches"),
        ("altered body", "no signature matches"),
        ("altered timestamp", "no signature matches"),
        ("expired timestamp", "tolerance"),
        ("missing header", "missing Stripe-Signature"),
        ("malformed header", "no timestamp"),
        ("no v1", "no v1 signature"),
    ],
)
def test_forged_altered_or_expired_requests_are_refused_and_change_nothing(
    webhook_settings, kind, reason
):
    payload = event("customer.created")
    raw = json.dumps(payload).encode()
    now = int(time.time())
    if kind == "wrong secret":
        response = post(payload, secret="whsec_attacker")
    elif kind == "altered body":
        altered = raw.replace(b"Hook", b"Evil")
        response = post(payload, header=sign_payload(raw, SECRET), body=altered)
    elif kind == "altered timestamp":
        signature = sign_payload(raw, SECRET, now).split(",", 1)[1]
        response = post(payload, header=f"t={now + 1},{signature}")
    elif kind == "expired timestamp":
        response = post(payload, timestamp=now - 301)
    elif kind == "missing header":
        response = post(payload, header=False)
    elif kind == "malformed header":
        response = post(payload, header="garbage")
    else:
        response = post(payload, header=f"t={now},v0=abc")
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert not WebhookEvent.objects.exists()
    assert not Customer.objects.exists()


def test_a_rotated_secret_is_accepted_alongside_the_new_one(webhook_settings, settings):
    settings.STRIPE_CUSTOMERS = {
        **settings.STRIPE_CUSTOMERS,
        "WEBHOOK_SECRETS": [SECRET, OLD_SECRET],
    }
    assert post(event(event_id="evt_old"), secret=OLD_SECRET).status_code == 200
    assert post(event(event_id="evt_new"), secret=SECRET).status_code == 200
    assert WebhookEvent.objects.count() == 2


def test_several_v1_signatures_one_matching_is_enough(webhook_settings):
    payload = event()
    raw = json.dumps(payload).encode()
    good = sign_payload(raw, SECRET)
    timestamp, signature = good.split(",")
    header = f"{timestamp},v1={'0' * 64},{signature},v0=legacy"
    assert post(payload, header=header).status_code == 200


def test_a_duplicate_event_is_applied_once(webhook_settings):
    payload = event("customer.created")
    assert post(payload).json()["duplicate"] is False
    Customer.objects.filter(stripe_id="cus_Webhook0000001").update(name="changed since")

    again = post(payload)

    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert WebhookEvent.objects.count() == 1
    assert Customer.objects.get().name == "changed since", "not applied a second time"


def test_out_of_order_updates_leave_the_newest_data(webhook_settings):
    now = int(time.time())
    post(event(event_id="evt_new", created=now, name="Newest"))
    response = post(event(event_id="evt_old", created=now - 60, name="Older"))

    assert response.status_code == 200
    assert Customer.objects.get().name == "Newest"
    assert WebhookEvent.objects.get(event_id="evt_old").status == WebhookEvent.Status.STALE


def test_customer_deleted_flags_the_row_and_keeps_its_data(webhook_settings):
    post(event("customer.created", event_id="evt_a", name="Kept"))
    post(event("customer.deleted", event_id="evt_b"))
    customer = Customer.objects.get()
    assert customer.deleted is True and customer.name == "Kept"


def test_a_pending_local_edit_survives_a_webhook_and_nothing_is_echoed(webhook_settings, settings):
    client = get_client()
    remote = client.customers.create({"email": "a@example.com", "name": "Remote"})
    post(event("customer.created", event_id="evt_c", **remote))
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": False}
    customer = Customer.objects.get()
    customer.name = "Local edit"
    customer.save()
    updated = client.customers.update(remote["id"], {"email": "b@example.com"})
    posts_before = webhook_settings.count("POST")

    post(event("customer.updated", event_id="evt_d", **updated))

    customer.refresh_from_db()
    assert customer.name == "Local edit" and customer.email == "b@example.com"
    assert customer.sync_status == SyncStatus.PENDING
    assert webhook_settings.count("POST") == posts_before, "nothing pushed back"


def test_unhandled_event_types_are_stored_as_ignored(webhook_settings):
    payload = {**event(), "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}
    assert post(payload).status_code == 200
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.IGNORED


def test_bodies_that_are_not_events_are_refused(webhook_settings):
    assert post(None, body=b"not json").status_code == 400
    assert post(["a", "list"]).status_code == 400
    assert post({"type": "customer.updated"}).status_code == 400, "no event id"
    refused = WebhookEvent.objects.values_list("status", "error")
    assert len(refused) == 3, "signed, so recorded (under the body's digest)"
    assert all(
        status == "refused" and error.startswith("not a Stripe event") for status, error in refused
    )


def test_oversized_bodies_are_refused_with_413(webhook_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "WEBHOOK_MAX_BODY": 1000}
    payload = event(description="x" * 2000)
    assert post(payload).status_code == 413
    assert not WebhookEvent.objects.exists()


def test_only_post_is_allowed(webhook_settings):
    assert Client().get(URL).status_code == 405


def test_refetch_setting_applies_the_fresh_object_instead_of_the_payload(
    webhook_settings, settings
):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "WEBHOOK_REFETCH": True}
    remote = get_client().customers.create({"email": "fresh@example.com"})
    post(event("customer.updated", event_id="evt_f", **{**remote, "email": "stale@example.com"}))
    assert Customer.objects.get().email == "fresh@example.com"


def test_the_emulator_delivers_signed_events_over_http(webhook_settings, live_server):
    emulator = webhook_settings
    emulator.add_webhook(f"{live_server.url}{URL}", SECRET)

    remote = get_client().customers.create({"email": "delivered@example.com"})
    get_client().customers.update(remote["id"], {"name": "Then renamed"})
    assert emulator.wait_for_webhooks(timeout=10)

    customer = Customer.objects.get(stripe_id=remote["id"])
    assert customer.name == "Then renamed"
    assert WebhookEvent.objects.filter(status="processed").count() == 2
    assert all(d.succeeded for d in emulator.webhook_deliveries)


@pytest.fixture
def localstripe_webhook(localstripe, live_server):
    """Our endpoint registered on localstripe for customer.created, unregistered afterwards
    (localstripe keeps registrations across flushes, and has no call to remove one)."""

    def register(url, events):
        response = requests.post(
            f"{localstripe.url}/_config/webhooks/django_stripe_customers_tests",
            data={"url": url, "secret": SECRET, "events[]": events},
            timeout=5,
        )
        assert response.status_code == 200

    register(f"{live_server.url}{URL}", ["customer.created"])
    yield localstripe
    register("http://127.0.0.1:9/", ["never.sent"])


@pytest.mark.localstripe
def test_signatures_made_by_localstripe_verify(webhook_settings, localstripe_webhook):
    """localstripe signs webhooks on its own (an independent implementation of the scheme)."""
    localstripe = localstripe_webhook
    created = requests.post(
        f"{localstripe.url}/v1/customers",
        data={"email": "signed-by-localstripe@example.com"},
        headers={"Authorization": "Bearer sk_test_local"},
        timeout=5,
    )
    assert created.status_code == 200

    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline
        and not WebhookEvent.objects.filter(processed_at__isnull=False).exists()
    ):
        time.sleep(0.1)
    stored = WebhookEvent.objects.get(type="customer.created")
    assert stored.status == WebhookEvent.Status.PROCESSED
    assert stored.customer_stripe_id == created.json()["id"]


@pytest.mark.parametrize(
    ("api_key", "livemode"), [("sk_test_local", True), ("sk_live_local", False)]
)
def test_an_event_of_the_other_mode_is_refused_and_recorded(
    webhook_settings, settings, api_key, livemode
):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "API_KEY": api_key}
    payload = {**event("customer.created"), "livemode": livemode}

    response = post(payload)

    assert response.status_code == 400
    assert "livemode" in response.json()["error"]
    stored = WebhookEvent.objects.get()
    assert stored.status == WebhookEvent.Status.REFUSED and stored.livemode is livemode
    assert "livemode" in stored.error
    assert not Customer.objects.exists()
    again = post(payload)
    assert again.status_code == 400 and WebhookEvent.objects.count() == 1


def test_an_event_of_the_keys_mode_is_applied(webhook_settings, settings):
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "API_KEY": "sk_live_local"}
    assert post({**event("customer.created"), "livemode": True}).status_code == 200
    assert Customer.objects.get().email == "hook@example.com"
