"""The Celery row of ``benchmarks/push.py --backlog``: the same backlog drained by workers.

The prepared database (N pending rows, as for the inline rows) is drained by the outbox sweep
under Celery, as a project with workers drains it: ``push_pending_task(older_than=0)`` sends
one ``push_customer_task`` per row to a Redis broker (127.0.0.1:6379 db 13, flushed first),
and ``--celery-workers`` worker processes (``--pool threads``, ``--celery-threads`` each: the
streams) push them, their client sharing one rate limiter in Redis (``RATE_LIMIT_BACKEND``).
Timed: from the sweep's start until no row is pending (a push refused with a 429 is retried
by its task, after the backoff), in a child process under ``benchmarks.settings``; the workers
are started and ready before. PostgreSQL only: SQLite takes one writer, and worker processes
writing one file at once would measure its locks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script (the timed child)
    sys.path.insert(0, str(ROOT))

from benchmarks.pull import CHILD_TIMEOUT, RESULT_PREFIX, child_env  # noqa: E402
from benchmarks.pull_latency import BROKER_URL, CeleryWorkers, broker_problem  # noqa: E402

#: How often the timed child looks whether rows are still pending.
POLL_SECONDS = 0.1

__all__ = ["broker_problem", "drain_with_celery"]


def environment(db_name: str, api_base: str, api_key: str) -> dict[str, str]:
    return child_env(
        {
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
            "BENCH_DB": "postgres",
            "BENCH_PG_NAME": db_name,
            "BENCH_API_BASE": api_base,
            "BENCH_API_KEY": api_key,
            "BENCH_BROKER_URL": BROKER_URL,
        }
    )


def drain_with_celery(
    db_name: str, api_base: str, api_key: str, rows: int, workers: int, threads: int
) -> dict[str, Any]:
    """Start the workers, time the sweep's drain in a child, stop the workers."""
    env = environment(db_name, api_base, api_key)
    with tempfile.TemporaryDirectory(prefix="bench-push-celery-") as logs:
        pool = CeleryWorkers(workers, Path(logs), pool="threads", concurrency=threads)
        with pool(env):
            run = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), str(rows)],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=CHILD_TIMEOUT + rows / 5,
                check=False,
            )
    for line in run.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(f"the Celery drain failed (exit {run.returncode}):\n{run.stderr[-4000:]}")


def child(rows: int) -> dict[str, Any]:
    """In the child: the sweep under Celery, then wait until nothing is pending."""
    import django

    django.setup()
    from benchmarks import celery_app  # noqa: F401  (the app the tasks are sent with)
    from django_stripe_customers.models import Customer, SyncStatus
    from django_stripe_customers.tasks import push_pending_task

    pending = Customer.objects.filter(sync_status=SyncStatus.PENDING)
    deadline = time.monotonic() + CHILD_TIMEOUT + rows / 5
    started = time.perf_counter()
    sent = push_pending_task(older_than=0, limit=rows)
    while pending.exists() and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    seconds = time.perf_counter() - started
    left = pending.count()
    return {
        "seconds": seconds,
        "left_pending": left,
        "summary": f"Pushed {rows - left:,} of {sent:,} swept rows with Celery workers",
        "error": "" if not left else f"{left} rows still pending after the deadline",
        "stderr": [],
        "rows": list(Customer.objects.values_list("stripe_id", "email", "name", "sync_status")),
    }


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    print(RESULT_PREFIX + json.dumps(child(int(sys.argv[1]))), flush=True)
