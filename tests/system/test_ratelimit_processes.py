"""One rate limit for several worker processes: the Redis bucket (``RATE_LIMIT_BACKEND``).

Two plain Python processes with Django set up from a settings module
(``tests/support/ratelimit_worker.py``), 4 threads each, hit the emulator together through
``get_client()``. Redis at 127.0.0.1:6379, database 13; the test's bucket is deleted before
and after. Without Redis these tests skip, except in CI (``CI`` or ``REQUIRE_POSTGRES`` set).
The control test shows the same two processes with a bucket each do get 429s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from django_stripe_customers.ratelimits import KEY_PREFIX, bucket_name
from tests.support.processes import stop
from tests.support.redis_db import REDIS_URL, redis_or_skip

ROOT = Path(__file__).resolve().parents[2]
WORKER_KEY = "sk_test_ratelimit_workers"  # tests/support/settings_ratelimit_worker.py
WORKERS, THREADS = 2, 4

pytestmark = pytest.mark.slow


@pytest.fixture
def shared_bucket(stripe_emulator) -> Iterator[tuple[redis.Redis, str]]:
    """Redis, and the key of the workers' bucket (emptied before and after the test)."""
    client = redis_or_skip()
    key = KEY_PREFIX + bucket_name(WORKER_KEY, stripe_emulator.url)
    client.delete(key)
    yield client, key
    client.delete(key)
    client.close()


def run_workers(
    emulator, rate: float, backend: str, per_thread: int, endpoints: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """Start the workers, let them all go at once, and return their reports."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.support.settings_ratelimit_worker",
        "WORKER_STRIPE_URL": emulator.url,
        "WORKER_RATE_LIMIT": str(rate),
        "WORKER_RATE_LIMIT_BACKEND": backend,
        "WORKER_ENDPOINT_RATE_LIMITS": json.dumps(endpoints or {}),
    }
    command = [sys.executable, str(ROOT / "tests" / "support" / "ratelimit_worker.py")]
    processes = [
        subprocess.Popen(
            [*command, str(THREADS), str(per_thread)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.strip() != "ready":
                process.kill()
                raise AssertionError(f"a worker did not start: {line}{process.stderr.read()}")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        reports = []
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for process in processes:
            stop(process)


def steady_rate(times: list[float], burst: int) -> float:
    """Requests per second after the first burst (see tests/integration/test_ratelimit_load.py)."""
    times = sorted(times)
    return (len(times) - burst) / (times[-1] - times[burst - 1])


@pytest.mark.stripe_emulator(latency_ms=50, rate_limit=20)
def test_two_workers_sharing_the_redis_bucket_stay_within_the_limit(
    stripe_emulator, shared_bucket
) -> None:
    reports = run_workers(stripe_emulator, 18, REDIS_URL, per_thread=12)

    finished = [t for report in reports for t in report["finished"]]
    assert [report["errors"] for report in reports] == [[], []]
    assert len(finished) == WORKERS * THREADS * 12 == 96
    assert stripe_emulator.count(status=429) == 0
    achieved = steady_rate(finished, burst=9)
    print(f"2 workers, one Redis bucket of 18/s: {achieved:.2f}/s together, 0 x 429")
    assert 18 * 0.75 <= achieved <= 18 * 1.1
    client, key = shared_bucket
    assert client.exists(key), "the bucket really lived in Redis"


@pytest.mark.stripe_emulator(latency_ms=50, rate_limit=20)
def test_control_the_same_workers_with_a_bucket_each_get_429s(stripe_emulator) -> None:
    reports = run_workers(stripe_emulator, 18, "local", per_thread=12)

    refused = stripe_emulator.count(status=429)
    print(f"2 workers, a local bucket of 18/s each: {refused} x 429")
    assert [report["errors"] for report in reports] == [[], []]  # retried
    assert refused > 0, "36/s against 20/s: without a shared bucket Stripe refuses some"


@pytest.mark.stripe_emulator(latency_ms=50, rate_limit=10)
def test_a_shared_bucket_above_stripes_limit_slows_every_worker_down(
    stripe_emulator, shared_bucket
) -> None:
    reports = run_workers(stripe_emulator, 30, REDIS_URL, per_thread=8)

    refused = stripe_emulator.count(status=429)
    client, key = shared_bucket
    shared_rate = float(client.hget(key, "rate") or 0)
    rates = [report["rate"] for report in reports]
    print(f"2 workers, one bucket of 30/s over Stripe's 10/s: {refused} x 429, now {rates}")
    assert [report["errors"] for report in reports] == [[], []]
    assert stripe_emulator.count("GET", "/v1/customers", status=200) == 64
    assert refused > 0
    assert 0 < shared_rate < 30 and all(rate < 30 for rate in rates)


LIST = "GET /v1/customers"


@pytest.mark.stripe_emulator(
    latency_ms=50, rate_limit=100, endpoint_rate_limit=10, strict_window=True
)
def test_two_workers_share_the_endpoints_bucket_in_redis_too(stripe_emulator, shared_bucket):
    """The list endpoint's own limit (10/s, under a global 100/s), held by Stripe as a strict
    one-second window: two processes sharing Redis stay under it, never more than 10 in any
    second, and with a bucket each (the control) they go over."""
    client, key = shared_bucket
    client.delete(f"{key}:{LIST}")
    # The workers take the limit as 9/s (paced at 95% of it): the margin absorbs the late
    # wake-ups of eight threads in two processes on a loaded 2-core machine.
    reports = run_workers(stripe_emulator, 100, REDIS_URL, per_thread=6, endpoints={LIST: 9})

    finished = [t for report in reports for t in report["finished"]]
    assert [report["errors"] for report in reports] == [[], []]
    assert len(finished) == 48
    assert stripe_emulator.count_rate_limited() == 0
    assert stripe_emulator.max_in_window(LIST) <= 10
    achieved = steady_rate(finished, burst=2)
    print(f"2 workers, the list endpoint's Redis bucket of 10/s: {achieved:.2f}/s, 0 x 429")
    assert 10 * 0.75 <= achieved <= 10 * 1.05
    assert client.exists(f"{key}:{LIST}"), "the endpoint's bucket lived in Redis"
    client.delete(f"{key}:{LIST}")

    stripe_emulator.set_limits(
        latency_ms=50, rate_limit=100, endpoint_rate_limit=10, strict_window=True
    )
    run_workers(stripe_emulator, 100, "local", per_thread=6, endpoints={LIST: 9})
    assert stripe_emulator.count_rate_limited() > 0, "a bucket each: 2 x 8.55/s over 10/s"
