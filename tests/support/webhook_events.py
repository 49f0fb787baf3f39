"""Signed Stripe events posted to the webhook endpoint through Django's test client."""

from __future__ import annotations

import json
import time
from typing import Any

from django_stripe_customers.stripe.webhooks import sign_payload
from tests.support.http_clients import CommittingClient

SECRET = "whsec_test_current"
OLD_SECRET = "whsec_test_previous"
URL = "/stripe/webhook/"


def customer_object(stripe_id: str = "cus_Webhook0000001", **fields: Any) -> dict[str, Any]:
    return {
        "id": stripe_id,
        "object": "customer",
        "created": 1_700_000_000,
        "email": "hook@example.com",
        "name": "Hook",
        "metadata": {},
        "livemode": False,
        **fields,
    }


def event(
    event_type: str = "customer.updated",
    created: int | None = None,
    event_id: str = "evt_1",
    **fields: Any,
) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "api_version": "2026-10-28.endive",
        "created": created or int(time.time()),
        "livemode": False,
        "data": {"object": customer_object(**fields)},
    }


def post(
    payload: Any,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    header: str | bool | None = None,
    body: bytes | None = None,
) -> Any:
    """POST ``payload`` signed with ``secret`` (``header`` replaces the signature, ``False``
    sends none; ``body`` replaces the payload's JSON)."""
    raw = body if body is not None else json.dumps(payload).encode()
    signature = header if header is not None else sign_payload(raw, secret, timestamp)
    extra = {} if signature is False else {"HTTP_STRIPE_SIGNATURE": signature}
    return CommittingClient().post(URL, data=raw, content_type="application/json", **extra)
