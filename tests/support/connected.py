"""Two connected accounts the emulator's key mirrors, for the admin's and the API's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from django_stripe_customers.clients import clear_client_cache

ACCT_A = "acct_1Aaaaaaaaaaaaaaa"
ACCT_B = "acct_1Bbbbbbbbbbbbbbb"


@pytest.fixture
def connected(settings: Any, stripe_settings: Any) -> Iterator[Any]:
    """The emulator's key mirrors its own account and two connected ones (test mode)."""
    for account in (ACCT_A, ACCT_B):
        stripe_settings.add_account(account_id=account)
    key = settings.STRIPE_CUSTOMERS["API_KEY"]
    settings.STRIPE_CUSTOMERS = {
        **settings.STRIPE_CUSTOMERS,
        "ACCOUNTS": [{"API_KEY": key, "CONNECTED": [ACCT_A, ACCT_B]}],
    }
    clear_client_cache()
    yield stripe_settings
    clear_client_cache()
