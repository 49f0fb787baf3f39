"""Catching up from the Events API after endpoint downtime, and replaying stored events."""

from __future__ import annotations

import io
import json
import time

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from django_stripe_customers.clients import get_client
from django_stripe_customers.models import Customer, WebhookEvent
from django_stripe_customers.stripe.webhooks import sign_payload
from django_stripe_customers.sync import events

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("stripe_customers", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_catch_up_applies_missed_events_in_order_and_only_once(stripe_settings):
    emulator = stripe_settings
    start = emulator.clock.now()
    client = get_client()
    first = client.customers.create({"email": "one@example.com"})
    emulator.clock.advance(10)
    client.customers.update(first["id"], {"name": "Renamed"})
    emulator.clock.advance(10)
    second = client.customers.create({"email": "two@example.com"})
    emulator.clock.advance(10)
    client.customers.delete(second["id"])

    result = events.catch_up(start)

    assert (result.listed, result.stored, result.processed, result.failed) == (4, 4, 4, 0)
    assert result.requests == 1
    assert [r.params.get("type") for r in emulator.requests if r.path == "/v1/events"] == [
        "customer.*"
    ]
    one = Customer.objects.get(stripe_id=first["id"])
    assert one.name == "Renamed" and one.deleted is False
    assert Customer.objects.get(stripe_id=second["id"]).deleted is True
    assert set(WebhookEvent.objects.values_list("source", flat=True)) == {"events_api"}

    again = events.catch_up(start)
    assert (again.listed, again.stored, again.processed) == (4, 0, 0)


def test_catch_up_pages_through_many_events(stripe_settings):
    start = stripe_settings.clock.now()
    client = get_client()
    for n in range(120):
        client.customers.create({"email": f"c{n}@example.com"})
    result = events.catch_up(start)
    assert result.stored == 120 and result.requests == 2
    assert Customer.objects.count() == 120


def test_events_command_prints_a_summary(stripe_settings):
    start = stripe_settings.clock.now()
    get_client().customers.create({"email": "cmd@example.com"})
    out, _ = run("events", "--since", str(start))
    assert "Listed 1 event in 1 request: 1 new, 1 applied, 0 stale, 0 failed." in out


def test_replay_reprocesses_failed_events(stripe_settings, settings):
    secret = "whsec_replay"
    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "WEBHOOK_SECRETS": [secret]}
    payload = {
        "id": "evt_broken",
        "object": "event",
        "type": "customer.updated",
        "created": int(time.time()) - 60,
        "data": {"object": {"id": "cus_Replay00000001", "object": "customer"}},
    }
    raw = json.dumps(payload).encode()
    stored, _ = events.store_event(payload)
    WebhookEvent.objects.filter(pk=stored.pk).update(status="failed", error="boom", attempts=3)

    out, _ = run("replay", "--failed")

    assert "evt_broken (customer.updated): processed" in out
    event = WebhookEvent.objects.get()
    assert (event.status, event.error, event.attempts) == ("processed", "", 4)
    assert Customer.objects.filter(stripe_id="cus_Replay00000001").exists()
    response = Client().post(
        "/stripe/webhook/",
        data=raw,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(raw, secret),
    )
    assert response.json()["duplicate"] is True
    with pytest.raises(CommandError, match="no stored event evt_nope"):
        run("replay", "evt_nope")
    with pytest.raises(CommandError, match="give either --failed"):
        run("replay")


def test_the_events_sweep_applies_stored_events_whose_message_was_lost(stripe_settings):
    from django_stripe_customers.tasks import process_pending_events_task

    remote = get_client().customers.create({"email": "lost@example.com"})
    payload = {
        "id": "evt_lost",
        "object": "event",
        "type": "customer.created",
        "created": remote["created"],
        "data": {"object": remote},
    }
    stored, created = events.store_event(payload)  # stored, but never enqueued
    assert created and stored.status == "received"
    WebhookEvent.objects.filter(pk=stored.pk).update(attempts=10)
    assert process_pending_events_task.delay(older_than=0).get() == 0, "gave up: for replay"
    WebhookEvent.objects.filter(pk=stored.pk).update(attempts=0)

    assert process_pending_events_task.delay(older_than=0).get() == 1

    assert WebhookEvent.objects.get().status == "processed"
    assert Customer.objects.get().stripe_id == remote["id"]
