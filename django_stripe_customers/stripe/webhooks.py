"""Stripe webhook signatures: verify a ``Stripe-Signature`` header, or make one (no Django).

The header is ``t=<unix time>,v1=<hex>[,v1=<hex>...]``; each ``v1`` is HMAC-SHA256 of
``"{t}.{raw body}"`` keyed with an endpoint secret. Unknown schemes (``v0``...) are ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

DEFAULT_TOLERANCE = 300


class WebhookSignatureError(ValueError):
    """The signature is missing, malformed, wrong or too old; ``str()`` is a short reason."""


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``v1`` value for ``payload`` signed at ``timestamp`` with ``secret``."""
    signed = str(int(timestamp)).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value for ``payload`` (tests, the demo, the emulator)."""
    moment = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={moment},v1={compute_signature(payload, secret, moment)}"


def parse_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) from a ``Stripe-Signature`` header."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        scheme, equals, value = item.strip().partition("=")
        if not equals:
            continue
        if scheme == "t":
            if not value.isdigit():
                raise WebhookSignatureError("malformed timestamp in Stripe-Signature")
            timestamp = int(value)
        elif scheme == "v1" and value:
            signatures.append(value)
    if timestamp is None:
        raise WebhookSignatureError("no timestamp in Stripe-Signature")
    if not signatures:
        raise WebhookSignatureError("no v1 signature in Stripe-Signature")
    return timestamp, signatures


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check ``header`` against ``payload`` with each secret; returns the signed timestamp.

    Any ``v1`` matching any secret is enough (several secrets allow rotation); comparisons are
    constant-time. Raises ``WebhookSignatureError`` otherwise, or when the timestamp is more
    than ``tolerance`` seconds away from ``now``.
    """
    if not header:
        raise WebhookSignatureError("missing Stripe-Signature header")
    keys = [secret for secret in secrets if secret]
    if not keys:
        raise WebhookSignatureError("no webhook secret configured")
    timestamp, signatures = parse_header(header)
    matched = False
    for secret in keys:
        expected = compute_signature(payload, secret, timestamp)
        for signature in signatures:
            matched |= hmac.compare_digest(expected, signature)
    if not matched:
        raise WebhookSignatureError("no signature matches the payload")
    current = time.time() if now is None else now
    if tolerance > 0 and abs(current - timestamp) > tolerance:
        raise WebhookSignatureError(f"timestamp outside the {tolerance}s tolerance")
    return timestamp
