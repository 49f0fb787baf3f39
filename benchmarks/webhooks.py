"""The webhook endpoint under gunicorn: events/s and p50/p90/p99 latency.

    .venv/bin/python benchmarks/webhooks.py                      # 2,000 events a row, both DBs
    .venv/bin/python benchmarks/webhooks.py --quick              # 300 events a row, smoke run
    .venv/bin/python benchmarks/webhooks.py --events 5000 --backends sqlite
    .venv/bin/python benchmarks/webhooks.py --issue22            # issue 22's rows (~3 minutes)

What runs, all on 127.0.0.1:

- gunicorn with ``--workers`` workers (1 by default) serving ``stripe/webhook/``
  (``benchmarks/settings_webhooks.py``, the app's ``include("django_stripe_customers.urls")``
  under ``stripe/``), either ``sync`` workers or ``gthread`` workers with 4 threads each, on a
  free port. gunicorn is installed into
  this venv with pip when it is missing (it is not one of our dependencies).
- A scratch database: a migrated SQLite file in a temp dir, and PostgreSQL at
  127.0.0.1:5432 (user ``postgres``, database ``bench_webhooks``, dropped at the end) when it
  answers. Both tables are emptied before each server starts.
- Two ways of processing:
  ``inline``: Celery eager, so ``process_webhook_event_task`` applies the event to its customer
  row inside the request (after the event's row commits), what a project without workers gets;
  ``enqueue``: a real Redis broker (127.0.0.1:6379 db 14, a queue unique to the run, no worker
  consuming it), so the endpoint verifies, stores the event and enqueues its task: the
  production shape of "answer 200 fast". The queue is deleted at the end.
- A second process (this script with ``--client``) sends signed ``customer.updated`` events
  (unique ids; customers from a pool of ``--pool``, 200; Stripe's pretty-printed JSON, ~2.1 KB
  each, the customer object rendered by our emulator's ``objects.render``; ``created`` and the
  signature stamped when the event is sent, so an inline row applies a customer's events in
  order as long as they are sent at least a second apart: ``--pool`` / events/s) over
  ``http.client`` keep-alive connections (gunicorn's sync worker closes each connection; gthread
  keeps them), one connection at a time (``clients 1``, sync servers only, unless
  ``--no-single``) and from ``--concurrency`` threads (``clients 4`` by default; a list such as
  ``8,16`` gives a row each). Each row stops after ``--events`` events or ``--duration``
  seconds, whichever comes first; the duration of a row shrinks when the whole run would
  otherwise exceed ``--budget`` seconds (220 by default, so a default run stays under 4 minutes
  on a busy 2-core machine; such rows say so). Before the measured rows, a warm-up sends one
  event per pool customer from 4 threads (so inline rows update existing customers, as in steady
  state).
- After each row: every answer must be 200 (not a duplicate), the database must hold exactly
  the row's events, each once, and Redis one message per stored event (enqueue); inline, an
  event stored but not applied is reported as a finding. Then 200 duplicates of already stored
  events (200, not stored again) and 200 events signed with a wrong secret (400, nothing
  stored), one at a time.
- Django's ``CONN_MAX_AGE`` is 600 (persistent connections, ``--conn-max-age``). Two
  comparison rows follow the main matrix (``--no-variants`` skips them): PostgreSQL with
  ``CONN_MAX_AGE=0``, Django's default (a new connection per request; at most 500 events), and
  SQLite inline on gthread with ``OPTIONS["transaction_mode"] = "IMMEDIATE"`` (Django 5.1+; at
  most 1,000 events), the cure for the ``database is locked`` failures of the row before it.

``--issue22``: issue 22's "done when" rows, ``--backends postgres --processing enqueue --servers
sync,gthread --workers 4 --concurrency 8,16 --no-single --no-variants --events 15000 --duration
20 --pool 1000`` (each row runs 20 s or 15,000 events, whichever comes first: sustained means at
least 20 s or 5,000 events) with ``CONN_MAX_AGE=600``, then one comparison row: PostgreSQL
inline (Celery eager), 4 ``gthread`` workers, 8 clients, 20 s. The report then says, per enqueue
row, whether it meets the targets: >= 300 events/s sustained, p99 < 50 ms, 0 dropped (every
event answered 200, stored exactly once and queued).

Latency is the client's: from sending the request to reading the whole answer, connect time
included when the server closed the connection. ``worker CPU ms/event``: the gunicorn workers'
user+system CPU (``/proc``, all workers summed) over the row ÷ events answered; the database
server's and Redis's CPU are not in it. Client and server share the machine's cores.

Results: a Markdown table on stdout and in ``benchmarks/results/webhooks-latest.md``
(``--issue22``: ``webhooks-workers4.md``; ``--quick`` writes no file unless ``--output`` is
given, so a smoke run never replaces it).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import itertools
import json
import math
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a clean clone: benchmarks.* importable
    sys.path.insert(0, str(ROOT))

from benchmarks.common import source_state  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "webhooks-latest.md"
ISSUE22_RESULTS = ROOT / "benchmarks" / "results" / "webhooks-workers4.md"  # --issue22's
SETTINGS = "benchmarks.settings_webhooks"
WEBHOOK_PATH = "/stripe/webhook/"
SECRET = "whsec_benchWebhooks0123456789abcdefABCDEF"
WRONG_SECRET = "whsec_forgedByAnAttacker0123456789abcdef"
PG_ADMIN_DB = os.environ.get("BENCH_PG_ADMIN_DB", "postgres")
PG_BENCH_DB = "bench_webhooks"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CLIENT_PREFIX = "BENCH_CLIENT "
CREATED_PLACEHOLDER = 1_987_654_321  # an event's "created" until it is sent (10 digits, as now)
EVENT_TABLE = "stripe_customers_webhookevent"
CUSTOMER_TABLE = "stripe_customers_customer"
THREADS = 4  # gthread's threads, and the concurrent clients of the "clients 4" rows
#: Issue 22's targets for its enqueue rows: events/s, p99 ms, and what "sustained" means.
TARGET_PER_SECOND = 300.0
TARGET_P99_MS = 50.0
SUSTAINED_SECONDS = 20.0
SUSTAINED_EVENTS = 5000
ISSUE22_POOL = 1000  # customers: each gets an event every 2+ s at 500 events/s (see run_client)
WARMUP_CLIENTS = 4
#: What the server's log is searched for after each server (counted, first line quoted).
LOG_NEEDLES = ("Traceback", "database is locked", "WORKER TIMEOUT", "Could not enqueue")
#: Whole-run budget bookkeeping (seconds): what a server costs besides its measured rows
#: (start, warm-up, duplicates, forged, stop), what migrating a database costs, and the
#: shortest time limit a row gets however late the run is.
SERVER_OVERHEAD = 3.0
DATABASE_OVERHEAD = 3.0
MIN_ROW_SECONDS = 5.0

INLINE, ENQUEUE = "inline", "enqueue"
SYNC, GTHREAD = "sync", "gthread"


# -- the WSGI app gunicorn serves (``benchmarks.webhooks:wsgi_application()``) ----------------


def wsgi_application() -> Any:
    """Django set up from ``benchmarks.settings_webhooks`` with a Celery app read from it."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django

    django.setup()
    from celery import Celery

    app = Celery("bench_webhooks")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.set_default()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


# -- events ----------------------------------------------------------------------------------


def customer_id(number: int) -> str:
    return f"cus_WhBench{number:06d}"


def event_id(tag: str, index: int) -> str:
    return f"evt_{tag}{index:09d}"


def event_body(event: str, number: int, version: int, created: int) -> bytes:
    """A ``customer.updated`` event as Stripe sends it (2-space indented JSON)."""
    from django_stripe_customers import schema
    from django_stripe_customers.testing import objects

    cid = customer_id(number)
    customer = objects.new_customer(cid, 1_700_000_000 + number * 3600, f"WB{number:06d}")
    address = {
        "city": "Lyon",
        "country": "FR",
        "line1": f"{number} rue de la République",
        "line2": "Bâtiment B, 3e étage",
        "postal_code": "69002",
        "state": None,
    }
    customer.update(
        address=address,
        balance=-100 * (version % 7),
        currency="eur",
        description=f"Customer {number} (benchmark), account manager Jeanne Martin",
        email=f"customer{number}@example.com",
        name=f"Customer Number {number}",
        phone="+33 4 72 00 00 00",
        preferred_locales=["fr-FR", "en"],
        shipping={"address": address, "name": f"Customer Number {number}", "phone": None},
        metadata={
            "account_id": f"acct-{number:08d}",
            "crm_id": f"{number * 7919:010x}",
            "order_count": str(version),
            "plan": "pro",
            "segment": "smb",
        },
        invoice_settings={
            "custom_fields": [{"name": "VAT", "value": f"FR{number:011d}"}],
            "default_payment_method": None,
            "footer": "Thank you for your business.",
            "rendering_options": None,
        },
    )
    payload = {
        "id": event,
        "object": "event",
        "api_version": schema.API_VERSION,
        "created": created,
        "data": {
            "object": objects.render(customer),
            "previous_attributes": {"metadata": {"order_count": str(version - 1)}},
        },
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": f"req_{uuid.uuid4().hex[:14]}", "idempotency_key": str(uuid.uuid4())},
        "type": "customer.updated",
    }
    return json.dumps(payload, indent=2, ensure_ascii=False).encode()


# -- the client process ----------------------------------------------------------------------


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def run_client(spec: dict[str, Any]) -> dict[str, Any]:
    """Send the spec's events and measure each answer; the result is JSON-able."""
    from django_stripe_customers.stripe.webhooks import sign_payload

    prepare_started = time.perf_counter()
    secret = spec["secret"]
    # Bodies are rendered here with a placeholder ``created``; the time is stamped and the body
    # signed when it is sent (as Stripe signs at delivery): a customer's events then carry the
    # seconds they were sent at, and events of one customer in one second with other data
    # would be re-read from the API (``sync/freshness.py``), which the benchmark has not.
    marker = b'"created": %d' % CREATED_PLACEHOLDER
    requests_: list[tuple[bytes, bytes]] = []
    for index in range(spec["first"], spec["first"] + spec["count"]):
        body = event_body(
            event_id(spec["tag"], index), index % spec["pool"], index, CREATED_PLACEHOLDER
        )
        head, found, tail = body.partition(marker)
        if not found or marker in tail:
            raise RuntimeError(f"the event body does not hold {marker!r} exactly once")
        requests_.append((head + b'"created": ', tail))
    prepare_seconds = time.perf_counter() - prepare_started

    expect_status: int = spec["expect_status"]
    expect_marker = (
        None
        if spec["expect_duplicate"] is None
        else (b'"duplicate": true' if spec["expect_duplicate"] else b'"duplicate": false')
    )
    next_index = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    unexpected = 0
    connections = 0
    sent_at: list[tuple[int, int]] = []  # (customer, the second its event was stamped with)

    def worker(deadline: float) -> None:
        nonlocal unexpected, connections
        local_sent: list[tuple[int, int]] = []
        local_latencies: list[float] = []
        local_statuses: Counter[str] = Counter()
        local_errors: list[str] = []
        local_unexpected = 0
        local_connections = 0
        conn: http.client.HTTPConnection | None = None
        while time.perf_counter() < deadline:
            index = next(next_index)
            if index >= len(requests_):
                break
            head, tail = requests_[index]
            now = int(time.time())
            local_sent.append(((spec["first"] + index) % spec["pool"], now))
            body = b"%s%d%s" % (head, now, tail)
            signature = sign_payload(body, secret, now)
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": signature,
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            }
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=60)
                    conn.connect()
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    local_connections += 1
                conn.request("POST", spec["path"], body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                elapsed = time.perf_counter() - started
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                local_errors.append(f"{type(exc).__name__}: {exc}")
                local_statuses["error"] += 1
                local_unexpected += 1
                if conn is not None:
                    conn.close()
                conn = None
                continue
            local_latencies.append(elapsed * 1000)
            local_statuses[str(response.status)] += 1
            if response.status != expect_status or (
                expect_marker is not None and expect_marker not in answer
            ):
                local_unexpected += 1
                if len(local_errors) < 5:
                    local_errors.append(f"{response.status}: {answer[:200]!r}")
        if conn is not None:
            conn.close()
        with lock:
            sent_at.extend(local_sent)
            latencies.extend(local_latencies)
            statuses.update(local_statuses)
            errors.extend(local_errors)
            unexpected += local_unexpected
            connections += local_connections

    cpu_started = time.process_time()
    started = time.perf_counter()
    deadline = started + spec["duration"]
    threads = [
        threading.Thread(target=worker, args=(deadline,)) for _ in range(spec["concurrency"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    same_second = len(sent_at) - len(set(sent_at))
    return {
        "same_second": same_second,
        "requested": spec["count"],
        "done": sum(statuses.values()),
        "seconds": seconds,
        "latencies_ms": latencies,
        "statuses": dict(statuses),
        "unexpected": unexpected,
        "errors": errors[:5],
        "connections": connections,
        "client_cpu_seconds": time.process_time() - cpu_started,
        "prepare_seconds": prepare_seconds,
        "body_bytes": sum(len(head) + 10 + len(tail) for head, tail in requests_)
        / max(1, len(requests_)),
    }


def client_main() -> int:
    spec = json.loads(sys.stdin.read())
    print(CLIENT_PREFIX + json.dumps(run_client(spec)), flush=True)
    return 0


# -- gunicorn --------------------------------------------------------------------------------


def ensure_gunicorn() -> str:
    """gunicorn's version, installing it into this venv with pip when it is missing."""
    if importlib.util.find_spec("gunicorn") is None:
        print(
            "gunicorn is not installed in this venv: installing it with pip "
            "(add it to the dev extras to skip this) ...",
            flush=True,
        )
        install = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        pip = subprocess.run([*install, "gunicorn"], capture_output=True, text=True)
        if pip.returncode != 0:
            print(pip.stdout[-3000:], pip.stderr[-3000:], file=sys.stderr)
            raise RuntimeError(f"pip install gunicorn failed ({pip.returncode})")
        importlib.invalidate_caches()
    from importlib import metadata

    return metadata.version("gunicorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BENCH_", "DJANGO_", "CELERY_", "PYTHONHOME"))
    }
    env["PYTHONPATH"] = str(ROOT)
    env["DJANGO_SETTINGS_MODULE"] = SETTINGS
    env.update(extra)
    return env


class Gunicorn:
    """One gunicorn master + its workers in their own process group, stopped by group."""

    def __init__(
        self, worker_class: str, workers: int, env: dict[str, str], log_path: Path
    ) -> None:
        self.worker_class = worker_class
        self.workers = workers
        self.env = env
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self, timeout: float = 60) -> None:
        self.port = free_port()
        threads = ["--threads", str(THREADS)] if self.worker_class == GTHREAD else []
        command = [
            sys.executable, "-m", "gunicorn",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers),
            "--worker-class", self.worker_class, *threads,
            "--timeout", "120", "--graceful-timeout", "5", "--keep-alive", "5",
            "--log-level", "warning", "--error-logfile", "-",
            "--chdir", str(ROOT),
            "benchmarks.webhooks:wsgi_application()",
        ]  # fmt: skip
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}):\n{self.log()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                try:
                    conn.request("GET", WEBHOOK_PATH)
                    status = conn.getresponse().status
                finally:
                    conn.close()
                if status == 405:  # Django answered: POST only
                    return
                raise RuntimeError(f"GET {WEBHOOK_PATH} answered {status}:\n{self.log()}")
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer within {timeout:.0f}s:\n{self.log()}")

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            return sorted(int(pid) for pid in children.read_text().split())
        except (OSError, ValueError):
            return []

    def worker_cpu(self) -> dict[int, float] | None:
        """User + system CPU of each worker so far, from /proc (None when unavailable or when
        not every worker is up)."""
        pids = self.worker_pids()
        if len(pids) != self.workers:
            return None
        cpu: dict[int, float] = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            cpu[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return cpu

    @staticmethod
    def cpu_between(
        before: dict[int, float] | None, after: dict[int, float] | None
    ) -> float | None:
        """The workers' CPU between two readings; None when a worker was replaced meanwhile."""
        if before is None or after is None or before.keys() != after.keys():
            return None
        return sum(after[pid] - before[pid] for pid in after)

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if process is not None:  # a worker that outlived its master: the group, once more
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        self.process = None


# -- databases -------------------------------------------------------------------------------


def _pg_connect(dbname: str) -> Any:
    import psycopg

    return psycopg.connect(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "5432"),
        dbname=dbname,
        user=os.environ.get("PGUSER", "postgres"),
        password=os.environ.get("PGPASSWORD", ""),
        connect_timeout=3,
        autocommit=True,
    )


def postgres_problem() -> str | None:
    try:
        _pg_connect(PG_ADMIN_DB).close()
    except Exception as exc:
        return " ".join(f"{type(exc).__name__}: {exc}".split())
    return None


class Database:
    """The scratch database of one backend: created and migrated once, emptied per server."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.path = workdir / "webhooks.sqlite3"
        self.created = False
        self.migrate_seconds = 0.0

    def env(self) -> dict[str, str]:
        if self.backend == "sqlite":
            return {"BENCH_DB": "sqlite", "BENCH_SQLITE_PATH": str(self.path)}
        return {"BENCH_DB": "postgres", "BENCH_PG_NAME": PG_BENCH_DB}

    def create(self) -> None:
        if self.backend == "postgres":
            with _pg_connect(PG_ADMIN_DB) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{PG_BENCH_DB}"')
        self.created = True
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "django", "migrate", "-v0", f"--settings={SETTINGS}"],
            env=child_env(self.env()),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if run.returncode != 0:
            raise RuntimeError(f"migrate failed on {self.backend}:\n{run.stderr[-3000:]}")
        self.migrate_seconds = time.monotonic() - started

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.path, timeout=30)
            try:
                rows = conn.execute(sql, params).fetchall()
                conn.commit()
            finally:
                conn.close()
            return rows
        with _pg_connect(PG_BENCH_DB) as conn:
            cursor = conn.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []

    def empty(self) -> None:
        for table in (EVENT_TABLE, CUSTOMER_TABLE):
            self._execute(f"DELETE FROM {table}")
        if self.backend == "sqlite":
            self._execute("VACUUM")
        else:
            self._execute(f"VACUUM ANALYZE {EVENT_TABLE}")
            self._execute(f"VACUUM ANALYZE {CUSTOMER_TABLE}")

    def statuses(self, tag: str) -> Counter[str]:
        rows = self._execute(
            f"SELECT status, COUNT(*) FROM {EVENT_TABLE} WHERE event_id LIKE ? GROUP BY status",
            (f"evt_{tag}%",),
        )
        return Counter({status: count for status, count in rows})

    def errors(self, tag: str, limit: int = 3) -> list[tuple[str, int]]:
        """The commonest ``error`` texts of the tag's events not applied, with their counts."""
        rows = self._execute(
            f"SELECT error, COUNT(*) FROM {EVENT_TABLE} WHERE event_id LIKE ? "
            "AND status NOT IN ('processed', 'stale') GROUP BY error ORDER BY COUNT(*) DESC "
            f"LIMIT {int(limit)}",
            (f"evt_{tag}%",),
        )
        return [(str(error), int(count)) for error, count in rows]

    def distinct_events(self, tag: str) -> int:
        rows = self._execute(
            f"SELECT COUNT(DISTINCT event_id) FROM {EVENT_TABLE} WHERE event_id LIKE ?",
            (f"evt_{tag}%",),
        )
        return int(rows[0][0])

    def customers(self) -> int:
        return int(self._execute(f"SELECT COUNT(*) FROM {CUSTOMER_TABLE}")[0][0])

    def drop(self) -> None:
        if self.backend == "postgres" and self.created:
            with _pg_connect(PG_ADMIN_DB) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')


# -- Redis -----------------------------------------------------------------------------------


class RedisQueue:
    """The run's own queue on the benchmark's Redis db; deleted (with its bindings) at the end."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=5)
        self.queue = f"bench-webhooks-{uuid.uuid4().hex[:10]}"

    def problem(self) -> str | None:
        try:
            self.client.ping()
        except Exception as exc:
            return " ".join(f"{type(exc).__name__}: {exc}".split())
        return None

    def _keys(self) -> list[bytes]:
        return list(self.client.scan_iter(match=f"*{self.queue}*", count=1000))

    def depth(self) -> int:
        """Messages waiting in the queue (every priority key kombu may use)."""
        total = 0
        for key in self._keys():
            if self.client.type(key) == b"list":
                total += int(self.client.llen(key))
        return total

    def flush(self) -> int:
        """Delete the queue, its priority lists and its exchange bindings; returns keys deleted."""
        deleted = 0
        keys = self._keys()
        if keys:
            deleted += int(self.client.delete(*keys))
        for key in self.client.scan_iter(match="_kombu.binding.*", count=1000):
            members = [m for m in self.client.smembers(key) if self.queue.encode() in m]
            if members:
                self.client.srem(key, *members)
                if not self.client.scard(key):
                    deleted += int(self.client.delete(key))
        return deleted


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Config:
    """One gunicorn server: what it runs on, and the rows measured against it."""

    backend: str
    processing: str
    server: str
    clients: tuple[int, ...]
    events: int
    extras: int
    conn_max_age: int
    workers: int = 1
    sqlite_transaction_mode: str = ""  # "" is Django's default (deferred)
    variant: str = ""  # shown after the database's name ("" for the main rows)

    def guess_seconds(self, duration: float) -> float:
        """A guess of one events row's duration, for sharing the run's budget between rows
        (measured on a busy 2-core machine with 1 worker: ~9 ms an event inline, ~4 ms
        enqueued), at most the rows' ``duration``."""
        return min(duration, self.events * (0.009 if self.processing == INLINE else 0.004))

    @property
    def label(self) -> str:
        server = self.server if self.workers == 1 else f"{self.workers}x{self.server}"
        return "/".join(
            [self.backend, self.processing, server] + ([self.variant] if self.variant else [])
        )


@dataclass
class Row:
    config: Config
    kind: str  # "events", "duplicates", "forged"
    clients: int
    requested: int
    done: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    unexpected: int = 0
    errors: list[str] = field(default_factory=list)
    worker_cpu_seconds: float | None = None
    client_cpu_seconds: float = 0.0
    connections: int = 0
    body_bytes: float = 0.0
    stored: Counter[str] = field(default_factory=Counter)
    queued: int | None = None
    duplicated: int = 0  # stored rows beyond one per event id
    same_second: int = 0  # events stamped with the same second as another of their customer
    duration_limit: float = 0.0
    problems: list[str] = field(default_factory=list)  # the harness's checks failed
    findings: list[str] = field(default_factory=list)  # the endpoint misbehaved (reported)

    @property
    def per_second(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def pct(self, fraction: float) -> float:
        return percentile(sorted(self.latencies_ms), fraction)

    @property
    def dropped(self) -> int:
        """Events sent but not answered 200, not stored once, or (enqueue) not queued."""
        stored = sum(self.stored.values())
        missing = [self.unexpected, self.done - stored, self.duplicated]
        if self.queued is not None:
            missing.append(self.done - self.queued)
        return max(0, *missing)

    @property
    def time_limited(self) -> bool:
        """Stopped by its duration limit before sending every event (not a failure)."""
        return self.done < self.requested and self.seconds >= self.duration_limit


def run_client_process(spec: dict[str, Any]) -> dict[str, Any]:
    """One client process (this script with ``--client``), in its own process group."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--client"],
        env=child_env({}),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(json.dumps(spec), timeout=spec["duration"] + 120)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    for line in out.splitlines():
        if line.startswith(CLIENT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(CLIENT_PREFIX) :])
            return result
    raise RuntimeError(f"the client failed ({process.returncode}):\n{err[-3000:]}")


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.warmups: list[str] = []
        self.tags = (f"{uuid.uuid4().hex[:4]}{n:02d}" for n in itertools.count())
        self.redis: RedisQueue | None = None
        self.deadline = 0.0  # monotonic; 0: no whole-run budget
        self.expected: list[float] = []  # guessed seconds of each events row not yet run
        self.servers_left = 0  # servers not yet started
        self.databases_left = 0  # databases not yet migrated
        self.failures: list[str] = []  # what went wrong outside the rows (server, warm-up)

    def row_duration(self) -> float:
        """The next events row's time limit: ``--duration``, or less when the run's budget
        runs short: the time left, shared by the rows left in proportion to their guessed
        durations (rows faster than guessed leave more to the next ones)."""
        expected = self.expected.pop(0) if self.expected else 1.0
        if not self.deadline:
            return float(self.args.duration)
        reserve = (
            SERVER_OVERHEAD * (self.servers_left + 1) + DATABASE_OVERHEAD * self.databases_left
        )
        left = self.deadline - time.monotonic() - reserve
        slot = left * expected / (expected + sum(self.expected))
        return max(MIN_ROW_SECONDS, min(float(self.args.duration), slot))

    def send(
        self,
        server: Gunicorn,
        config: Config,
        kind: str,
        clients: int,
        count: int,
        tag: str,
        duration: float | None = None,
    ) -> Row:
        duration = float(self.args.duration) if duration is None else duration
        spec = {
            "port": server.port,
            "path": WEBHOOK_PATH,
            "secret": WRONG_SECRET if kind == "forged" else SECRET,
            "tag": tag,
            "first": 0,
            "count": count,
            "pool": self.args.pool,
            "concurrency": clients,
            "duration": duration,
            "expect_status": 400 if kind == "forged" else 200,
            "expect_duplicate": {"events": False, "duplicates": True}.get(kind),
        }
        cpu_before = server.worker_cpu()
        result = run_client_process(spec)
        cpu_after = server.worker_cpu()
        row = Row(config, kind, clients, count, duration_limit=duration)
        row.done = result["done"]
        row.seconds = result["seconds"]
        row.latencies_ms = result["latencies_ms"]
        row.statuses = result["statuses"]
        row.unexpected = result["unexpected"]
        row.errors = result["errors"]
        row.client_cpu_seconds = result["client_cpu_seconds"]
        row.same_second = result["same_second"]
        row.connections = result["connections"]
        row.body_bytes = result["body_bytes"]
        row.worker_cpu_seconds = Gunicorn.cpu_between(cpu_before, cpu_after)
        if row.unexpected:
            row.problems.append(
                f"{row.unexpected} unexpected answers {row.statuses}: {'; '.join(row.errors[:3])}"
            )
        if row.done < count and not row.time_limited:
            row.problems.append(f"{row.done} of {count} requests answered")
        return row

    def check_stored(self, db: Database, row: Row, tag: str, expected: int) -> None:
        """The database holds exactly ``expected`` events of ``tag``; inline, all applied."""
        row.stored = db.statuses(tag)
        total = sum(row.stored.values())
        if total != expected:
            row.problems.append(f"{total} events stored, expected {expected}")
        row.duplicated = total - db.distinct_events(tag)
        if row.duplicated:
            row.problems.append(f"{row.duplicated} events stored more than once")
        if row.config.processing == INLINE and row.kind == "events":
            applied = row.stored["processed"] + row.stored["stale"]
            if applied != total:
                other = {k: v for k, v in row.stored.items() if k not in ("processed", "stale")}
                errors = "; ".join(
                    f"{count:,} x `{' '.join(error.split())[:300]}`"
                    for error, count in db.errors(tag)
                )
                row.findings.append(
                    f"answered 200 but {total - applied:,} of {total:,} not applied: {other}"
                    + (f" (error: {errors})" if errors else "")
                    + (
                        f"; {row.same_second:,} events had the same second as another event "
                        "of their customer (re-read from the API, which the benchmark does not "
                        "serve: raise --pool)"
                        if row.same_second
                        else ""
                    )
                )

    def serve(self, db: Database, config: Config) -> None:
        """One gunicorn server: warm-up, the measured rows, duplicates, forged, all checked."""
        db.empty()
        env = child_env(
            {
                **db.env(),
                "BENCH_WEBHOOK_SECRET": SECRET,
                "BENCH_CONN_MAX_AGE": str(config.conn_max_age),
            }
        )
        if config.sqlite_transaction_mode:
            env["BENCH_SQLITE_TRANSACTION_MODE"] = config.sqlite_transaction_mode
        redis_queue = self.redis if config.processing == ENQUEUE else None
        if redis_queue is not None:
            env["BENCH_CELERY_BROKER"] = redis_queue.url
            env["BENCH_CELERY_QUEUE"] = redis_queue.queue
        log_path = self.workdir / f"gunicorn-{config.label.replace('/', '-')}.log"
        server = Gunicorn(config.server, config.workers, env, log_path)
        queued_at_start = redis_queue.depth() if redis_queue is not None else 0
        stored = rows_run = 0
        self.servers_left -= 1
        try:
            server.start()
            # warm-up: one event per pool customer (inline: creates them); not in the tables
            warm = self.send(
                server, config, "events", WARMUP_CLIENTS, self.args.pool, next(self.tags)
            )
            stored += warm.done
            self.warmups.append(
                f"{config.label}: {warm.done} events in {warm.seconds:.2f} s "
                f"(p50 {warm.pct(0.5):.1f} ms, max {max(warm.latencies_ms or [0]):.0f} ms)"
                + (f"; PROBLEM: {'; '.join(warm.problems)}" if warm.problems else "")
            )
            if warm.problems:
                self.failures.append(f"{config.label} warm-up: {'; '.join(warm.problems)}")
            measured_tag, measured_done = None, 0
            for clients in config.clients:
                tag = next(self.tags)
                queued_before = redis_queue.depth() if redis_queue is not None else 0
                # from the next whole second: no event of this row has the second of an
                # earlier row's event of its customer (inline would re-read those)
                time.sleep(1.0 - time.time() % 1.0)
                duration = self.row_duration()
                rows_run += 1
                row = self.send(server, config, "events", clients, config.events, tag, duration)
                self.check_stored(db, row, tag, row.done)
                stored += row.done
                if redis_queue is not None:
                    row.queued = redis_queue.depth() - queued_before
                    if row.queued != row.done:
                        row.problems.append(f"{row.queued} messages queued, expected {row.done}")
                self.rows.append(row)
                self.report(row)
                if measured_tag is None:
                    measured_tag, measured_done = tag, row.done
            extras = min(config.extras, measured_done)  # duplicates of events stored above
            if measured_tag is not None and extras:
                before = sum(db.statuses(measured_tag).values())
                dup = self.send(server, config, "duplicates", 1, extras, measured_tag)
                self.check_stored(db, dup, measured_tag, before)  # nothing new stored
                self.rows.append(dup)
                self.report(dup)
                tag = next(self.tags)
                forged = self.send(server, config, "forged", 1, extras, tag)
                self.check_stored(db, forged, tag, 0)
                self.rows.append(forged)
                self.report(forged)
            if redis_queue is not None:
                queued = redis_queue.depth() - queued_at_start
                if queued != stored:
                    self.notes.append(f"{config.label}: {queued} messages queued, {stored} stored")
            if config.processing == INLINE and db.customers() != self.args.pool:
                self.notes.append(
                    f"{config.label}: {db.customers()} customer rows, not {self.args.pool}"
                )
        finally:
            server.stop()
            self.scan_log(config, server.log(2_000_000))
            del self.expected[: len(config.clients) - rows_run]  # rows a failure skipped

    def scan_log(self, config: Config, log: str) -> None:
        """Errors the server logged: counted, with the first line of each kind as evidence."""
        lines = log.splitlines()
        reported: set[int] = set()  # a line is quoted under the first needle it contains
        for needle in LOG_NEEDLES:
            hits = [n for n, line in enumerate(lines) if needle in line and n not in reported]
            reported.update(hits)
            if hits:
                self.notes.append(
                    f"{config.label}: the gunicorn log has {len(hits):,} lines with "
                    f"{needle!r}, e.g. `` {lines[hits[0]].strip()[:240]} ``"
                )

    def report(self, row: Row) -> None:
        problems = [f"FAILED: {problem}" for problem in row.problems]
        state = "; ".join([*problems, *row.findings]) or "ok"
        cpu = (
            f", worker CPU {row.worker_cpu_seconds / max(1, row.done) * 1000:.2f} ms/req"
            if row.worker_cpu_seconds is not None
            else ""
        )
        print(
            f"  {row.config.label:38} {row.kind:10} c={row.clients} "
            f"{row.done:>5} in {row.seconds:6.2f} s"
            f"{' (time limit)' if row.time_limited else ''} = {row.per_second:6.0f}/s  "
            f"p50 {row.pct(0.5):6.2f}  p90 {row.pct(0.9):6.2f}  p99 {row.pct(0.99):6.2f} ms"
            f"{cpu}  {state}",
            flush=True,
        )


# -- the report ------------------------------------------------------------------------------


DB_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
PROCESSING_NAMES = {INLINE: "inline (Celery eager)", ENQUEUE: "enqueue (Redis)"}
SERVER_NAMES = {SYNC: "sync", GTHREAD: f"gthread, {THREADS} threads"}


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _cpu(row: Row) -> str:
    if row.worker_cpu_seconds is None or not row.done:
        return "-"
    return f"{row.worker_cpu_seconds / row.done * 1000:.2f}"


def _events(row: Row) -> str:
    if row.time_limited:
        return f"{row.done:,} (time limit {row.duration_limit:.0f} s)"
    return f"{row.done:,}"


def _server(config: Config) -> str:
    name = SERVER_NAMES[config.server]
    return name if config.workers == 1 else f"{config.workers} x {name}"


def _database(config: Config) -> str:
    name = DB_NAMES[config.backend]
    return f"{name}, {config.variant}" if config.variant else name


def events_table(rows: list[Row]) -> str:
    lines = [
        "| database | processing | gunicorn worker | clients | events | seconds | events/s "
        "| p50 ms | p90 ms | p99 ms | max ms | worker CPU ms/event | checks |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        if row.kind != "events":
            continue
        if row.problems:
            check = "**FAILED: " + "; ".join(row.problems) + "**"
        else:
            after = (
                f"{row.stored['processed']:,} processed"
                if row.config.processing == INLINE
                else f"{row.queued or 0:,} queued"
            )
            check = f"all 200, {sum(row.stored.values()):,} stored, {after}"
        if row.findings:
            check += "; **" + "; ".join(row.findings) + "**"
        config = row.config
        lines.append(
            f"| {_database(config)} | {PROCESSING_NAMES[config.processing]} "
            f"| {_server(config)} | {row.clients} | {_events(row)} | {row.seconds:.2f} "
            f"| {row.per_second:,.0f} | {_ms(row.pct(0.5))} | {_ms(row.pct(0.9))} "
            f"| {_ms(row.pct(0.99))} | {_ms(max(row.latencies_ms or [math.nan]))} "
            f"| {_cpu(row)} | {check} |"
        )
    return "\n".join(lines)


def extras_table(rows: list[Row]) -> str:
    lines = [
        "| database | processing | gunicorn worker | request | n | p50 ms | p90 ms | p99 ms "
        "| worker CPU ms/request | answers |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        if row.kind == "events":
            continue
        if row.problems:
            answers = "**FAILED: " + "; ".join(row.problems) + "**"
        else:
            answers = ", ".join(f"{n:,} x {status}" for status, n in sorted(row.statuses.items()))
            answers += ", none stored again" if row.kind == "duplicates" else ", none stored"
        kind = "duplicate" if row.kind == "duplicates" else "forged signature"
        config = row.config
        lines.append(
            f"| {_database(config)} | {PROCESSING_NAMES[config.processing]} "
            f"| {_server(config)} | {kind} | {row.done:,} | {_ms(row.pct(0.5))} "
            f"| {_ms(row.pct(0.9))} | {_ms(row.pct(0.99))} | {_cpu(row)} | {answers} |"
        )
    return "\n".join(lines)


def sustained(row: Row) -> bool:
    return row.seconds >= SUSTAINED_SECONDS or row.done >= SUSTAINED_EVENTS


def targets_table(rows: list[Row]) -> str:
    """Issue 22's targets, per enqueue events row: throughput, p99, nothing dropped."""
    lines = [
        f"| gunicorn worker | clients | sustained (>= {SUSTAINED_SECONDS:.0f} s or "
        f"{SUSTAINED_EVENTS:,} events) | >= {TARGET_PER_SECOND:.0f} events/s "
        f"| p99 < {TARGET_P99_MS:.0f} ms | 0 dropped | all met |",
        "| --- | ---: | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row.kind != "events" or row.config.processing != ENQUEUE:
            continue
        checks = [
            (sustained(row), f"{row.seconds:.1f} s, {row.done:,} events"),
            (row.per_second >= TARGET_PER_SECOND, f"{row.per_second:,.0f}/s"),
            (row.pct(0.99) < TARGET_P99_MS, f"{_ms(row.pct(0.99))} ms"),
            (row.dropped == 0 and not row.problems, f"{row.dropped:,} dropped"),
        ]
        cells = [f"{'pass' if ok else '**FAIL**'} ({text})" for ok, text in checks]
        verdict = "yes" if all(ok for ok, _ in checks) else "**no**"
        lines.append(f"| {_server(row.config)} | {row.clients} | {' | '.join(cells)} | {verdict} |")
    return "\n".join(lines)


def render(bench: Bench, args: argparse.Namespace, elapsed: float, versions: dict[str, str]) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    before = ", ".join(f"{value:.2f}" for value in args.load_at_start)
    events = [row for row in bench.rows if row.kind == "events"]
    body = max((row.body_bytes for row in events), default=0)
    lines = [
        f"## Webhook endpoint benchmark ({stamp})",
        "",
        f"`{' '.join(['python', 'benchmarks/webhooks.py', *sys.argv[1:]])}` at {source_state()}, "
        f"on {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs "
        f"(load average {before} at the start; {load} at the end, mostly this run's own), "
        f"Python {platform.python_version()}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        + f". Whole run {elapsed:.0f} s.",
        "",
        f"gunicorn with {args.workers} worker{'s' if args.workers != 1 else ''} on 127.0.0.1 "
        f"(`--workers {args.workers}`, `--keep-alive 5`, gthread: `--threads {THREADS}` each); "
        "the client is another process on the same "
        f"machine (`http.client`, keep-alive), sending signed `customer.updated` events of "
        f"~{body:,.0f} bytes for {args.pool} customers, at most {args.events:,} events or "
        f"{args.duration:.0f} s a row (less when the run's {args.budget:.0f} s budget runs short; "
        f"such rows show their time limit). Django `CONN_MAX_AGE={args.conn_max_age}` (persistent "
        "database connections) unless the database column says otherwise.",
        "",
        events_table(bench.rows),
        "",
    ]
    if args.issue22:
        lines += [
            "Issue 22's targets, for the enqueue rows (dropped: sent but not answered 200, "
            "not stored exactly once, or not queued):",
            "",
            targets_table(bench.rows),
            "",
            "Settings these figures assume: PostgreSQL"
            + (f" {versions['PostgreSQL']}" if "PostgreSQL" in versions else "")
            + f" with Django `CONN_MAX_AGE={args.conn_max_age}` (persistent connections: one "
            "per worker thread, kept across requests), gunicorn "
            f"`--workers {args.workers}` (`sync`, or `gthread --threads {THREADS}`), a Celery "
            "broker on Redis (`CELERY_BROKER_URL`, not eager: the endpoint stores the event and "
            "enqueues its task on commit; no worker consumed it during the run), `DEBUG=False`, "
            "`SecurityMiddleware` + `CommonMiddleware`, one API key with one webhook secret, "
            f"on this {os.cpu_count()}-CPU machine with the client, PostgreSQL and Redis on it.",
            "",
        ]
    lines += [
        extras_table(bench.rows),
        "",
        "inline: Celery eager, the event is applied to its customer row inside the request. "
        "enqueue: Redis broker, no worker; the request stores the event and enqueues its task. "
        "Latency: the client's, request sent to answer read (a sync worker closes every "
        "connection, so its rows include a TCP connect). worker CPU: the gunicorn workers' CPU "
        "time (all workers) over the row ÷ requests answered (the database's and Redis's own "
        "CPU not included). checks: every answer 200 and not a duplicate, the database holds "
        "exactly the row's events, each once (inline: all processed), Redis holds one message "
        "per stored event; duplicates answer 200 with `duplicate: true` and store nothing, "
        "forged ones 400.",
        "",
        "Details:",
        *[f"- warm-up {line}" for line in bench.warmups],
    ]
    if events:
        client = max(row.client_cpu_seconds / max(1, row.done) for row in events) * 1000
        lines.append(
            f"- the client process used at most {client:.2f} ms of CPU per event (any row)"
        )
    lines += [f"- note: {note}" for note in bench.notes]
    lines += [f"- **FAILED**: {failure}" for failure in bench.failures]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per row (2000)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per row at most (60)")
    parser.add_argument(
        "--budget",
        type=float,
        default=220.0,
        help="seconds for the whole run: rows get shorter time limits to fit (220; 0: none)",
    )
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument("--processing", default="inline,enqueue", help="inline,enqueue")
    parser.add_argument("--servers", default="sync,gthread", help="sync,gthread")
    parser.add_argument(
        "--concurrency",
        default=str(THREADS),
        help=f"clients of the concurrent rows, a row each: e.g. 8,16 ({THREADS})",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="gunicorn workers (-w) of every server (1)"
    )
    parser.add_argument(
        "--no-single",
        action="store_true",
        help="no one-client row on sync servers (only the --concurrency rows)",
    )
    parser.add_argument("--pool", type=int, default=200, help="distinct customers (200)")
    parser.add_argument(
        "--extras", type=int, default=200, help="duplicates and forged events per server (200)"
    )
    parser.add_argument(
        "--conn-max-age", type=int, default=600, help="Django CONN_MAX_AGE of the servers (600)"
    )
    parser.add_argument(
        "--no-variants",
        action="store_true",
        help="skip the comparison rows (SQLite BEGIN IMMEDIATE, PostgreSQL CONN_MAX_AGE=0)",
    )
    parser.add_argument(
        "--issue22",
        action="store_true",
        help=(
            "issue 22's rows: --backends postgres --processing enqueue --servers sync,gthread "
            "--workers 4 --concurrency 8,16 --no-single --no-variants --events 15000 "
            "--duration 20 --pool 1000, then a PostgreSQL inline row (4 gthread workers, 8 clients)"
        ),
    )
    parser.add_argument("--quick", action="store_true", help="300 events a row: a smoke run")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=(
            f"default {RESULTS.relative_to(ROOT)}, with --issue22 "
            f"{ISSUE22_RESULTS.relative_to(ROOT)} (none with --quick)"
        ),
    )
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.issue22:
        args.backends, args.processing, args.servers = "postgres", ENQUEUE, f"{SYNC},{GTHREAD}"
        args.workers, args.concurrency = 4, "8,16"
        args.no_single = args.no_variants = True
        args.events, args.duration = 15_000, SUSTAINED_SECONDS
        args.pool = max(args.pool, ISSUE22_POOL)
    try:
        args.clients = tuple(int(n) for n in args.concurrency.split(",") if n.strip())
    except ValueError:
        parser.error(f"--concurrency: a comma-separated list of numbers, not {args.concurrency!r}")
    if not args.clients or min(args.clients) < 1 or args.workers < 1:
        parser.error("--concurrency and --workers must be at least 1")
    if args.quick:
        args.events = min(args.events, 300)
        args.extras = min(args.extras, 50)
    return args


def _split(value: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    for item in items:
        if item not in allowed:
            raise SystemExit(f"unknown {what} {item!r} (choose from {', '.join(allowed)})")
    return items


def plan(
    args: argparse.Namespace, backend: str, processings: list[str], servers: list[str]
) -> list[Config]:
    """The servers to run on one database, in order: the main matrix, then the variants."""
    import django

    concurrent: tuple[int, ...] = args.clients
    single = not args.no_single
    configs = [
        Config(
            backend,
            processing,
            server,
            clients=(1, *concurrent) if server == SYNC and single else concurrent,
            events=args.events,
            extras=args.extras,
            conn_max_age=args.conn_max_age,
            workers=args.workers,
        )
        for processing in processings
        for server in servers
    ]
    if args.issue22 and backend == "postgres":  # the comparison row: applied inside the request
        configs.append(
            Config(
                backend,
                INLINE,
                GTHREAD,
                clients=concurrent[:1],
                events=args.events,
                extras=0,
                conn_max_age=args.conn_max_age,
                workers=args.workers,
            )
        )
    if args.no_variants:
        return configs
    if backend == "sqlite" and INLINE in processings and GTHREAD in servers:
        if django.VERSION >= (5, 1):  # OPTIONS["transaction_mode"] is new in Django 5.1
            configs.append(
                Config(
                    backend,
                    INLINE,
                    GTHREAD,
                    clients=concurrent,
                    events=min(args.events, 1000),
                    extras=0,
                    conn_max_age=args.conn_max_age,
                    sqlite_transaction_mode="IMMEDIATE",
                    workers=args.workers,
                    variant='`"transaction_mode": "IMMEDIATE"`',
                )
            )
    if backend == "postgres" and processings and SYNC in servers and args.conn_max_age != 0:
        configs.append(
            Config(
                backend,
                ENQUEUE if ENQUEUE in processings else processings[0],
                SYNC,
                clients=(1,),
                events=min(args.events, 500),
                extras=args.extras,
                conn_max_age=0,
                workers=args.workers,
                variant="`CONN_MAX_AGE=0` (Django's default)",
            )
        )
    return configs


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.client:
        return client_main()
    started = time.monotonic()
    args.load_at_start = os.getloadavg()
    backends = _split(args.backends, ("sqlite", "postgres"), "backend")
    processings = _split(args.processing, (INLINE, ENQUEUE), "processing")
    servers = _split(args.servers, (SYNC, GTHREAD), "server")
    versions = {"gunicorn": ensure_gunicorn()}
    from importlib import metadata

    for name in ("Django", "celery", "psycopg", "redis"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)

    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    bench = Bench(args, workdir)
    if "postgres" in backends and (problem := postgres_problem()):
        message = f"PostgreSQL SKIPPED: nothing usable at 127.0.0.1:5432 ({problem})"
        print("!!! " + message, flush=True)
        bench.notes.append(message)
        backends.remove("postgres")
    elif "postgres" in backends:
        with contextlib.suppress(Exception), _pg_connect(PG_ADMIN_DB) as conn:
            versions["PostgreSQL"] = str(conn.execute("SHOW server_version").fetchone()[0])
    if ENQUEUE in processings:
        bench.redis = RedisQueue(REDIS_URL)
        if problem := bench.redis.problem():
            message = f"enqueue rows SKIPPED: no Redis at {REDIS_URL} ({problem})"
            print("!!! " + message, flush=True)
            bench.notes.append(message)
            processings.remove(ENQUEUE)
            bench.redis = None
        else:
            with contextlib.suppress(Exception):
                versions["Redis server"] = str(bench.redis.client.info()["redis_version"])
    plans = {backend: plan(args, backend, processings, servers) for backend in backends}
    configs = [config for configs in plans.values() for config in configs]
    bench.expected = [
        config.guess_seconds(args.duration) for config in configs for _ in config.clients
    ]
    bench.servers_left = len(configs)
    bench.databases_left = len(plans)
    if args.budget > 0:  # counted from here: a first pip install of gunicorn is not in it
        bench.deadline = time.monotonic() + args.budget
    databases: list[Database] = []
    try:
        for backend, backend_configs in plans.items():
            db = Database(backend, workdir)
            databases.append(db)
            print(f"{DB_NAMES[backend]}: migrating a scratch database ...", flush=True)
            bench.databases_left -= 1
            db.create()
            for config in backend_configs:
                try:
                    bench.serve(db, config)
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    message = f"{config.label} FAILED: {exc}"
                    print("!!! " + message, flush=True)
                    bench.failures.append(message)
    finally:
        for db in databases:
            try:
                db.drop()
            except Exception as exc:  # reported; the rest of the cleanup goes on
                print(f"!!! could not drop the {db.backend} database: {exc}", file=sys.stderr)
        if bench.redis is not None:
            try:
                bench.redis.flush()
            except Exception as exc:
                queue = bench.redis.queue
                print(f"!!! could not delete the Redis queue {queue}: {exc}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)

    elapsed = time.monotonic() - started
    report = render(bench, args, elapsed, versions)
    print()
    print(report)
    output = args.output or (None if args.quick else ISSUE22_RESULTS if args.issue22 else RESULTS)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report + "\n")
        shown = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
        print(f"\nwritten to {shown}")
    else:
        print("\n(--quick: no results file written)")
    # the harness's own checks decide the exit status; the endpoint's findings are reported
    return 1 if bench.failures or any(row.problems for row in bench.rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
