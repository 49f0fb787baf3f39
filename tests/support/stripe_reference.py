"""Stripe's own example Customer object, shared by the emulator and validation tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REFERENCE = (
    Path(__file__).resolve().parents[3] / "shared" / "stripe" / "customers-api-reference.txt"
)

#: "The Customer object" example of the reference, verbatim.
REFERENCE_EXAMPLE: dict[str, Any] = {
    "id": "cus_NffrFeUfNV2Hib",
    "object": "customer",
    "address": None,
    "balance": 0,
    "created": 1680893993,
    "currency": None,
    "default_source": None,
    "delinquent": False,
    "description": None,
    "discount": None,
    "email": "jennyrosen@example.com",
    "invoice_prefix": "0759376C",
    "invoice_settings": {
        "custom_fields": None,
        "default_payment_method": None,
        "footer": None,
        "rendering_options": None,
    },
    "livemode": False,
    "metadata": {},
    "name": "Jenny Rosen",
    "next_invoice_sequence": 1,
    "phone": None,
    "preferred_locales": [],
    "shipping": None,
    "tax_exempt": "none",
    "test_clock": None,
}
