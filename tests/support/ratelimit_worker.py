"""A worker process for tests/system/test_ratelimit_processes.py: Django set up
from ``tests.support.settings_ratelimit_worker``, then THREADS x REQUESTS list calls through
``get_client()``.

It prints ``ready`` once set up, waits for ``go`` on stdin (so every worker starts together),
and prints one JSON line: the wall-clock times its successes completed, its errors, and the
rate its limiter last saw.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import django


def main() -> None:
    threads, per_thread = int(sys.argv[1]), int(sys.argv[2])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.support.settings_ratelimit_worker")
    django.setup()
    from django_stripe_customers.clients import get_client
    from django_stripe_customers.stripe import StripeError

    client = get_client()
    finished: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(per_thread):
            try:
                client.customers.list(limit=1)
            except StripeError as exc:
                with lock:
                    errors.append(str(exc))
            else:
                with lock:
                    finished.append(time.time())

    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("no go")
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    limiter = client.rate_limiter
    report = {"finished": finished, "errors": errors, "rate": getattr(limiter, "rate", None)}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
