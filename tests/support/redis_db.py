"""The tests' Redis (127.0.0.1:6379, database 13 unless ``TEST_RATELIMIT_REDIS_URL`` says
otherwise): a skip when it does not answer, a failure in CI (``CI`` or ``REQUIRE_POSTGRES``)."""

from __future__ import annotations

import os

import pytest
import redis

from django_stripe_customers.ratelimits import connect_redis

REDIS_URL = os.environ.get("TEST_RATELIMIT_REDIS_URL", "redis://127.0.0.1:6379/13")


def redis_or_skip() -> redis.Redis:
    """The tests' Redis; a skip when it does not answer, a failure in CI."""
    client = connect_redis(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") or os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail(f"Redis is required here and does not answer at {REDIS_URL}: {exc}")
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    return client
