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

(c) ``--backlog N`` (instead of (a) and (b)): a backlog after an outage, drained at Stripe's
pace. The emulator answers ``--latency-ms`` (300) after each request and holds Stripe's
test-mode limits strictly (25 requests/s per key, 25/s per endpoint, sliding one-second
windows, 429 ``rate_limit`` beyond); our client paces at its defaults (95% of them). Per
database, per K of ``--streams`` (1,8,16): a fresh database mirrors N/2 customers (a pull,
untimed), edits each of them and adds N/2 new local rows (``PUSH_ON_SAVE`` off: N pending);
then ``manage.py stripe_customers push --pending --parallel K`` is timed (``sync.drain``: K
streams in one process; K = 1 drains only ``--baseline`` rows, one push after another takes
long). The two phases run in child processes of their own; the emulator's log is read between
them. Reported: pushes/s, its share of the write limit (25/s), the 429s, the most writes
admitted in any second, the rows left pending (a 429: MAX_RETRIES is 0), lost (after an
untimed second ``push --pending``, as the next sweep: rows not synced, or whose customer in
Stripe lacks the row's name) and duplicated (a new row created more than once, an edit taken
more than once). On
PostgreSQL, a Celery row besides (``--celery-workers`` W, 2, ``--celery-threads`` T, 8; 0
workers: none): the same backlog drained by the outbox sweep under Celery, ``push_pending_task``
sending a task per row to W worker processes of T threads on a Redis broker, their client
sharing one limiter in Redis (``benchmarks/push_celery.py``); timed until no row is pending.
Results: ``benchmarks/results/push-backlog-latest.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a clean clone
    sys.path.insert(0, str(ROOT))

from benchmarks import push_celery  # noqa: E402
from benchmarks.common import COLLECTOR_NOTE, collector_paused, source_state  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "push-latest.md"
BACKLOG_RESULTS = RESULTS.with_name("push-backlog-latest.md")
#: Stripe's test-mode write limit: per key, and per endpoint (creates and updates are two).
WRITE_LIMIT = 25.0
CREATE, UPDATE = "POST /v1/customers", "POST /v1/customers/{id}"
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


# -- (c) a backlog at Stripe's pace ----------------------------------------------------------


def backlog_child(args: argparse.Namespace) -> dict[str, Any]:
    """``--phase prepare``: mirror the seeded customers, edit each, add as many new rows (all
    pending); ``--phase drain``: time ``push --pending --parallel K``, then report every row."""
    setup_django(args.backend, args.db, args.api_base)
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.db import transaction

    from django_stripe_customers.models import Customer, SyncStatus

    if args.phase == "prepare":
        call_command("stripe_customers", "pull", "--parallel", "8", stdout=io.StringIO())
        with transaction.atomic():
            for row in Customer.objects.order_by("pk"):
                row.name = f"backlog edit {row.pk}"
                row.save()
        new = args.backlog - Customer.objects.count()
        Customer.objects.bulk_create(
            [Customer(email=f"new{i}@example.com", name=f"backlog new {i}") for i in range(new)],
            batch_size=500,
        )
        return {"pending": Customer.objects.filter(sync_status=SyncStatus.PENDING).count()}
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    try:
        call_command(
            "stripe_customers", "push", "--pending", "--parallel", str(args.parallel),
            stdout=out, stderr=err,
        )  # fmt: skip
        error = ""
    except CommandError as exc:
        error = str(exc)
    seconds = time.perf_counter() - started
    left = Customer.objects.filter(sync_status=SyncStatus.PENDING).count()
    if left:  # what the next sweep does: resend them (their recorded request, same key)
        call_command("stripe_customers", "push", "--pending", stdout=io.StringIO())
    return {
        "seconds": seconds,
        "left_pending": left,
        "summary": (
            [""] + [line for line in out.getvalue().splitlines() if line.startswith("Pushed")]
        )[-1],
        "error": error,
        "stderr": err.getvalue().splitlines()[:5],
        "rows": list(Customer.objects.values_list("stripe_id", "email", "name", "sync_status")),
    }


def run_backlog_child(
    backend: str, db_name: str, api_base: str, phase: str, rows: int, parallel: int = 1
) -> dict[str, Any]:
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", "--phase", phase,
        "--backend", backend, "--db", db_name, "--api-base", api_base,
        "--backlog", str(rows), "--parallel", str(parallel),
    ]  # fmt: skip
    timeout = CHILD_TIMEOUT + rows / 10  # 10 pushes/s at worst (paced: 24)
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )
    for line in run.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(
        f"{backend} {phase} failed (exit {run.returncode}):\n{run.stdout[-2000:]}"
        f"{run.stderr[-4000:]}"
    )


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """The name of an empty database of ``backend``, dropped afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        if backend == "sqlite":
            yield os.path.join(tmp, "push.sqlite3")
            return
        _pg(
            f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)',
            f'CREATE DATABASE "{PG_BENCH_DB}"',
        )
        try:
            yield PG_BENCH_DB
        finally:
            _pg(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')


def measure_backlog(
    backend: str, emulator: Any, rows: int, parallel: int, celery: tuple[int, int] | None = None
) -> dict[str, Any]:
    """One drain of ``rows`` pending rows (half edits, half new) in ``parallel`` streams, or
    (``celery``: workers, threads each) by the sweep under Celery (``push_celery``)."""
    emulator.reset()
    edited = rows // 2
    emulator.seed(edited)
    with fresh_database(backend) as db:
        prepared = run_backlog_child(backend, db, emulator.url, "prepare", rows)
        if prepared["pending"] != rows:
            raise RuntimeError(f"{backend}: {prepared['pending']} rows pending, not {rows}")
        # The preparing process's own requests (it pulled the customers to edit) fall in the
        # emulator's one-second window; the drain, another process with a bucket of its own,
        # starts after that window has passed, as a sweep would.
        time.sleep(1.1)
        logged, refused = len(emulator.requests), emulator.count_rate_limited()
        with collector_paused():
            if celery is None:
                result = run_backlog_child(backend, db, emulator.url, "drain", rows, parallel)
            else:
                result = push_celery.drain_with_celery(db, emulator.url, API_KEY, rows, *celery)
    sent = emulator.requests[logged:]
    taken = [r for r in sent if r.method == "POST" and r.status == 200]
    creates = Counter(r.params.get("email") for r in taken if r.path == "/v1/customers")
    updates = Counter(r.path for r in taken if r.path != "/v1/customers")
    lost = sum(
        1
        for stripe_id, _email, name, status in result["rows"]
        if status != "synced" or emulator.customers.get(stripe_id, {}).get("name") != name
    )
    duplicated = sum(1 for counter in (creates, updates) for n in counter.values() if n > 1)
    return {
        "backend": backend,
        "n": rows,
        "edits": edited,
        "parallel": parallel if celery is None else f"Celery {celery[0]} x {celery[1]}",
        "seconds": result["seconds"],
        "summary": result["summary"],
        "error": result["error"],
        "stderr": result["stderr"],
        "writes": sum(creates.values()) + sum(updates.values()),
        "requests": len(sent),
        "rate_limited": emulator.count_rate_limited() - refused,
        "max_creates_per_s": emulator.max_in_window(CREATE),
        "max_updates_per_s": emulator.max_in_window(UPDATE),
        "left_pending": result["left_pending"],
        "lost": lost,
        "duplicated": duplicated,
    }


def backlog_report(
    results: list[dict[str, Any]], skipped: dict[str, str], args: argparse.Namespace,
    seconds: float,
) -> str:  # fmt: skip
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python benchmarks/push.py" + (f" {' '.join(args.argv)}" if args.argv else "")
    lines = [
        f"## Push benchmark: a backlog at Stripe's pace ({now})",
        "",
        f"`{command}` at {source_state()}, on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {_versions()}. Emulator in the parent process: "
        f"{args.latency_ms:g} ms a request, 25 requests/s per key and per endpoint (strict "
        "one-second windows, 429 beyond); the client at its default pace (95%), MAX_RETRIES 0 "
        "(a 429 or any failure shows). N pending rows: half edits of customers in Stripe, half "
        "new rows. Timed: `manage.py stripe_customers push --pending --parallel K` in a child "
        "process; a `Celery W x T` row: the outbox sweep (`push_pending_task`) under Celery, "
        "W worker processes of T threads on Redis sharing one limiter, timed until no row is "
        f"pending. Whole run {seconds:.0f} s; 1-minute load average {args.load_before:.2f} "
        f"before, {os.getloadavg()[0]:.2f} after. {COLLECTOR_NOTE}.",
        "",
        "| database | K streams | N | seconds | pushes/s | share of 25/s | 429s | most creates, "
        "updates in 1 s | left pending | lost | duplicated |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        rate = r["writes"] / r["seconds"]
        lines.append(
            f"| {r['backend']} | {r['parallel']} | {r['n']:,} | {r['seconds']:.1f} | {rate:.1f} "
            f"| {rate / WRITE_LIMIT:.0%} | {r['rate_limited']} | {r['max_creates_per_s']}, "
            f"{r['max_updates_per_s']} | {r['left_pending']} | {r['lost']} | {r['duplicated']} |"
        )
    lines += [
        "",
        "pushes/s: writes Stripe took (creates and updates answered 200) ÷ the drain's wall "
        "time, which includes the command's query of the pending rows. share: of Stripe's "
        "test-mode limit, 25 requests/s per key (the client paces at 95%: 23.75). left "
        "pending: rows the timed drain left pending (Stripe did not take them: a 429 with "
        "MAX_RETRIES 0), their request recorded; an untimed second `push --pending` (what the "
        "next sweep does) then resends them. lost: after it, rows not synced, or whose "
        "customer in Stripe lacks the row's name. duplicated: new rows created more than "
        "once, edits taken more than once (the emulator's log, both passes). A Celery row's "
        "429s are retried by the push's task, after its backoff.",
        "",
        "Checks:",
    ]
    for r in results:
        ok = r["lost"] == 0 and r["duplicated"] == 0
        verdict = "PASS" if ok else "FAIL"
        lines.append(
            f"- {verdict} {r['backend']}, K={r['parallel']}: {r['summary'] or r['error']} "
            f"({r['lost']} lost, {r['duplicated']} duplicated; {r['rate_limited']} 429s, "
            f"{r['left_pending']} left pending for the next sweep)"
            + (f"; stderr: {r['stderr']}" if r["stderr"] else "")
        )
    for backend, why in skipped.items():
        lines += ["", f"{backend}: skipped ({why})."]
    return "\n".join(lines) + "\n"


def backlog_main(args: argparse.Namespace) -> int:
    from django_stripe_customers.stripe.limits import ENDPOINT_RATE
    from django_stripe_customers.testing import StripeEmulator

    started = time.monotonic()
    args.load_before = os.getloadavg()[0]
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    limits = {
        "latency_ms": args.latency_ms,
        "rate_limit": WRITE_LIMIT,
        "endpoint_rate_limit": ENDPOINT_RATE,
        "strict_window": True,
    }
    with StripeEmulator(api_key=API_KEY, max_logged_requests=10_000_000, **limits) as emulator:
        for backend in args.backends:
            if backend == "postgres" and (why := postgres_available()):
                print(f"postgres: skipped ({why})", flush=True)
                skipped[backend] = f"PostgreSQL not available: {why}"
                continue
            for parallel in args.streams:
                rows = min(args.backlog, args.baseline) if parallel == 1 else args.backlog
                print(f"{backend}: draining {rows:,} rows in {parallel} streams ...", flush=True)
                results.append(measure_backlog(backend, emulator, rows, parallel))
            if backend == "postgres" and args.celery_workers:
                if why := push_celery.broker_problem():
                    skipped["Celery"] = f"the Redis broker does not answer: {why}"
                    continue
                shape = (args.celery_workers, args.celery_threads)
                print(f"{backend}: draining {args.backlog:,} rows with Celery {shape} ...")
                results.append(measure_backlog(backend, emulator, args.backlog, 0, shape))
    text = backlog_report(results, skipped, args, time.monotonic() - started)
    print()
    print(text, end="")
    if not args.no_write:
        BACKLOG_RESULTS.parent.mkdir(parents=True, exist_ok=True)
        BACKLOG_RESULTS.write_text(text)
        print(f"\n(written to {BACKLOG_RESULTS.relative_to(ROOT)})")
    return 1 if "\n- FAIL " in text else 0


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
    parser.add_argument(
        "--celery-workers",
        type=int,
        default=2,
        metavar="W",
        help="(c) on PostgreSQL, also a drain by W Celery workers (2; 0: none)",
    )
    parser.add_argument(
        "--celery-threads", type=int, default=8, metavar="T", help="(c) threads per worker (8)"
    )
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.name}")
    parser.add_argument(
        "--backlog", type=int, default=0, metavar="N", help="(c) instead: drain N pending rows"
    )
    parser.add_argument("--latency-ms", type=float, default=300.0, help="(c): per request")
    parser.add_argument("--streams", default="1,8,16", help="(c): K of --parallel, comma-separated")
    parser.add_argument("--baseline", type=int, default=100, help="(c): rows drained with K=1")
    parser.add_argument("--phase", choices=("prepare", "drain"), help=argparse.SUPPRESS)
    parser.add_argument("--parallel", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--api-base", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.bursts = [int(k) for k in str(args.bursts).split(",") if k]
    args.backends = [b for b in args.backends.split(",") if b]
    args.streams = [int(k) for k in str(args.streams).split(",") if k]
    if args.backlog < 0 or not args.streams or min(args.streams) < 1:
        parser.error("--backlog must be positive and every --streams K at least 1")
    if any(b not in ("sqlite", "postgres") for b in args.backends):
        parser.error("--backends takes sqlite and/or postgres")
    if args.customers < 1 or args.repeats < 1 or not args.bursts or min(args.bursts) < 1:
        parser.error("--customers, --repeats and every burst size must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = backlog_child(args) if args.phase else child(args)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    if args.backlog:
        return backlog_main(args)

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
