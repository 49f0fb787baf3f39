"""Django settings for the measured pull of every account (``benchmarks/accounts.py``).

``benchmarks.settings`` (database from ``BENCH_DB``, the emulator's ``API_BASE``, no retries),
plus ``ACCOUNTS``: the one key mirrors its own account and every account connected to its
platform, as ``GET /v1/accounts`` lists them when the pull starts.
"""

from __future__ import annotations

from benchmarks.settings import *  # noqa: F403
from benchmarks.settings import BENCH_API_KEY, STRIPE_CUSTOMERS

STRIPE_CUSTOMERS = {
    **STRIPE_CUSTOMERS,
    "ACCOUNTS": [{"API_KEY": BENCH_API_KEY, "CONNECTED": "all"}],
}
