"""The emulator's webhook signer and the client's verifier check each other (issue 13, item 3).

Two implementations written apart (``testing/webhooks.py`` signs, ``stripe/webhooks.py`` signs
and verifies), plus a third reading of the spec in this file: HMAC-SHA256 of
``"<t>.<raw body>"`` keyed with the secret, header ``t=<t>,v1=<hex>``
(shared/stripe/README.md, Webhooks). Deliveries over HTTP are verified with the client's
verifier in ``test_emulator_webhooks.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from django_stripe_customers.stripe.webhooks import (
    WebhookSignatureError,
    sign_payload,
    verify_signature,
)
from django_stripe_customers.testing import signature_header

PAYLOADS = [
    b"",
    b'{"id": "evt_1", "object": "event"}',
    json.dumps({"name": "Zoë 東京 \u2028"}, ensure_ascii=False).encode(),
    bytes(range(256)),
    b"x" * 100_000,
]
SECRETS = ["whsec_test_secret", "whsec_", "whsec_ünïcode", "s" * 200]
TIMESTAMPS = [0, 1_700_000_000, 4_102_444_800]


def recomputed_header(payload: bytes, secret: str, timestamp: int) -> str:
    """The spec read a third time, here: what the header must be."""
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: f"{len(p)}B")
@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("timestamp", TIMESTAMPS)
def test_emulator_and_client_sign_alike(payload: bytes, secret: str, timestamp: int) -> None:
    """Both signers give the header the spec defines, byte for byte."""
    expected = recomputed_header(payload, secret, timestamp)
    assert signature_header(payload, secret, timestamp) == expected
    assert sign_payload(payload, secret, timestamp) == expected


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: f"{len(p)}B")
def test_client_verifies_what_the_emulator_signs(payload: bytes) -> None:
    """The client's ``verify_signature`` accepts the emulator's header, and refuses it once the
    body, the secret or the time is not the signed one."""
    secret, timestamp = "whsec_cross_check", 1_700_000_000
    header = signature_header(payload, secret, timestamp)
    assert verify_signature(payload, header, [secret], now=timestamp) == timestamp
    assert verify_signature(payload, header, ["whsec_old", secret], now=timestamp + 299) == (
        timestamp
    )
    with pytest.raises(WebhookSignatureError, match="no signature matches"):
        verify_signature(payload + b" ", header, [secret], now=timestamp)
    with pytest.raises(WebhookSignatureError, match="no signature matches"):
        verify_signature(payload, header, ["whsec_other"], now=timestamp)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify_signature(payload, header, [secret], now=timestamp + 301)


def test_emulator_signature_of_a_moved_timestamp_is_refused() -> None:
    """Re-stamping a signed header (t changed, v1 kept) breaks it for the client."""
    payload, secret = b'{"id": "evt_2"}', "whsec_stamp"
    header = signature_header(payload, secret, 1_700_000_000)
    moved = header.replace("t=1700000000", "t=1700000001")
    with pytest.raises(WebhookSignatureError, match="no signature matches"):
        verify_signature(payload, moved, [secret], now=1_700_000_001)
