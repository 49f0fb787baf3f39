"""Push (DB -> Stripe) benchmark: pushes/s, and HTTP calls per burst of saves.

    .venv/bin/python benchmarks/push.py                       # N = 500, SQLite and PostgreSQL
    .venv/bin/python benchmarks/push.py --customers 200 --repeats 1 --backends sqlite

Our Stripe emulator (``django_stripe_customers.testing``) runs in this process, on loopback;
each database is measured in a child process of its own (Celery eager, ``MAX_RETRIES`` 0 so a
failure shows instead of being retried into the timings), against a fresh database: a SQLite
file in a temporary directory, and a scratch PostgreSQL database ``bench_push`` at
127.0.0.1:5432 (user ``postgres``, created from database ``test`` and dropped afterwards; the
row is skipped, and says so, when PostgreSQL does not answer).

(a) pushes/s. N customers per repetition; what is timed (median of ``--repeats``):

- ``create, sweep``: N rows saved locally with ``PUSH_ON_SAVE`` off, then
  ``push_pending_task(older_than=0)`` (the outbox sweep, each row's ``push_customer_task`` run
  eagerly): N ``POST /v1/customers``;
- ``update, sweep``: each of the N edited once (one field), then the sweep;
- ``update, push_customer() loop``: each edited once, then ``push_customer(pk)`` per row (no
  Celery);
- ``update, push on save``: ``PUSH_ON_SAVE`` on: per row, load it, edit it, ``save()``; the
  commit runs the push at once (eager), so the time includes the load and the save.

HTTP calls/push: requests the client sent during the timed part / N (counted from the client's
one log line per response, and cross-checked against the emulator's request log).
DB queries/push: statements sent during the timed part / N (``connection.execute_wrapper``).

(b) calls per burst: one customer, already in Stripe, saved K times (K = 1, 10, 100), each save
changing its name; then the HTTP calls that reached Stripe, in three shapes:

- ``PUSH_ON_SAVE off, then one push``: the K saves only mark the row pending; one
  ``push_customer()`` afterwards sends the net change: 1 call whatever K (what the sweep, a
  batch job, or a worker that runs after the burst does);
- ``PUSH_ON_SAVE on, K commits (eager)``: every save commits and, Celery being eager, pushes
  right away: K calls. With a real worker the count is between 1 and K, depending on how many
  saves land while a push is queued or in flight (a push sends all edits saved before it reads
  the row; edits saved during its request go in the next one);
- ``PUSH_ON_SAVE on, K saves in one transaction``: K pushes are scheduled on commit; the first
  sends everything and the others find nothing to send: 1 call.

Each burst is checked: Stripe ends with the last name saved.

Results: Markdown on stdout and in ``benchmarks/results/push-latest.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a clean clone
    sys.path.insert(0, str(ROOT))

from benchmarks.common import source_state  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "push-latest.md"
API_KEY = "sk_test_BenchPush0123456789abcdef"
PG_ADMIN_DB = os.environ.get("PGDATABASE", "test")
PG_BENCH_DB = "bench_push"
RESULT_PREFIX = "BENCH_PUSH_RESULT "
CHILD_TIMEOUT = 300  # seconds
BURST_SIZES = (1, 10, 100)

THROUGHPUT_ROWS = (
    "create, sweep",
    "update, sweep",
    "update, push_customer() loop",
    "update, push on save",
)
BURST_SHAPES = (
    "PUSH_ON_SAVE off, then one push",
    "PUSH_ON_SAVE on, K commits (eager)",
    "PUSH_ON_SAVE on, K saves in one transaction",
)


# -- the child: one database ---------------------------------------------------------------


def database(backend: str, name: str) -> dict[str, Any]:
    if backend == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "NAME": name,
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
    }


def setup_django(backend: str, db_name: str, api_base: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="benchmark-only-not-secret",
        DEBUG=False,  # DEBUG would keep every query in memory
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django_stripe_customers",
        ],
        DATABASES={"default": database(backend, db_name)},
        STRIPE_CUSTOMERS={
            "API_KEY": API_KEY,
            "API_BASE": api_base,
            "MAX_RETRIES": 0,  # a failure must show, not be retried into the timings
            "TIMEOUT": 10,
            "PUSH_ON_SAVE": False,
        },
        SILENCED_SYSTEM_CHECKS=["stripe_customers.W001"],  # plain http on loopback, on purpose
        CELERY_TASK_ALWAYS_EAGER=True,
        CELERY_TASK_EAGER_PROPAGATES=True,
        CELERY_BROKER_URL="memory://",
        LOGGING_CONFIG=None,
    )
    django.setup()
    from celery import Celery

    app = Celery("bench_push")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.set_default()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


class CallCounter(logging.Handler):
    """Counts the client's one INFO line per HTTP response (``stripe POST /v1/... -> 200``)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.calls = 0
        self.failures: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.INFO and str(record.msg).startswith("stripe %s %s -> "):
            self.calls += 1
        elif record.levelno >= logging.WARNING:
            self.failures.append(record.getMessage())


class QueryCounter:
    def __init__(self) -> None:
        self.queries = 0

    def __call__(self, execute: Callable[..., Any], *args: Any) -> Any:
        self.queries += 1
        return execute(*args)


@contextmanager
def measured(calls: CallCounter) -> Iterator[dict[str, Any]]:
    """Wall seconds, HTTP calls and DB statements of the block."""
    from django.db import connection

    queries = QueryCounter()
    result: dict[str, Any] = {}
    calls_before = calls.calls
    with connection.execute_wrapper(queries):
        started = time.perf_counter()
        yield result
        result["seconds"] = time.perf_counter() - started
    result["calls"] = calls.calls - calls_before
    result["queries"] = queries.queries


def set_push_on_save(on: bool) -> None:
    from django.conf import settings

    settings.STRIPE_CUSTOMERS = {**settings.STRIPE_CUSTOMERS, "PUSH_ON_SAVE": on}


def child(args: argparse.Namespace) -> dict[str, Any]:
    setup_django(args.backend, args.db, args.api_base)
    calls = CallCounter()
    client_logger = logging.getLogger("django_stripe_customers")
    client_logger.addHandler(calls)
    client_logger.setLevel(logging.INFO)
    client_logger.propagate = False

    from django.db import transaction

    from django_stripe_customers.clients import get_client
    from django_stripe_customers.models import Customer, SyncStatus
    from django_stripe_customers.sync.push import push_customer
    from django_stripe_customers.tasks import push_pending_task

    n = args.customers

    def check_synced(pks: list[int], what: str) -> None:
        synced = Customer.objects.filter(pk__in=pks, sync_status=SyncStatus.SYNCED).count()
        if synced != len(pks):
            raise SystemExit(f"{what}: {len(pks) - synced} of {len(pks)} rows not synced")

    def edit_all(pks: list[int], label: str) -> None:
        with transaction.atomic():
            for customer in Customer.objects.filter(pk__in=pks):
                customer.name = f"{label} {customer.pk}"
                customer.save()

    timings: dict[str, list[dict[str, Any]]] = {row: [] for row in THROUGHPUT_ROWS}
    last_names: dict[int, str] = {}
    for repeat in range(args.repeats):
        set_push_on_save(False)
        with transaction.atomic():
            pks = [
                Customer.objects.create(
                    email=f"bench{repeat}-{i}@example.com", name=f"Bench {repeat}-{i}"
                ).pk
                for i in range(n)
            ]
        with measured(calls) as result:
            swept = push_pending_task(older_than=0, limit=n)
        if swept != n:
            raise SystemExit(f"the sweep took {swept} rows, expected {n}")
        check_synced(pks, "create, sweep")
        timings["create, sweep"].append(result)

        edit_all(pks, f"swept {repeat}")
        with measured(calls) as result:
            push_pending_task(older_than=0, limit=n)
        check_synced(pks, "update, sweep")
        timings["update, sweep"].append(result)

        edit_all(pks, f"looped {repeat}")
        with measured(calls) as result:
            for pk in pks:
                push_customer(pk)
        check_synced(pks, "update, push_customer() loop")
        timings["update, push_customer() loop"].append(result)

        set_push_on_save(True)
        with measured(calls) as result:
            for pk in pks:
                customer = Customer.objects.get(pk=pk)
                customer.name = f"on save {repeat} {pk}"
                customer.save()
        check_synced(pks, "update, push on save")
        timings["update, push on save"].append(result)
        last_names.update({pk: f"on save {repeat} {pk}" for pk in pks})

    # Stripe holds what was saved last (untimed; the list calls are not in any measurement)
    stripe_names = {c["id"]: c["name"] for c in get_client().customers.list_all()}
    wrong = sum(
        1
        for pk, stripe_id in Customer.objects.values_list("pk", "stripe_id")
        if pk in last_names and stripe_names.get(stripe_id) != last_names[pk]
    )
    if wrong or len(stripe_names) != len(last_names):
        raise SystemExit(
            f"Stripe disagrees: {wrong} wrong names, {len(stripe_names)} customers "
            f"for {len(last_names)} rows"
        )

    bursts: list[dict[str, Any]] = []
    for shape in BURST_SHAPES:
        for k in args.bursts:
            set_push_on_save(True)
            customer = Customer.objects.create(email=f"burst-{k}@example.com", name="start")
            customer.refresh_from_db()
            assert customer.stripe_id, "the burst's customer exists in Stripe first"
            names = [f"burst {shape[:12]} {k} #{i}" for i in range(1, k + 1)]
            with measured(calls) as result:
                before_saves = calls.calls
                if shape == "PUSH_ON_SAVE off, then one push":
                    set_push_on_save(False)
                    for name in names:
                        customer.name = name
                        customer.save(update_fields=["name"])
                    calls_during_saves = calls.calls - before_saves
                    push_customer(customer.pk)
                elif shape == "PUSH_ON_SAVE on, K commits (eager)":
                    for name in names:
                        customer.name = name
                        customer.save(update_fields=["name"])
                else:
                    with transaction.atomic():
                        for name in names:
                            customer.name = name
                            customer.save(update_fields=["name"])
            customer.refresh_from_db()
            remote = get_client().customers.retrieve(customer.stripe_id)["name"]
            bursts.append(
                {
                    "shape": shape,
                    "k": k,
                    "calls": result["calls"],
                    "calls_during_saves": (
                        calls_during_saves if shape == "PUSH_ON_SAVE off, then one push" else None
                    ),
                    "seconds": result["seconds"],
                    "ok": remote == names[-1] and customer.sync_status == SyncStatus.SYNCED,
                }
            )
            set_push_on_save(False)

    from django.db import connection

    return {
        "backend": args.backend,
        "vendor_version": _db_version(connection),
        "n": n,
        "repeats": args.repeats,
        "throughput": timings,
        "bursts": bursts,
        "total_calls": calls.calls,  # every call of the run, checks included
        "client_warnings": calls.failures[:5],
    }


def _db_version(connection: Any) -> str:
    if connection.vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return f"PostgreSQL {cursor.fetchone()[0]}"


# -- the parent: emulator, databases, report -------------------------------------------------


def _pg_connect() -> Any:
    import psycopg

    return psycopg.connect(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "5432"),
        dbname=PG_ADMIN_DB,
        user=os.environ.get("PGUSER", "postgres"),
        password=os.environ.get("PGPASSWORD", ""),
        connect_timeout=3,
        autocommit=True,
    )


def _pg(*statements: str) -> None:
    with _pg_connect() as conn:
        for statement in statements:
            conn.execute(statement)


def run_child(
    backend: str, db_name: str, api_base: str, args: argparse.Namespace
) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--backend",
        backend,
        "--db",
        db_name,
        "--api-base",
        api_base,
        "--customers",
        str(args.customers),
        "--repeats",
        str(args.repeats),
        "--bursts",
        ",".join(map(str, args.bursts)),
    ]
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=CHILD_TIMEOUT, cwd=ROOT, check=False
    )
    for line in run.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(
        f"{backend} run failed (exit {run.returncode}):\n{run.stdout[-2000:]}{run.stderr[-4000:]}"
    )


def measure(backend: str, emulator: Any, args: argparse.Namespace) -> dict[str, Any]:
    emulator.reset()
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        if backend == "sqlite":
            result = run_child(backend, os.path.join(tmp, "push.sqlite3"), emulator.url, args)
        else:
            _pg(
                f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)',
                f'CREATE DATABASE "{PG_BENCH_DB}"',
            )
            try:
                result = run_child(backend, PG_BENCH_DB, emulator.url, args)
            finally:
                _pg(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')
    received = emulator.count()
    result["emulator_requests"] = received
    if received != result["total_calls"]:
        raise RuntimeError(
            f"{backend}: the client counted {result['total_calls']} calls, the emulator "
            f"received {received}"
        )
    return result


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg
    except ImportError as exc:
        return str(exc)
    try:
        _pg_connect().close()
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__
    return None


def _versions() -> str:
    import django
    import requests

    import django_stripe_customers

    return (
        f"Python {platform.python_version()}, Django {django.__version__}, "
        f"django-stripe-customers {django_stripe_customers.__version__}, "
        f"requests {requests.__version__}"
    )


def report(results: list[dict[str, Any]], skipped: dict[str, str], args: argparse.Namespace,
           seconds: float) -> str:  # fmt: skip
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python benchmarks/push.py" + (f" {' '.join(args.argv)}" if args.argv else "")
    lines = [
        f"## Push benchmark ({now})",
        "",
        f"`{command}` at {source_state()}, on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {_versions()}; "
        + ", ".join(r["vendor_version"] for r in results)
        + f". Emulator in the parent process, each database pushed from a child process, "
        f"loopback, Celery eager, client MAX_RETRIES 0. Whole run {seconds:.0f} s; "
        f"1-minute load average {args.load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
        f"(well above 0, other processes shared the {os.cpu_count()} CPUs: timings are "
        "pessimistic).",
        "",
        "### Pushes per second",
        "",
        "| database | what is timed | N | seconds | pushes/s | HTTP calls/push | DB queries/push |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        n = result["n"]
        for row in THROUGHPUT_ROWS:
            runs = result["throughput"][row]
            median = statistics.median(r["seconds"] for r in runs)
            calls = sum(r["calls"] for r in runs) / (n * len(runs))
            queries = sum(r["queries"] for r in runs) / (n * len(runs))
            lines.append(
                f"| {result['backend']} | {row} | {n:,} | {median:.2f} | {n / median:,.0f} "
                f"| {calls:.2f} | {queries:.1f} |"
            )
    repeats = results[0]["repeats"] if results else args.repeats
    lines += [
        "",
        f"seconds: median of {repeats} runs, each on N fresh customers. `create, sweep` and "
        "`update, sweep`: `push_pending_task(older_than=0)` pushing N pending rows (eager "
        "`push_customer_task` per row); `push_customer() loop`: the function per row, no "
        "Celery; `push on save`: per row load, edit, `save()`, and the push run by the commit "
        "(eager), all timed. HTTP calls: counted by the client and cross-checked with the "
        "emulator's log. DB queries: every statement sent during the timed part.",
        "",
        "### HTTP calls per burst of K saves of one customer",
        "",
        "| database | shape | " + " | ".join(f"K={k}" for k in args.bursts) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in args.bursts) + " |",
    ]
    for result in results:
        for shape in BURST_SHAPES:
            cells = []
            for k in args.bursts:
                (burst,) = [b for b in result["bursts"] if b["shape"] == shape and b["k"] == k]
                mark = "" if burst["ok"] else " (Stripe disagrees!)"
                cells.append(f"{burst['calls']} ({burst['seconds'] * 1000:.0f} ms){mark}")
            lines.append(f"| {result['backend']} | {shape} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Cells: HTTP calls that reached Stripe (wall time of the K saves and the push). In every "
        "cell Stripe ends with the last value saved"
        + ("" if all(b["ok"] for r in results for b in r["bursts"]) else " EXCEPT where marked")
        + ". `PUSH_ON_SAVE off, then one push`: the saves only mark the row pending (no call); "
        "one push sends the net change, 1 call whatever K (the sweep or a batch job). "
        "`PUSH_ON_SAVE on, K commits (eager)`: each commit pushes at once, K calls; with a real "
        "worker the count falls between 1 and K, as saves made while a push is queued go in "
        "that push. `PUSH_ON_SAVE on, K saves in one transaction`: K pushes are scheduled on "
        "commit, the first sends everything, the others find nothing to send: 1 call.",
    ]
    lines += ["", "Checks:"]
    for result in results:
        backend = result["backend"]
        for row in THROUGHPUT_ROWS:
            runs = result["throughput"][row]
            calls = sum(r["calls"] for r in runs)
            expected = result["n"] * len(runs)
            verdict = "PASS" if calls == expected else "FAIL"
            lines.append(f"- {verdict} one HTTP call per push: {backend}, {row}: {calls} calls "
                         f"for {expected} pushes")  # fmt: skip
        for burst in result["bursts"]:
            k, shape = burst["k"], burst["shape"]
            expected = k if shape == "PUSH_ON_SAVE on, K commits (eager)" else 1
            quiet = burst["calls_during_saves"] in (None, 0)
            verdict = "PASS" if burst["calls"] == expected and quiet and burst["ok"] else "FAIL"
            lines.append(
                f"- {verdict} {backend}, {shape}, K={k}: {burst['calls']} calls (expected "
                f"{expected}"
                + ("" if burst["calls_during_saves"] is None else ", 0 during the saves")
                + "), Stripe has the last value: " + ("yes" if burst["ok"] else "NO")
            )  # fmt: skip
    for backend, why in skipped.items():
        lines += ["", f"{backend}: skipped ({why})."]
    for result in results:
        if result["client_warnings"]:
            lines += ["", f"{result['backend']}: client warnings: {result['client_warnings']}"]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--customers", type=int, default=500, help="N (default 500)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--bursts",
        default=",".join(map(str, BURST_SIZES)),
        help="burst sizes K, comma-separated (default 1,10,100)",
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.name}")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--api-base", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.bursts = [int(k) for k in str(args.bursts).split(",") if k]
    args.backends = [b for b in args.backends.split(",") if b]
    if any(b not in ("sqlite", "postgres") for b in args.backends):
        parser.error("--backends takes sqlite and/or postgres")
    if args.customers < 1 or args.repeats < 1 or not args.bursts or min(args.bursts) < 1:
        parser.error("--customers, --repeats and every burst size must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = child(args)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    from django_stripe_customers.testing import StripeEmulator

    started = time.monotonic()
    args.load_before = os.getloadavg()[0]
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with StripeEmulator(api_key=API_KEY) as emulator:
        for backend in args.backends:
            if backend == "postgres" and (why := postgres_available()):
                print(f"postgres: skipped ({why})", flush=True)
                skipped[backend] = f"PostgreSQL not available: {why}"
                continue
            print(f"{backend}: pushing ...", flush=True)
            results.append(measure(backend, emulator, args))
    text = report(results, skipped, args, time.monotonic() - started)
    print()
    print(text, end="")
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        print(f"\n(written to {RESULTS.relative_to(ROOT)})")
    return 1 if "\n- FAIL " in text else 0


if __name__ == "__main__":
    sys.exit(main())
