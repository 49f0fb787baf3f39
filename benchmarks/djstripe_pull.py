"""The peers' side of ``benchmarks/pull.py``: one measured pull per process, in ``.venv-djstripe``.

    python -m benchmarks.djstripe_pull djstripe   # dj-stripe 2.11's core sync loop
    python -m benchmarks.djstripe_pull sdk        # stripe SDK auto-paging list + update_or_create
    python -m benchmarks.djstripe_pull command    # `djstripe_sync_models Customer`, as users run it

``pull.py`` sets the environment (``BENCH_*``, see ``settings_common.py``), migrates the database
in an earlier process, and reads the one ``BENCH_RESULT {json}`` line this prints. This process
only talks HTTP to the emulator, which runs in the parent on our own venv.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import time
from importlib import metadata
from typing import Any

RESULT_PREFIX = "BENCH_RESULT "


def _memory_mb() -> dict[str, float]:
    """This process's own memory: ``VmRSS`` now and ``VmHWM`` (peak) from /proc/self/status.

    Not ``ru_maxrss`` alone: Linux carries it across ``execve``, so a child spawned by a big
    parent (the emulator holding N customers) reports at least the parent's RSS at spawn time.
    ``ru_maxrss`` is kept for reference.
    """
    found = {"ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    found[name] = int(value.split()[0]) / 1024  # kB
    except OSError:  # no procfs: ru_maxrss is the best there is
        found.setdefault("VmRSS", found["ru_maxrss"])
        found.setdefault("VmHWM", found["ru_maxrss"])
    return found


def _versions() -> dict[str, str]:
    names = ("dj-stripe", "stripe", "Django", "psycopg")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def pull_djstripe(api_key: str) -> dict[str, Any]:
    """dj-stripe's core loop: what ``djstripe_sync_models Customer`` runs per listed object."""
    from djstripe.models import Customer

    synced = 0
    for stripe_obj in Customer.api_list(api_key=api_key):
        Customer.sync_from_stripe_data(stripe_obj, api_key=api_key)
        synced += 1
    return {"synced": synced}


def pull_sdk(api_key: str) -> dict[str, Any]:
    """What users hand-write: the official SDK's auto-paging list, ``update_or_create`` each."""
    from datetime import datetime, timezone

    import stripe

    from benchmarks.djstripe_sdkapp.models import StripeCustomer

    synced = 0
    for customer in stripe.Customer.list(limit=100, api_key=api_key).auto_paging_iter():
        data = customer.to_dict()
        StripeCustomer.objects.update_or_create(
            stripe_id=data["id"],
            defaults={
                "email": data.get("email") or "",
                "name": data.get("name") or "",
                "description": data.get("description") or "",
                "phone": data.get("phone") or "",
                "balance": data.get("balance") or 0,
                "currency": data.get("currency") or "",
                "delinquent": data.get("delinquent"),
                "livemode": bool(data.get("livemode")),
                "created": datetime.fromtimestamp(data["created"], tz=timezone.utc),
                "metadata": data.get("metadata") or {},
                "data": data,
            },
        )
        synced += 1
    return {"synced": synced}


def pull_command(api_key: str) -> dict[str, Any]:
    """``manage.py djstripe_sync_models Customer --api-keys KEY``, output captured."""
    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    failed = None
    try:
        call_command(
            "djstripe_sync_models",
            "Customer",
            "--api-keys",
            api_key,
            "--fail-on-error",
            stdout=out,
            stderr=err,
        )
    except Exception as exc:  # CommandError when any model/key or object failed
        failed = f"{type(exc).__name__}: {exc}"
    stderr_lines = err.getvalue().splitlines()
    return {
        "failed": failed,
        "stdout_head": out.getvalue().splitlines()[:5],
        "stderr_head": stderr_lines[:8],
        "stderr_lines": len(stderr_lines),
    }


def main(argv: list[str]) -> int:
    mode = argv[1] if len(argv) > 1 else "djstripe"
    pulls = {"djstripe": pull_djstripe, "sdk": pull_sdk, "command": pull_command}
    if mode not in pulls:
        print(f"usage: {argv[0]} {'|'.join(pulls)}", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings_djstripe")
    import django

    django.setup()
    # Everything imported and connected before the clock starts, as in our own child.
    import djstripe.management.commands.djstripe_sync_models
    import djstripe.models
    import stripe
    from django.conf import settings
    from django.db import connection

    from benchmarks.djstripe_sdkapp.models import StripeCustomer

    del djstripe, stripe  # imported for their import time only

    connection.ensure_connection()
    api_key = settings.STRIPE_TEST_SECRET_KEY
    queries = 0
    db_seconds = 0.0  # inside cursor.execute: driver-side adaptation and the database itself

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        nonlocal queries, db_seconds
        queries += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            db_seconds += time.perf_counter() - started

    memory_before = _memory_mb()
    started = time.perf_counter()
    with connection.execute_wrapper(count):
        extra = pulls[mode](api_key)
    seconds = time.perf_counter() - started
    memory_after = _memory_mb()

    from djstripe.models import Customer

    rows = StripeCustomer.objects.count() if mode == "sdk" else Customer.objects.count()
    result = {
        "seconds": seconds,
        "queries": queries,
        "db_seconds": db_seconds,
        "rows": rows,
        "rss_before_mb": memory_before["VmRSS"],
        "rss_peak_mb": memory_after["VmHWM"],
        "ru_maxrss_mb": memory_after["ru_maxrss"],
        "versions": _versions(),
        "extra": extra,
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
