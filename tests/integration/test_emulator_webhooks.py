"""Signed webhook delivery (optional, off by default), with retries.

README (shared/stripe), Webhooks: "the ``Stripe-Signature`` header is
``t=<unix time>,v1=<hex>``; ``v1`` is HMAC-SHA256 of ``"<t>.<raw request body>"`` keyed with the
endpoint's signing secret (``whsec_...``)."
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from django_stripe_customers.stripe.webhooks import WebhookSignatureError, verify_signature
from django_stripe_customers.testing import StripeEmulator, signature_header
from tests.support.fidelity.client import Api

SECRET = "whsec_test_secret"


@dataclass
class Receiver:
    """A local endpoint that answers the queued statuses (then 200) and keeps what it got."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                state.received.append((dict(self.headers.items()), body))
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/stripe/webhook/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


def verify(headers: dict[str, str], body: bytes, secret: str) -> int:
    """Check the signature the way Stripe's libraries do; return its timestamp."""
    parts = dict(item.split("=", 1) for item in headers["Stripe-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(parts["v1"], expected.hexdigest())
    return int(parts["t"])


def test_signature_header_is_hmac_sha256_of_t_dot_body() -> None:
    """README: ``v1`` = HMAC-SHA256 of ``"<t>.<body>"`` keyed with the secret."""
    body = b'{"id": "evt_1"}'
    header = signature_header(body, SECRET, 1_700_000_000)
    digest = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={digest}"


def test_events_are_delivered_signed(receiver: Receiver) -> None:
    """Each event POSTed as JSON to the endpoint, signed with its secret at the clock's time."""
    with StripeEmulator(webhook_urls=[receiver.url], webhook_secret=SECRET) as emulator:
        emulator.clock.set(1_700_000_000)
        api = Api(emulator.url)
        customer = api.create_customer({"name": "Hook"})
        api.post(f"/v1/customers/{customer['id']}", {"name": "Hooked"})
        assert emulator.wait_for_webhooks(10)
        events = receiver.bodies()
        assert [e["type"] for e in events] == ["customer.created", "customer.updated"]
        for (headers, body), event in zip(receiver.received, events, strict=True):
            assert verify(headers, body, SECRET) == 1_700_000_000
            # The client's verifier (written apart from the emulator's signer) agrees.
            signature = headers["Stripe-Signature"]
            assert verify_signature(body, signature, [SECRET], now=1_700_000_000)
            with pytest.raises(WebhookSignatureError):
                verify_signature(body, signature, ["whsec_other"], now=1_700_000_000)
            assert headers["Content-Type"].startswith("application/json")
            assert event["data"]["object"]["id"] == customer["id"]
        assert events[1]["data"]["previous_attributes"] == {"name": "Hook"}
        assert events[0]["pending_webhooks"] == 1
        stored = api.get("/v1/events").json()["data"]
        assert [e["pending_webhooks"] for e in stored] == [0, 0]
        assert api.get("/v1/events", {"delivery_success": "false"}).json()["data"] == []


def test_failed_deliveries_are_retried(receiver: Receiver) -> None:
    """Stripe retries an endpoint that does not answer 2xx; each attempt is re-signed."""
    receiver.statuses = [500, 503]
    with StripeEmulator(
        webhook_urls=[receiver.url], webhook_secret=SECRET, webhook_retry_delays=(0.05,)
    ) as emulator:
        Api(emulator.url).create_customer()
        assert emulator.wait_for_webhooks(10)
        attempts = emulator.webhook_deliveries
        assert [(d.attempt, d.status) for d in attempts] == [(1, 500), (2, 503), (3, 200)]
        assert [d.succeeded for d in attempts] == [False, False, True]
        assert len(receiver.received) == 3
        for headers, body in receiver.received:
            verify(headers, body, SECRET)
        assert len({body for _, body in receiver.received}) == 1
        assert emulator.events[0]["pending_webhooks"] == 0


def test_retries_are_bounded() -> None:
    """A dead endpoint gets ``webhook_max_attempts`` tries, then the event stays pending."""
    with StripeEmulator(
        webhook_urls=["http://127.0.0.1:9/unreachable"],
        webhook_max_attempts=3,
        webhook_retry_delays=(0.01,),
    ) as emulator:
        Api(emulator.url).create_customer()
        assert emulator.wait_for_webhooks(15)
        attempts = emulator.webhook_deliveries
        assert [d.attempt for d in attempts] == [1, 2, 3]
        assert all(d.status is None and d.error for d in attempts)
        assert emulator.events[0]["pending_webhooks"] == 1
        failed = Api(emulator.url).get("/v1/events", {"delivery_success": "false"}).json()
        assert len(failed["data"]) == 1


def test_webhooks_are_off_by_default(stripe_emulator: StripeEmulator) -> None:
    """Issue 4: "Webhook delivery (optional, off by default)"."""
    Api(stripe_emulator.url).create_customer()
    assert stripe_emulator.wait_for_webhooks(1)
    assert stripe_emulator.webhook_deliveries == []
    assert stripe_emulator.events[0]["pending_webhooks"] == 0


def test_add_webhook_and_reset(stripe_emulator: StripeEmulator, receiver: Receiver) -> None:
    """``add_webhook(url, secret)`` at run time; ``reset()`` forgets it."""
    stripe_emulator.add_webhook(receiver.url, "whsec_other")
    api = Api(stripe_emulator.url)
    api.create_customer()
    assert stripe_emulator.wait_for_webhooks(10)
    headers, body = receiver.received[0]
    verify(headers, body, "whsec_other")
    stripe_emulator.reset()
    api.create_customer()
    assert stripe_emulator.wait_for_webhooks(2)
    assert len(receiver.received) == 1
    assert stripe_emulator.webhook_deliveries == []
