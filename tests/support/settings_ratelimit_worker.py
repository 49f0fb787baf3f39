"""Settings of a worker process started by tests/system/test_ratelimit_processes.py: the test's
Stripe emulator, rate limit and Redis bucket, named in environment variables."""

from __future__ import annotations

import json
import os

from tests.support.settings import *  # noqa: F403

STRIPE_CUSTOMERS = {
    "API_KEY": "sk_test_ratelimit_workers",
    "API_BASE": os.environ["WORKER_STRIPE_URL"],
    "RATE_LIMIT": float(os.environ["WORKER_RATE_LIMIT"]),
    "RATE_LIMIT_BACKEND": os.environ["WORKER_RATE_LIMIT_BACKEND"],
    "ENDPOINT_RATE_LIMITS": json.loads(os.environ.get("WORKER_ENDPOINT_RATE_LIMITS") or "{}"),
    "MAX_RETRIES": 8,
}
