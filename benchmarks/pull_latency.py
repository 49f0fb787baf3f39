"""A full pull at Stripe's pace: what ``benchmarks/pull.py --latency-ms MS`` runs.

    .venv/bin/python benchmarks/pull.py --latency-ms 300                 # N = 10,000, PostgreSQL
    .venv/bin/python benchmarks/pull.py --latency-ms 300 --big           # and N = 100,000
    .venv/bin/python benchmarks/pull.py --latency-ms 300 --live \\
        --streams 16,32 --workers 0 --skip-peers                         # live mode

The emulator (in this process, seeded once per N, as in ``pull.py``) answers every request
``--latency-ms`` after it arrived and holds Stripe's documented limits strictly: a global
limit per key (``--rate-limit``; by default Stripe's, 25 requests/s in test mode) and 25
requests/s per endpoint (listing customers is one endpoint: every page of a pull counts
against it), each a strict sliding one-second window (``Limits(strict_window=True)``: no
second ever admits more, no burst). What exceeds either is answered with Stripe's 429
``rate_limit`` error. ``--live``: a ``sk_live_`` key, customers seeded in live mode, the
emulator's global limit 100/s (the per-endpoint one stays 25/s, so a pull is held to the
same 25 pages/s); the peers are skipped (their settings are test-mode only).

Our client paces at its defaults (``RATE_LIMIT`` unset: 95% of the key mode's limit, 23.75 or
95 requests/s, and 95% of 25 per endpoint, ``stripe.limits``); a ``--rate-limit`` other than
the mode's sets ``RATE_LIMIT`` to it (the client paces at 95% of it). Each row is one pull in
a fresh process into an empty, migrated database (PostgreSQL unless ``--backends`` says):

- dj-stripe 2.11's core loop and the plain SDK loop: ``pull.py``'s peers, one request at a time;
- ours for each K of ``--streams`` (1,4,16): one stream, then ``pull_all(parallel=K)``: K
  fetching threads and the writers, the client held to the emulator's limit (``RATE_LIMIT``);
- ours with ``--workers`` Celery workers (4): ``pull_all(partitions=W)`` hands slices of the
  range to W worker processes (``--pool solo``) on a Redis broker (``BENCH_BROKER_URL``, default
  redis://127.0.0.1:6379/13, emptied before each run), sharing the limit through Redis.

Our client never retries here (``MAX_RETRIES`` 0), so a 429 would fail the pull besides being
counted. Per row: seconds, customers/s, the HTTP requests and the 429s the emulator answered
(``emulator.count_rate_limited()``), the share of the limit's pace (customers/s ÷ (the list
endpoint's limit, the lower of the two, x 100 per page): ÷ 2,500), the most list requests
admitted in any second (``emulator.max_in_window("GET /v1/customers")``) and in any second
overall, peak RSS (``VmHWM``; for the Celery row the largest of the pulling process and the
workers) and customers/s ÷ dj-stripe's. The limiters' record is emptied before each row, so
those are the row's own. Results: stdout and ``benchmarks/results/pull-latency-strict-latest.md``
(``--live``: ``pull-latency-strict-live.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import COLLECTOR_NOTE, collector_paused
from benchmarks.pull import (
    CHILD_TIMEOUT,
    DJSTRIPE,
    OURS,
    ROOT,
    SDK,
    Databases,
    Run,
    ensure_peers_venv,
    how_measured,
    postgres_problem,
    proc_memory_mb,
    run_child,
)

RESULTS = ROOT / "benchmarks" / "results" / "pull-latency-strict-latest.md"
LIVE_RESULTS = RESULTS.with_name("pull-latency-strict-live.md")
QUICK_RESULTS = RESULTS.with_name("pull-latency-quick.md")
#: A live-mode key for ``--live`` (the emulator, built with ``live_keys=True``, takes any).
LIVE_API_KEY = "sk_live_BenchPull0123456789abcdefABCD"
#: Stripe's documented global limits per key, by mode, and its default per endpoint.
MODE_RATE = {"test": 25.0, "live": 100.0}
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13")
WORKER_READY_SECONDS = 60
#: The goals of issue 22 for ``--parallel 16`` (share of the limit's pace), by (database, N);
#: other cells are held to issue 14's 80%.
GOAL_SHARE_OF_LIMIT = {
    ("postgres", 100_000): 0.90,
    ("postgres", 10_000): 0.85,
    ("sqlite", 10_000): 0.70,
}
GOAL_DEFAULT_SHARE = 0.80
GOAL_ROW = "ours, --parallel 16"
#: Issue 14's: the best row of ours against dj-stripe.
GOAL_TIMES_DJSTRIPE = 20.0


@dataclass
class Row:
    """One measured configuration: a label, which library, its child's extra environment."""

    label: str
    library: str  # OURS, DJSTRIPE or SDK (``pull.LIBRARIES``)
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 0

    def pages(self, n: int) -> int:
        return math.ceil(n / (10 if self.library == DJSTRIPE else 100))  # dj-stripe lists 10


def mode(args: argparse.Namespace) -> str:
    return "live" if args.live else "test"


def limits_of(args: argparse.Namespace) -> dict[str, Any]:
    """The emulator's ``Limits``: Stripe's, held strictly."""
    from django_stripe_customers.stripe.limits import ENDPOINT_RATE

    return {
        "latency_ms": args.latency_ms,
        "rate_limit": args.rate_limit,
        "endpoint_rate_limit": ENDPOINT_RATE,
        "strict_window": True,
    }


def list_limit(args: argparse.Namespace) -> float:
    """Requests/s a pull's list pages may reach: the lower of the global and endpoint limits."""
    limits = limits_of(args)
    return min(limits["rate_limit"], limits["endpoint_rate_limit"])


def plan(args: argparse.Namespace) -> list[Row]:

    rows = [] if args.skip_peers else [Row(DJSTRIPE, DJSTRIPE), Row(SDK, SDK)]
    ours: dict[str, str] = {}
    if args.rate_limit != MODE_RATE[mode(args)]:  # the client paces at PACE of it, as by default
        ours["BENCH_RATE_LIMIT"] = f"{args.rate_limit:g}"
    if args.live:
        ours["BENCH_API_KEY"] = LIVE_API_KEY
    for streams in args.streams:
        if streams == 1:
            rows.append(Row("ours, one stream", OURS, dict(ours)))
        else:
            env = {**ours, "BENCH_PULL_PARALLEL": str(streams)}
            rows.append(Row(f"ours, --parallel {streams}", OURS, env))
    if args.workers:
        env = {
            **ours,
            "BENCH_PULL_PARTITIONS": str(args.workers),
            "BENCH_BROKER_URL": BROKER_URL,
        }
        rows.append(Row(f"ours, {args.workers} Celery workers", OURS, env, args.workers))
    return rows


# -- Celery workers beside a partitioned pull ---------------------------------------------------


def broker_problem() -> str | None:
    """Why the Redis broker cannot be used, or None when it answers."""
    try:
        import redis

        redis.Redis.from_url(BROKER_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


class CeleryWorkers:
    """``count`` worker processes started beside one measured pull (``run_child(beside=)``),
    with the pull's environment; the peak RSS of the largest is kept in ``peak_rss_mb``."""

    def __init__(
        self, count: int, logdir: Path, *, pool: str = "solo", concurrency: int = 1
    ) -> None:
        self.count = count
        self.pool, self.concurrency = pool, concurrency
        self.logdir = logdir
        self.peak_rss_mb = 0.0

    @contextlib.contextmanager
    def __call__(self, env: dict[str, str]) -> Iterator[None]:
        import redis

        redis.Redis.from_url(BROKER_URL).flushdb()  # no message or bucket of an earlier run
        workers: list[tuple[subprocess.Popen[bytes], Path]] = []
        try:
            for number in range(self.count):
                log = self.logdir / f"worker-{number}.log"
                with log.open("wb") as out:
                    command = [
                        sys.executable, "-m", "celery", "-A", "benchmarks.celery_app", "worker",
                        "--pool", self.pool, "--concurrency", str(self.concurrency),
                        "-n", f"bench{number}@%h", "-l", "info",
                        "--without-gossip", "--without-mingle", "--without-heartbeat",
                    ]  # fmt: skip
                    workers.append(
                        (subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out), log)
                    )
            _wait_ready(workers)
            yield
        finally:
            self.peak_rss_mb = max(
                (proc_memory_mb(proc.pid).get("VmHWM", 0.0) for proc, _ in workers), default=0.0
            )
            for proc, _ in workers:
                proc.terminate()
            for proc, _ in workers:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_ready(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    deadline = time.monotonic() + WORKER_READY_SECONDS
    waiting = list(workers)
    while waiting:
        for proc, log in list(waiting):
            text = log.read_text(errors="replace")
            if " ready." in text:
                waiting.remove((proc, log))
            elif proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"a Celery worker did not start:\n{text[-3000:]}")
        time.sleep(0.2)


# -- measuring ---------------------------------------------------------------------------------


def measure(
    row: Row, emulator: Any, databases: Databases, backend: str, n: int, args: argparse.Namespace
) -> Run:
    timeout = CHILD_TIMEOUT + 3 * row.pages(n) * args.latency_ms / 1000
    workers = CeleryWorkers(row.workers, databases.workdir) if row.workers else None
    emulator.app.admissions.clear()  # the limiters' record: this row's alone (windows are apart)
    with collector_paused():
        run = run_child(
            emulator,
            databases,
            row.library,
            backend,
            n,
            api_base=emulator.url,
            extra_env=row.env,
            timeout=timeout,
            beside=workers,
        )
    run.library = row.label
    run.extra["rate_limited"] = emulator.count_rate_limited()
    run.extra["max_list_per_second"] = emulator.max_in_window("GET /v1/customers")
    run.extra["max_per_second"] = emulator.max_in_window()
    if workers is not None:
        run.extra["pull_peak_rss_mb"] = run.rss_peak_mb
        run.extra["workers_peak_rss_mb"] = workers.peak_rss_mb
        run.rss_peak_mb = max(run.rss_peak_mb, workers.peak_rss_mb)
    return run


def refused(run: Run) -> int:
    """429s the emulator's limiters answered during the run (``count_rate_limited``)."""
    if "rate_limited" in run.extra:
        return int(run.extra["rate_limited"])
    return sum(count for key, count in run.requests.items() if key.endswith(" 429"))


def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.rate_limit is None:
        args.rate_limit = MODE_RATE[mode(args)]
    output = args.output or (
        QUICK_RESULTS if args.quick else LIVE_RESULTS if args.live else RESULTS
    )
    sizes = args.sizes or ([500] if args.quick else [10_000] + ([100_000] if args.big else []))
    backends = args.backends or ["postgres"]
    notes: list[str] = []
    if "postgres" in backends and (problem := postgres_problem()):
        notes.append(f"PostgreSQL SKIPPED: {problem}")
        backends = [b for b in backends if b != "postgres"] or ["sqlite"]
    if args.workers and (problem := broker_problem()):
        notes.append(f"Celery row SKIPPED: no Redis broker at {BROKER_URL} ({problem})")
        args.workers = 0
    if args.live and not args.skip_peers:
        notes.append("peers SKIPPED in live mode: their settings are test-mode only")
        args.skip_peers = True
    venv_seconds = 0.0
    if not args.skip_peers:
        try:
            venv_seconds = ensure_peers_venv()
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            notes.append(f"peers SKIPPED: their venv could not be prepared ({exc})")
            args.skip_peers = True
    for note in notes:
        print("!!! " + note, flush=True)
    rows = plan(args)

    from django_stripe_customers.testing import StripeEmulator

    runs: list[Run] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-pull-latency-"))
    databases = Databases(workdir)
    limits = limits_of(args)
    try:
        with StripeEmulator(
            max_logged_requests=10_000_000, live_keys=args.live, **limits
        ) as emulator:
            for n in sizes:
                emulator.reset()
                emulator.seed(n, livemode=args.live)
                for backend in backends:
                    for row in rows:
                        run = measure(row, emulator, databases, backend, n, args)
                        runs.append(run)
                        print(f"  {backend:8} N={n:<7,} {summary(run)}", flush=True)
    finally:
        databases.close()
        shutil.rmtree(workdir, ignore_errors=True)

    report = render(runs, notes, args, time.monotonic() - started, venv_seconds)
    print()
    print(report)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report + "\n")
    shown = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
    print(f"\n(written to {shown})")
    return 0 if all(run.ok for run in runs) else 1


# -- the report --------------------------------------------------------------------------------


def summary(run: Run) -> str:
    if not run.ok:
        return f"{run.library:32} FAILED {run.error}"
    return (
        f"{run.library:32} {run.seconds:8.2f}s {run.per_second:7,.0f}/s "
        f"{run.http_requests:6,} requests {refused(run)} x 429 "
        f"max {run.extra.get('max_list_per_second', '?')} list/s {run.rss_peak_mb:.1f} MB"
    )


def render(
    runs: list[Run],
    notes: list[str],
    args: argparse.Namespace,
    elapsed: float,
    venv_seconds: float,
) -> str:
    versions: dict[str, str] = {}
    for run in runs:
        versions.update(run.versions)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    limits = limits_of(args)
    pace = list_limit(args) * 100
    from django_stripe_customers.stripe.limits import PACE

    client_rate = args.rate_limit * PACE  # the client's pace of the limit
    lines = [
        f"## Full pull at {args.latency_ms:g} ms per request, Stripe's {mode(args)}-mode limits "
        f"held strictly: {limits['rate_limit']:g} requests/s per key, "
        f"{limits['endpoint_rate_limit']:g}/s per endpoint ({stamp})",
        "",
        how_measured(versions, elapsed, venv_seconds)
        + f". The emulator: a {mode(args)}-mode key, every limit a strict sliding one-second "
        "window (no burst; a request beyond one is answered 429); our client at its default "
        "pace, 95% of each limit"
        + ("" if args.rate_limit == MODE_RATE[mode(args)] else f" (RATE_LIMIT {client_rate:g})")
        + f". The list endpoint's limit allows {pace:,.0f} customers/s (pages of 100). "
        + f"{COLLECTOR_NOTE}.",
        "",
        "| pull | database | N | seconds | customers/s | HTTP requests | 429s "
        "| share of the limit | most list requests in 1 s | most requests in 1 s "
        "| peak RSS MB | x dj-stripe |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        if not run.ok:
            lines.append(
                f"| {run.library} | {run.backend} | {run.n:,} | failed: {run.error} |||||||||"
            )
            continue
        base = _djstripe(runs, run)
        times = f"{run.per_second / base.per_second:.1f}" if base else "n/a"
        lines.append(
            f"| {run.library} | {run.backend} | {run.n:,} | {run.seconds:.2f} "
            f"| {run.per_second:,.0f} | {run.http_requests:,} | {refused(run)} "
            f"| {run.per_second / pace:.0%} | {run.extra.get('max_list_per_second', '')} "
            f"| {run.extra.get('max_per_second', '')} | {run.rss_peak_mb:.1f} | {times} |"
        )
    lines += ["", "Checks (issues 14 and 22):", *checks(runs, pace, args), "", "Details:"]
    lines += [f"- {detail(run)}" for run in runs if run.seconds]
    lines += [f"- note: {note}" for note in notes]
    return "\n".join(lines)


def _djstripe(runs: list[Run], run: Run) -> Run | None:
    cell = (run.backend, run.n)
    found = [r for r in runs if r.library == DJSTRIPE and r.ok and (r.backend, r.n) == cell]
    return found[0] if found else None


def checks(runs: list[Run], pace: float, args: argparse.Namespace) -> list[str]:
    out = []
    ours = [run for run in runs if run.library.startswith("ours")]
    for backend, n in sorted({(run.backend, run.n) for run in ours}):
        cell = [run for run in ours if (run.backend, run.n) == (backend, n) and run.ok]
        if not cell:
            continue
        goal = GOAL_SHARE_OF_LIMIT.get((backend, n), GOAL_DEFAULT_SHARE)
        targeted = [run for run in cell if run.library == GOAL_ROW]
        best = targeted[0] if targeted else max(cell, key=lambda run: run.per_second)
        share = best.per_second / pace
        verdict = "PASS" if share >= goal else "FAIL"
        out.append(
            f"- {verdict} ≥ {goal:.0%} of the limit's pace: {backend}, N={n:,}: "
            f"{best.library} {best.per_second:,.0f}/s = {share:.0%} of {pace:,.0f}/s"
        )
        base = _djstripe(runs, best)
        if base is not None:
            times = best.per_second / base.per_second
            verdict = "PASS" if times >= GOAL_TIMES_DJSTRIPE else "FAIL"
            out.append(
                f"- {verdict} ≥ {GOAL_TIMES_DJSTRIPE:.0f}x dj-stripe: {backend}, N={n:,}: "
                f"{best.per_second:,.0f}/s vs {base.per_second:,.0f}/s = {times:.1f}x"
            )
    seen = sum(refused(run) for run in ours)
    out.append(f"- {'PASS' if seen == 0 else 'FAIL'} no 429: {seen} in {len(ours)} pulls of ours")
    endpoint = limits_of(args)["endpoint_rate_limit"]
    most = max((run.extra.get("max_list_per_second", 0) for run in ours if run.ok), default=0)
    out.append(
        f"- {'PASS' if most <= endpoint else 'FAIL'} ≤ {endpoint:g} list requests in any second "
        f"({mode(args)} mode): at most {most} in {len(ours)} pulls of ours (admitted ones: the "
        "strict window refuses more, so a 429 above is what shows an excess)"
    )
    wrong = [run for run in runs if not run.ok]
    out.append(
        f"- {'PASS' if not wrong else 'FAIL'} every pull wrote exactly N rows"
        + "".join(f"; {run.library}: {run.error}" for run in wrong)
    )
    return out


def detail(run: Run) -> str:
    requests = ", ".join(f"{key} x{count:,}" for key, count in sorted(run.requests.items()))
    text = f"{run.library} / {run.backend} / N={run.n:,}: requests: {requests}"
    if run.queries:
        text += (
            f"; {run.queries:,} DB statements, {run.db_seconds:.2f} s in cursor.execute "
            f"({run.db_seconds / run.seconds:.0%} of the pull)"
        )
    if "workers_peak_rss_mb" in run.extra:
        text += (
            f"; peak RSS: pulling process {run.extra['pull_peak_rss_mb']:.1f} MB, largest worker "
            f"{run.extra['workers_peak_rss_mb']:.1f} MB"
        )
    return text
