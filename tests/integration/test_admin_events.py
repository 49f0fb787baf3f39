"""The WebhookEvent admin (read-only, filters, payload, Reprocess) and a customer's events."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from django_stripe_customers.clients import get_client
from django_stripe_customers.models import Customer, WebhookEvent
from django_stripe_customers.sync import events

pytestmark = pytest.mark.django_db

EVENTS = "/admin/stripe_customers/webhookevent/"


def text(response):
    """The page as text (``response.text`` only exists from Django 5.0)."""
    return response.content.decode()


def store(remote, event_id="evt_admin", event_type="customer.created"):
    payload = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": remote["created"],
        "data": {"object": remote},
    }
    return events.store_event(payload)[0]


def test_events_are_listed_filtered_and_read_only(admin_client, stripe_settings):
    remote = get_client().customers.create({"email": "ev@example.com"})
    store(remote)
    store({"id": "in_1", "created": remote["created"]}, "evt_other", "invoice.paid")

    listed = admin_client.get(EVENTS)
    assert listed.status_code == 200
    assert "evt_admin" in text(listed) and "evt_other" in text(listed)
    filtered = admin_client.get(EVENTS, {"status__exact": "ignored"})
    assert "evt_other" in text(filtered) and "evt_admin" not in text(filtered)
    assert admin_client.get(f"{EVENTS}add/").status_code == 403

    event = WebhookEvent.objects.get(event_id="evt_admin")
    page = admin_client.get(f"{EVENTS}{event.pk}/change/")
    assert page.status_code == 200
    assert '<pre class="stripe-customers-json">' in text(page)
    assert "&quot;email&quot;: &quot;ev@example.com&quot;" in text(page)
    assert 'name="_save"' not in text(page), "nothing to save: read-only"


def test_reprocess_action_applies_a_failed_event(admin_client, stripe_settings):
    remote = get_client().customers.create({"email": "again@example.com"})
    event = store(remote)
    WebhookEvent.objects.filter(pk=event.pk).update(status="failed", error="boom")

    response = admin_client.post(
        EVENTS, {"action": "reprocess", "_selected_action": [event.pk]}, follow=True
    )

    assert "Reprocessed 1 event." in text(response)
    assert WebhookEvent.objects.get().status == "processed"
    assert Customer.objects.get().email == "again@example.com"


def test_a_customer_page_lists_its_recent_events(admin_client, stripe_settings):
    remote = get_client().customers.create({"email": "mine@example.com"})
    events.process_event(store(remote, "evt_mine").pk)
    customer = Customer.objects.get()

    page = admin_client.get(f"/admin/stripe_customers/customer/{customer.pk}/change/")

    assert "Recent Stripe events" in text(page)
    assert "evt_mine" in text(page) and "customer.created" in text(page)


@pytest.mark.parametrize(
    ("codenames", "allowed"),
    [
        (["view_webhookevent", "view_customer"], False),
        (["view_webhookevent", "change_customer"], True),
    ],
)
def test_reprocess_needs_the_change_customer_permission_as_a_pull_does(
    client, django_user_model, stripe_settings, codenames, allowed
):
    remote = get_client().customers.create({"email": "again@example.com"})
    event = store(remote)
    WebhookEvent.objects.filter(pk=event.pk).update(status="failed", error="boom")
    user = django_user_model.objects.create_user("events", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)

    listed = client.get(EVENTS)
    assert listed.status_code == 200
    assert ('value="reprocess"' in text(listed)) is allowed
    client.post(EVENTS, {"action": "reprocess", "_selected_action": [event.pk]})

    assert WebhookEvent.objects.get().status == ("processed" if allowed else "failed")
    assert Customer.objects.filter(email="again@example.com").exists() is allowed
