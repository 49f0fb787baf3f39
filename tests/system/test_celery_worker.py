"""The production shape: PostgreSQL, a Redis broker and real Celery worker processes.

Runs in the PostgreSQL tier (a worker cannot see SQLite's in-memory test database).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from itertools import pairwise
from pathlib import Path

import pytest
from django.db import connection

from django_stripe_customers.models import Customer, PullRun
from django_stripe_customers.sync import pull_all
from tests.support.celery_app import app

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs the PostgreSQL tier (make test-postgres)"
    ),
]


@pytest.fixture
def worker_env():
    """Extra environment for the worker (set by a test before the worker starts)."""
    return {}


@pytest.fixture
def celery_worker_process(stripe_settings, worker_env):
    """Two real worker processes (prefork, concurrency 2) on a queue unique to this test."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **worker_env,
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.support.settings_worker",
        "WORKER_DB_NAME": connection.settings_dict["NAME"],
        "WORKER_STRIPE_URL": stripe_settings.url,
        "WORKER_BROKER_URL": BROKER,
    }
    command = [
        sys.executable, "-m", "celery", "-A", "tests.support.worker_app", "worker",
        "--concurrency", "2", "--pool", "prefork", "--queues", queue,
        "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
    ]  # fmt: skip
    worker = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    overrides = {"task_always_eager": False, "broker_url": BROKER, "task_default_queue": queue}
    saved = {name: app.conf[name] for name in overrides}
    app.conf.update(overrides)
    app._pool = None  # an earlier eager task cached a producer pool for the memory:// broker
    app.amqp._producer_pool = None
    try:
        _wait_ready(worker)
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=5)
        app.conf.update(saved)
        app._pool = None
        app.amqp._producer_pool = None


def _wait_ready(worker: subprocess.Popen[str], timeout: float = 60) -> None:
    assert worker.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = worker.stdout.readline()
        if not line and worker.poll() is not None:
            break
        seen.append(line)
        if "ready." in line:
            return
    raise AssertionError("the Celery worker did not start:\n" + "".join(seen[-40:]))


def test_partitioned_pull_runs_in_real_workers(stripe_settings, celery_worker_process):
    emulator = stripe_settings
    emulator.seed(450, spacing=3600)

    result = pull_all(partitions=3, timeout=90)

    assert result.created == 450
    assert Customer.objects.count() == 450
    run = PullRun.objects.latest()
    assert run.partitions == run.partitions_done > 3, "more slices than workers"
    assert run.status == "succeeded"
    slices = sorted(
        (int(r.params["created"]["gte"]), int(r.params["created"]["lt"]))
        for r in emulator.requests
        if r.path == "/v1/customers" and "starting_after" not in r.params
    )
    assert len(slices) == run.partitions, "one first page per slice (and the newest page)"
    whole = (min(low for low, _ in slices), max(high for _, high in slices))
    slices.remove(whole)  # the run lists the newest page of the whole range itself
    assert all(a[1] == b[0] for a, b in pairwise(slices)), "contiguous"
    assert slices[0][0] == whole[0], "from the start of the range"


def test_a_worker_killed_after_stripe_answered_loses_nothing_and_duplicates_nothing(
    stripe_settings, tmp_path, worker_env, request
):
    marker = tmp_path / "crashed"
    worker_env["WORKER_CRASH_MARKER"] = str(marker)
    request.getfixturevalue("celery_worker_process")

    customer = Customer.objects.create(email="survivor@example.com")  # pushed on commit

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        customer.refresh_from_db()
        if customer.sync_status == "synced":
            break
        time.sleep(0.2)
    assert marker.exists(), "the worker really died between Stripe's answer and the DB write"
    assert customer.sync_status == "synced" and customer.stripe_id is not None
    assert list(stripe_settings.customers) == [customer.stripe_id], "exactly one customer"
    creates = [
        r for r in stripe_settings.requests if (r.method, r.path) == ("POST", "/v1/customers")
    ]
    assert len(creates) == 2, "sent, then resent by the redelivered task"
    assert creates[0].headers["Idempotency-Key"] == creates[1].headers["Idempotency-Key"]


def _wait_synced(customer: Customer, timeout: float = 60) -> Customer:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = Customer.objects.get(pk=customer.pk)
        if row.sync_status == "synced" and row.push_intent is None:
            return row
        time.sleep(0.1)
    raise AssertionError(f"customer {customer.pk} not synced after {timeout}s")


def test_an_instance_kept_across_a_worker_push_edits_the_same_customer(
    stripe_settings, celery_worker_process
):
    emulator = stripe_settings
    customers = [Customer.objects.create(email=f"kept{n}@example.com") for n in range(5)]
    for customer in customers:
        _wait_synced(customer)  # the worker pushed; these instances still have no stripe_id

    for customer in customers:
        customer.metadata["tier"] = "gold"
        customer.save()
    rows = [_wait_synced(customer) for customer in customers]

    assert len(emulator.customers) == 5, "one Stripe customer per row, no duplicate"
    assert Customer.objects.count() == 5
    for row in rows:
        assert emulator.customers[row.stripe_id]["metadata"] == {"tier": "gold"}


def test_a_slice_whose_worker_died_is_pulled_again_by_another(
    stripe_settings, tmp_path, worker_env, request
):
    marker = tmp_path / "slice-crashed"
    worker_env["WORKER_CRASH_SLICE_MARKER"] = str(marker)
    request.getfixturevalue("celery_worker_process")
    stripe_settings.seed(800, spacing=600)

    result = pull_all(partitions=2, timeout=120)

    assert marker.exists(), "a worker really died in the middle of a slice"
    assert Customer.objects.count() == 800
    run = PullRun.objects.latest()
    assert (run.status, run.partitions_done) == ("succeeded", run.partitions)
    assert result.created + result.unchanged >= 800, "the slice was pulled again in full"
