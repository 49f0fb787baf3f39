"""Full pull of N Stripe customers into SQLite and PostgreSQL: ours, dj-stripe 2.11, the plain SDK.

    .venv/bin/python benchmarks/pull.py                      # N = 1,000 and 10,000, both databases
    .venv/bin/python benchmarks/pull.py --quick              # N = 200, a smoke run
    .venv/bin/python benchmarks/pull.py --sizes 1000 --backends sqlite --skip-peers
    .venv/bin/python benchmarks/pull.py --latency-ms 300 [--big]   # at Stripe's pace and
                                                                   # limits, held strictly (see
                                                                   # benchmarks/pull_latency.py)
    .venv/bin/python benchmarks/pull.py --latency-ms 300 --live    # the same in live mode

Our Stripe emulator (``django_stripe_customers.testing``) runs in this process, on loopback,
and is seeded once per N. Every measured pull runs in a fresh process of its own, against an
empty, migrated database (a copy of a template migrated once per run), so its peak RSS is its
own and no library shares state with another. Per pull: wall seconds of the pull alone
(imports, Django setup and the DB connection come before the clock starts), customers/s, the
HTTP requests the emulator received, DB statements per list page (counted with
``connection.execute_wrapper``; ``CaptureQueriesContext`` would keep them all and grow the
RSS being measured), and the pulling process's peak RSS (``VmHWM``; its ``ru_maxrss`` is not
usable here: Linux carries it across ``execve``, so it starts at the parent's RSS, and the
parent holds the emulator's N customers).

The rows:

- ``django-stripe-customers``: ``pull_all()``, pages of 100 upserted in bulk.
- ``dj-stripe 2.11``: its core sync loop, ``Customer.api_list()`` + ``sync_from_stripe_data``
  (what ``djstripe_sync_models Customer`` runs per customer), with dj-stripe's own
  ``STRIPE_API_HOST`` setting pointing ``stripe.api_base`` at the emulator.
- ``stripe SDK + update_or_create``: what users hand-write without a library.

The peers run in ``.venv-djstripe`` (created here when missing or stale), so our own install
stays clean. ``djstripe_sync_models Customer`` itself is also run once at the smallest N, first
straight at the emulator, then through a stub that answers the two endpoints it needs and the
emulator lacks; the report says what happened.

Results: a Markdown table on stdout and in ``benchmarks/results/pull-latest.md`` (``--quick``:
``pull-quick.md``, so a smoke run never replaces the published table).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a clean clone: benchmarks.* importable
    sys.path.insert(0, str(ROOT))

from benchmarks.common import StatementCounter, source_state  # noqa: E402

PEERS_VENV = ROOT / ".venv-djstripe"
PEERS_REQUIREMENTS = ("dj-stripe==2.11.*", "psycopg[binary]>=3.1")
RESULTS = ROOT / "benchmarks" / "results" / "pull-latest.md"
QUICK_RESULTS = RESULTS.with_name("pull-quick.md")  # a smoke run never replaces the real table

#: dj-stripe validates keys as ``sk_test_`` + at least 24 alphanumerics; the emulator takes any.
API_KEY = "sk_test_BenchPull0123456789abcdefABCD"
PAGE_SIZE = 100
RESULT_PREFIX = "BENCH_RESULT "
CHILD_TIMEOUT = 600  # seconds; a pull that takes longer is reported as failed
PG_ADMIN_DB = os.environ.get("PGDATABASE", "test")
PG_BENCH_DB = "bench_stripe_customers"
#: Peak RSS at the largest N may exceed that at the smallest by this much and still be "flat".
FLAT_RSS_MB = 5.0

OURS = "django-stripe-customers"
DJSTRIPE = "dj-stripe 2.11"
SDK = "stripe SDK + update_or_create"
#: row label -> (child kind: "ours" runs in this venv, the rest in .venv-djstripe; settings)
LIBRARIES = {
    OURS: ("ours", "benchmarks.settings"),
    DJSTRIPE: ("djstripe", "benchmarks.settings_djstripe"),
    SDK: ("sdk", "benchmarks.settings_djstripe"),
}


# -- the measured child for our library -------------------------------------------------------


def _memory_mb() -> dict[str, float]:
    """This process's own memory: ``VmRSS`` now and ``VmHWM`` (peak) from /proc/self/status.

    Not ``ru_maxrss`` alone: Linux carries it across ``execve``, so a child spawned by a big
    parent (the emulator holding N customers) reports at least the parent's RSS at spawn time.
    ``ru_maxrss`` is kept for reference.
    """
    found = {"ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    found.update(proc_memory_mb("self"))
    found.setdefault("VmRSS", found["ru_maxrss"])  # no procfs: ru_maxrss is the best there is
    found.setdefault("VmHWM", found["ru_maxrss"])
    return found


def proc_memory_mb(pid: int | str) -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` (peak) of a process from /proc/PID/status; empty without it."""
    found: dict[str, float] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) / 1024  # kB
    return found


def child_ours(profile: bool = False) -> int:
    """One measured ``pull_all()`` in this process; prints ``BENCH_RESULT {json}``."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    from importlib import metadata

    from django.db import connection

    from django_stripe_customers.clients import get_client
    from django_stripe_customers.models import Customer
    from django_stripe_customers.sync import pull_all

    # Set by pull_latency.py: streams in this process, or slices handed to Celery workers.
    parallel = int(os.environ.get("BENCH_PULL_PARALLEL", "1"))
    partitions = int(os.environ.get("BENCH_PULL_PARTITIONS", "1"))
    if partitions > 1:
        import benchmarks.celery_app  # noqa: F401  (the slices go to its broker)

    get_client()  # build the client (settings read, session made) before the clock starts
    connection.ensure_connection()
    statements = StatementCounter()  # inside cursor.execute: the driver and the database

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    memory_before = _memory_mb()
    started = time.perf_counter()
    with statements.counting():
        if profiler is not None:
            profiler.enable()
        result = pull_all(progress=None, parallel=parallel, partitions=partitions)
        if profiler is not None:
            profiler.disable()
    seconds = time.perf_counter() - started
    memory_after = _memory_mb()
    if profiler is not None:
        import io
        import pstats

        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
        stats.print_stats(45)
        out.write("\n--- by own time ---\n")
        stats.sort_stats("tottime").print_stats(30)
        print(out.getvalue(), file=sys.stderr)
    versions = {name: metadata.version(name) for name in ("Django", "requests")}
    with contextlib.suppress(metadata.PackageNotFoundError):
        versions["psycopg"] = metadata.version("psycopg")
    print(
        RESULT_PREFIX
        + json.dumps(
            {
                "seconds": seconds,
                "queries": statements.queries,
                "db_seconds": statements.db_seconds,
                "rows": Customer.objects.count(),
                "rss_before_mb": memory_before["VmRSS"],
                "rss_peak_mb": memory_after["VmHWM"],
                "ru_maxrss_mb": memory_after["ru_maxrss"],
                "versions": versions,
                "extra": {
                    "pull_result": {k: v for k, v in result.as_dict().items() if k != "errors"},
                    "errors": result.errors[:3],
                },
            }
        ),
        flush=True,
    )
    return 0


# -- the peers' venv --------------------------------------------------------------------------


def peers_python() -> Path:
    return PEERS_VENV / "bin" / "python"


def ensure_peers_venv() -> float:
    """Create or refresh ``.venv-djstripe``; returns the seconds it took (0 when current)."""
    stamp = PEERS_VENV / ".bench-requirements"
    wanted = (
        f"python {sys.version_info[0]}.{sys.version_info[1]}\n"
        + "\n".join(PEERS_REQUIREMENTS)
        + "\n"
    )
    if peers_python().exists() and stamp.exists() and stamp.read_text() == wanted:
        return 0.0
    started = time.monotonic()
    print(f"Preparing {PEERS_VENV.name}: {', '.join(PEERS_REQUIREMENTS)} ...", flush=True)
    if not peers_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    install = [str(peers_python()), "-m", "pip", "install", "--quiet", *PEERS_REQUIREMENTS]
    pip = subprocess.run(install, capture_output=True, text=True)
    if pip.returncode != 0:  # pip's output only when it failed (it warns a lot otherwise)
        print(pip.stdout[-3000:], pip.stderr[-3000:], file=sys.stderr)
        raise RuntimeError(f"pip install into {PEERS_VENV.name} failed ({pip.returncode})")
    stamp.write_text(wanted)
    return time.monotonic() - started


# -- databases --------------------------------------------------------------------------------


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


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    try:
        _pg_connect().close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def _pg(*statements: str) -> None:
    with _pg_connect() as conn:
        for statement in statements:
            conn.execute(statement)


class Databases:
    """Templates migrated once per (backend, settings); a fresh copy for every measured pull.

    ``pg_name``: the PostgreSQL database of the pulls (its templates are named after it), so
    benchmarks that use this class do not drop each other's databases."""

    def __init__(self, workdir: Path, pg_name: str = PG_BENCH_DB) -> None:
        self.workdir = workdir
        self.pg_name = pg_name
        self.templates: dict[tuple[str, str], str] = {}
        self.migrate_seconds: dict[tuple[str, str], float] = {}
        self._copies = 0

    def env(self, backend: str, name: str) -> dict[str, str]:
        if backend == "sqlite":
            return {"BENCH_DB": "sqlite", "BENCH_SQLITE_PATH": name}
        return {"BENCH_DB": "postgres", "BENCH_PG_NAME": name}

    def template(self, backend: str, settings: str, python: Path) -> str:
        key = (backend, settings)
        if key in self.templates:
            return self.templates[key]
        suffix = settings.rsplit(".", 1)[-1]
        if backend == "sqlite":
            name = str(self.workdir / f"template-{suffix}.sqlite3")
        else:
            name = f"{self.pg_name}_tpl_{suffix}"
            _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        started = time.monotonic()
        print(f"  migrating a {backend} template for {settings} ...", flush=True)
        run = subprocess.run(
            [
                str(python),
                "-m",
                "django",
                "migrate",
                "--run-syncdb",
                "-v0",
                f"--settings={settings}",
            ],
            env=child_env(self.env(backend, name)),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
        )
        if run.returncode != 0:
            raise RuntimeError(f"migrate failed for {backend}/{settings}:\n{run.stderr[-3000:]}")
        self.migrate_seconds[key] = time.monotonic() - started
        self.templates[key] = name
        return name

    def fresh(self, backend: str, settings: str, python: Path) -> str:
        """An empty, migrated database for one measured pull; its name or path."""
        template = self.template(backend, settings, python)
        self._copies += 1
        if backend == "sqlite":
            path = self.workdir / f"pull-{self._copies}.sqlite3"
            shutil.copyfile(template, path)
            return str(path)
        _pg(
            f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)',
            f'CREATE DATABASE "{self.pg_name}" TEMPLATE "{template}"',
        )
        return self.pg_name

    def discard(self, backend: str, name: str) -> None:
        if backend == "sqlite":
            for path in (Path(name), Path(name + "-journal"), Path(name + "-wal")):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        names = [self.pg_name] + [
            name for (backend, _), name in self.templates.items() if backend == "postgres"
        ]
        if any(backend == "postgres" for backend, _ in self.templates):
            _pg(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names))


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key == "BENCH_PG_SERVER_SIDE_BINDING"
        or not key.startswith(("BENCH_", "DJANGO_", "VIRTUAL_ENV", "PYTHONHOME"))
    }
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONHASHSEED"] = "0"
    env.update(extra)
    return env


# -- a stub for the two endpoints djstripe_sync_models needs and the emulator lacks ------------


class StubProxy:
    """Forwards to the emulator, except ``GET /v1/accounts`` and ``GET /v1/customers/{id}/sources``,
    answered with an empty list (what Stripe answers an account with no connected accounts and
    customers with no cards or bank accounts). Counts what it stubbed."""

    STUBBED = re.compile(r"^/v1/(accounts|customers/[^/]+/sources)$")

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.stubbed: Counter[str] = Counter()
        proxy = self
        local = threading.local()  # one keep-alive connection to the emulator per thread

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each answer waits ~40 ms for a delayed ACK

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "GET" and proxy.STUBBED.match(path):
                    key = "/v1/accounts" if path == "/v1/accounts" else "/v1/customers/{id}/sources"
                    proxy.stubbed[f"GET {key}"] += 1
                    status, headers = 200, {"Request-Id": "req_stubbed"}
                    payload = json.dumps(
                        {"object": "list", "data": [], "has_more": False, "url": path}
                    ).encode()
                else:
                    if getattr(local, "http", None) is None:
                        local.http = http.client.HTTPConnection(host, int(port), timeout=60)
                        local.http.connect()
                        local.http.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conn = local
                    forward = {
                        name: value
                        for name, value in self.headers.items()
                        if name.lower() not in ("host", "connection", "content-length")
                    }
                    conn.http.request(self.command, self.path, body=body or None, headers=forward)
                    answer = conn.http.getresponse()
                    payload = answer.read()
                    status = answer.status
                    headers = {
                        name: value
                        for name, value in answer.getheaders()
                        if name.lower() not in ("content-length", "connection", "content-type")
                    }
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- running and measuring --------------------------------------------------------------------


@dataclass
class Run:
    library: str
    backend: str
    n: int
    ok: bool = False
    error: str = ""
    seconds: float = 0.0
    queries: int = 0
    db_seconds: float = 0.0
    rows: int = 0
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    ru_maxrss_mb: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    repeats: list[float] = field(default_factory=list)

    @property
    def http_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def list_requests(self) -> int:
        return self.requests.get("GET /v1/customers 200", 0)

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def queries_per_page(self) -> float:
        return self.queries / self.list_requests if self.list_requests else float("nan")


_ID = re.compile(r"/(cus|acct)_[A-Za-z0-9]+")


def _request_key(method: str, path: str, status: int) -> str:
    return f"{method} {_ID.sub(lambda m: '/{' + m.group(1) + '_id}', path)} {status}"


def run_child(
    emulator: Any,
    databases: Databases,
    library: str,
    backend: str,
    n: int,
    *,
    api_base: str,
    mode: str | None = None,
    stub: StubProxy | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = CHILD_TIMEOUT,
    beside: Callable[[dict[str, str]], contextlib.AbstractContextManager[Any]] | None = None,
) -> Run:
    """One measured pull in a fresh process, from an empty migrated database.

    ``extra_env`` goes to the child; ``beside(env)``, when given, is entered with the child's
    environment once its database exists and left when the child has exited (the Celery
    workers of a partitioned pull run in it)."""
    kind, settings = LIBRARIES[library]
    mode = mode or kind
    python = Path(sys.executable) if kind == "ours" else peers_python()
    if kind == "ours":
        command = [str(python), str(Path(__file__).resolve()), "--child-ours"]
    else:
        command = [str(python), "-m", "benchmarks.djstripe_pull", mode]
    run = Run(library, backend, n)
    name = databases.fresh(backend, settings, python)
    env = child_env(
        {
            **databases.env(backend, name),
            "DJANGO_SETTINGS_MODULE": settings,
            "BENCH_API_BASE": api_base,
            "BENCH_API_KEY": API_KEY,
            **(extra_env or {}),
        }
    )
    before = len(emulator.requests)
    stubbed_before = Counter(stub.stubbed) if stub else Counter()
    try:
        with beside(env) if beside else contextlib.nullcontext():
            proc = subprocess.run(
                command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
            )
    except subprocess.TimeoutExpired:
        run.error = f"timed out after {timeout:.0f}s"
        return run
    finally:
        databases.discard(backend, name)
    for entry in emulator.requests[before:]:
        run.requests[_request_key(entry.method, entry.path, entry.status)] += 1
    if stub is not None:
        for key, count in (stub.stubbed - stubbed_before).items():
            run.requests[f"{key} 200 (stub)"] += count
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        run.error = f"exit {proc.returncode}: {tail[0][:300]}"
        return run
    data = json.loads(lines[-1][len(RESULT_PREFIX) :])
    run.seconds = data["seconds"]
    run.repeats = [run.seconds]
    run.queries = data["queries"]
    run.db_seconds = data.get("db_seconds", 0.0)
    run.rows = data["rows"]
    run.rss_before_mb = data["rss_before_mb"]
    run.rss_peak_mb = data["rss_peak_mb"]
    run.ru_maxrss_mb = data["ru_maxrss_mb"]
    run.versions = data["versions"]
    run.extra = data["extra"]
    run.ok = run.rows == n
    if not run.ok:
        run.error = f"{run.rows} rows after the pull, expected {n}"
    return run


def best_of(runs: list[Run]) -> Run:
    """The median run by seconds (peak RSS: the highest seen), with every time kept."""
    ok = [run for run in runs if run.ok] or runs
    ordered = sorted(ok, key=lambda run: run.seconds)
    chosen = ordered[len(ordered) // 2]
    chosen.repeats = [run.seconds for run in ok]
    chosen.rss_peak_mb = max(run.rss_peak_mb for run in ok)
    return chosen


# -- the report -------------------------------------------------------------------------------


def _fmt_int(value: float) -> str:
    return f"{value:,.0f}"


def table(runs: list[Run]) -> str:
    ours = {(r.backend, r.n): r for r in runs if r.library == OURS and r.ok}
    lines = [
        "| library | database | N | seconds | customers/s | HTTP requests | queries/page "
        "| peak RSS MB | ratio vs ours |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        if not run.ok:
            lines.append(
                f"| {run.library} | {run.backend} | {_fmt_int(run.n)} | failed: {run.error} "
                "| | | | | |"
            )
            continue
        base = ours.get((run.backend, run.n))
        if run.library == OURS:
            ratio = "1.00"
        elif base is not None:
            ratio = f"{run.seconds / base.seconds:.2f}x slower"
            if run.seconds < base.seconds:
                ratio = f"{base.seconds / run.seconds:.2f}x faster"
        else:
            ratio = "n/a"
        lines.append(
            f"| {run.library} | {run.backend} | {_fmt_int(run.n)} | {run.seconds:.2f} "
            f"| {_fmt_int(run.per_second)} | {_fmt_int(run.http_requests)} "
            f"| {run.queries_per_page:.1f} | {run.rss_peak_mb:.1f} | {ratio} |"
        )
    return "\n".join(lines)


def checks(runs: list[Run]) -> list[str]:
    """Guarantee 7: ceil(N/100) list requests, and memory flat in N."""
    out = []
    for run in runs:
        if run.library != OURS or not run.ok:
            continue
        expected = math.ceil(run.n / PAGE_SIZE)
        total, listed = run.http_requests, run.list_requests
        verdict = "PASS" if total == listed == expected else "FAIL"
        out.append(
            f"- {verdict} requests = ceil(N/100): {run.backend}, N={run.n:,}: "
            f"{total} HTTP requests ({listed} list pages), expected {expected}"
        )
    for backend in sorted({r.backend for r in runs}):
        mine = sorted(
            (r for r in runs if r.library == OURS and r.backend == backend and r.ok),
            key=lambda r: r.n,
        )
        if len(mine) < 2:
            continue
        small, large = mine[0], mine[-1]
        grew = large.rss_peak_mb - small.rss_peak_mb
        verdict = "PASS" if grew <= FLAT_RSS_MB else "FAIL"
        out.append(
            f"- {verdict} memory flat in N: {backend}, peak RSS {small.rss_peak_mb:.1f} MB at "
            f"N={small.n:,} vs {large.rss_peak_mb:.1f} MB at N={large.n:,} "
            f"({grew:+.1f} MB; allowed +{FLAT_RSS_MB:.0f} MB); the pull itself added "
            f"{small.rss_peak_mb - small.rss_before_mb:+.1f} / "
            f"{large.rss_peak_mb - large.rss_before_mb:+.1f} MB over the process at rest"
        )
    return out


def details(runs: list[Run], probes: list[Run]) -> list[str]:
    out = []
    for run in runs + probes:
        if not run.seconds:  # failed before it could measure: the table says why
            continue
        requests = ", ".join(f"{key} x{count:,}" for key, count in sorted(run.requests.items()))
        times = ", ".join(f"{s:.2f}" for s in run.repeats)
        out.append(
            f"- {run.library} / {run.backend} / N={run.n:,}: {run.queries:,} DB statements "
            f"taking {run.db_seconds:.2f} s in cursor.execute; "
            f"runs {times} s; RSS at rest {run.rss_before_mb:.1f} MB "
            f"(ru_maxrss {run.ru_maxrss_mb:.1f}); requests: {requests}"
        )
    return out


# -- main -------------------------------------------------------------------------------------


def _numbers(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=_numbers,
        default=None,
        help="comma-separated N (1000,10000; with --latency-ms 10000, and 100000 with --big)",
    )
    parser.add_argument(
        "--backends",
        type=lambda text: [b.strip() for b in text.split(",") if b.strip()],
        default=None,
        help="sqlite,postgres (with --latency-ms: postgres)",
    )
    parser.add_argument("--skip-peers", action="store_true", help="only our library")
    parser.add_argument("--quick", action="store_true", help="N=200 only: a smoke run")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="measured pulls of ours per cell, median reported (peers: once; default 3)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print (stderr) a cProfile of our pull at the largest N, each database",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"default {RESULTS.relative_to(ROOT)} ({QUICK_RESULTS.name} with --quick)",
    )
    latency = parser.add_argument_group(
        "at Stripe's pace (benchmarks/pull_latency.py)",
        "--latency-ms runs the latency benchmark instead: peers, ours with one stream, "
        "parallel streams and Celery workers, against an emulator that is as slow as Stripe "
        "and holds Stripe's limits strictly (a global limit per key and 25/s per endpoint, "
        "each a strict one-second window), refusing what exceeds them with a 429.",
    )
    latency.add_argument("--latency-ms", type=float, default=None, help="e.g. 300")
    latency.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        help="the emulator's global limit, requests/s per key (default: Stripe's for the "
        "mode, 25 in test mode, 100 with --live; the client paces at its own default, 95%% of "
        "Stripe's, unless this differs from it)",
    )
    latency.add_argument(
        "--live",
        action="store_true",
        help="live mode: a sk_live_ key, the emulator at 100/s per key and 25/s per endpoint",
    )
    latency.add_argument("--big", action="store_true", help="N = 100,000 as well as 10,000")
    latency.add_argument(
        "--streams", type=_numbers, default=[1, 4, 16], help="rows of ours: streams (1,4,16)"
    )
    latency.add_argument(
        "--workers", type=int, default=4, help="Celery workers for the partitioned row (0: none)"
    )
    parser.add_argument("--child-ours", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.child_ours:
        return child_ours(profile=args.child_profile)
    if args.latency_ms is not None:  # the benchmark at Stripe's pace, in its own module
        import benchmarks.pull_latency

        return benchmarks.pull_latency.main(args)

    started = time.monotonic()
    if args.output is None:
        args.output = QUICK_RESULTS if args.quick else RESULTS
    sizes = [200] if args.quick else args.sizes or [1_000, 10_000]
    backends = args.backends or ["sqlite", "postgres"]
    for backend in backends:
        if backend not in ("sqlite", "postgres"):
            print(f"unknown backend {backend!r}", file=sys.stderr)
            return 2
    notes: list[str] = []
    if "postgres" in backends and (problem := postgres_problem()):
        message = f"PostgreSQL SKIPPED: nothing usable at 127.0.0.1:5432/{PG_ADMIN_DB} ({problem})"
        print("!!! " + message, flush=True)
        notes.append(message)
        backends.remove("postgres")
    libraries = [OURS] if args.skip_peers else [OURS, DJSTRIPE, SDK]
    venv_seconds = 0.0
    if not args.skip_peers:
        try:
            venv_seconds = ensure_peers_venv()
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            message = f"peers SKIPPED: {PEERS_VENV.name} could not be prepared ({exc})"
            print("!!! " + message, flush=True)
            notes.append(message)
            libraries = [OURS]

    from django_stripe_customers.testing import StripeEmulator

    runs: list[Run] = []
    probes: list[Run] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-pull-"))
    databases = Databases(workdir)
    try:
        with StripeEmulator(max_logged_requests=10_000_000) as emulator:
            for n in sizes:
                emulator.reset()
                seed_started = time.monotonic()
                emulator.seed(n)
                print(f"N={n:,}: seeded in {time.monotonic() - seed_started:.1f}s", flush=True)
                for backend in backends:
                    for library in libraries:
                        repeat = max(1, args.repeat) if library == OURS else 1
                        attempts = []
                        for _ in range(repeat):
                            attempts.append(
                                run_child(
                                    emulator, databases, library, backend, n, api_base=emulator.url
                                )
                            )
                        run = best_of(attempts)
                        runs.append(run)
                        state = (
                            f"{run.seconds:.2f}s, {run.per_second:,.0f}/s, "
                            f"{run.http_requests} requests, {run.queries_per_page:.1f} q/page, "
                            f"{run.rss_peak_mb:.1f} MB"
                            if run.ok
                            else f"FAILED {run.error}"
                        )
                        print(f"  {backend:8} {library:30} {state}", flush=True)
                if DJSTRIPE in libraries and n == min(sizes) and "sqlite" in backends:
                    probes += command_probes(emulator, databases, n)
                if len(emulator.customers) != n:
                    notes.append(f"the emulator held {len(emulator.customers)} customers, not {n}")
            if args.profile:
                profile_ours(emulator, databases, max(sizes), backends)
    finally:
        databases.close()
        shutil.rmtree(workdir, ignore_errors=True)

    elapsed = time.monotonic() - started
    report = render(runs, probes, notes, elapsed, venv_seconds, databases, args)
    print()
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report + "\n")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"\n(written to {shown})")
    return 0 if all(run.ok for run in runs) else 1


def command_probes(emulator: Any, databases: Databases, n: int) -> list[Run]:
    """``djstripe_sync_models Customer`` as users run it: straight at the emulator, then with
    the two endpoints it needs (and the emulator lacks) stubbed."""
    label = "djstripe_sync_models Customer"
    direct = run_child(
        emulator, databases, DJSTRIPE, "sqlite", n, api_base=emulator.url, mode="command"
    )
    direct.library = f"{label} (straight at the emulator)"
    with StubProxy(emulator.url) as stub:
        stubbed = run_child(
            emulator, databases, DJSTRIPE, "sqlite", n, api_base=stub.url, mode="command", stub=stub
        )
    stubbed.library = f"{label} (2 endpoints stubbed)"
    for run in (direct, stubbed):
        failed = run.extra.get("failed")
        if failed:
            run.ok = False
            head = run.extra.get("stderr_head") or []
            run.error = (head[0] if head else failed)[:400]
        state = f"{run.seconds:.2f}s, {run.http_requests} requests" if run.ok else run.error
        print(f"  probe    {run.library:50} {state}", flush=True)
    return [direct, stubbed]


def profile_ours(emulator: Any, databases: Databases, n: int, backends: list[str]) -> None:
    """cProfile of one pull of ours per backend, printed to stderr; not part of the table."""
    emulator.reset()
    emulator.seed(n)
    for backend in backends:
        name = databases.fresh(backend, "benchmarks.settings", Path(sys.executable))
        env = child_env(
            {
                **databases.env(backend, name),
                "BENCH_API_BASE": emulator.url,
                "BENCH_API_KEY": API_KEY,
            }
        )
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child-ours", "--child-profile"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
        )
        databases.discard(backend, name)
        print(f"\n=== cProfile of our pull, N={n:,}, {backend} ===\n{proc.stderr}", file=sys.stderr)


def how_measured(versions: dict[str, str], elapsed: float, venv_seconds: float) -> str:
    """The command, the source, the machine and the versions a report was measured with."""
    return (
        f"`{' '.join(['python', 'benchmarks/pull.py', *sys.argv[1:]])}` at {source_state()}, "
        f"on {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        + f". Whole run {elapsed:.0f} s"
        + (f" (of which {venv_seconds:.0f} s preparing .venv-djstripe)" if venv_seconds else "")
    )


def render(
    runs: list[Run],
    probes: list[Run],
    notes: list[str],
    elapsed: float,
    venv_seconds: float,
    databases: Databases,
    args: argparse.Namespace,
) -> str:
    versions: dict[str, str] = {}
    for run in runs:
        versions.update(run.versions)
    from importlib import metadata

    with contextlib.suppress(metadata.PackageNotFoundError):
        versions["django-stripe-customers"] = metadata.version("django-stripe-customers")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## Full pull benchmark ({stamp})",
        "",
        how_measured(versions, elapsed, venv_seconds) + ".",
        "",
        table(runs),
        "",
        "seconds: the pull alone, in a fresh process, from an empty migrated database "
        f"(ours: median of {max(1, args.repeat)}; peers: one run). HTTP requests: all requests "
        "the emulator received during the pull. queries/page: DB statements sent "
        "(`execute_wrapper`) ÷ list pages requested. Peak RSS: `VmHWM` of the pulling "
        "process (its `ru_maxrss` would start at the parent's RSS: Linux keeps it across "
        "`execve`). Ratio: the peer's seconds ÷ ours, same database and N.",
        "",
        "Checks (DESIGN.md §4, guarantee 7):",
        *checks(runs),
    ]
    if probes:
        lines += ["", "`djstripe_sync_models Customer` (the management command itself):"]
        for run in probes:
            if run.ok:
                lines.append(
                    f"- {run.library}, SQLite, N={run.n:,}: ran, {run.seconds:.2f} s, "
                    f"{run.http_requests:,} HTTP requests, {run.queries_per_page:.1f} "
                    f"queries/page, {run.rss_peak_mb:.1f} MB"
                )
            else:
                lines.append(f"- {run.library}, SQLite, N={run.n:,}: failed: {run.error}")
    migrate = ", ".join(
        f"{backend}/{settings.rsplit('.', 1)[-1]} {seconds:.0f} s"
        for (backend, settings), seconds in databases.migrate_seconds.items()
    )
    lines += ["", "Details:", *details(runs, probes), f"- template migrations: {migrate}"]
    lines += [f"- note: {note}" for note in notes]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
