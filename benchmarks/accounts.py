"""A pull of every connected account (Stripe Connect) at Stripe's pace, on PostgreSQL and SQLite.

    .venv/bin/python benchmarks/accounts.py                  # 50 accounts x 200, both databases
    .venv/bin/python benchmarks/accounts.py --quick          # 5 accounts x 50: a smoke run
    .venv/bin/python benchmarks/accounts.py --backends postgres --accounts 50 --per-account 200 \\
        --parallel 16 --latency-ms 300 --rate-limit 25 --repeat 3

Our Stripe emulator runs in this process, on loopback: ``--accounts`` accounts connected to the
platform, ``--per-account`` customers each (the platform's own account has none), every answer
``--latency-ms`` after its request arrived, and more than ``--rate-limit`` requests/s per key
(default 25: Stripe's test-mode limit; a platform's requests for its connected accounts count
against its key) answered 429 ``rate_limit``. Each measured pull runs in a fresh process
against an empty, migrated database (a copy of a template migrated once, as ``pull.py`` does),
configured with ``ACCOUNTS = [{"API_KEY": key, "CONNECTED": "all"}]``
(``benchmarks/settings_accounts.py``), and goes through the public path:
``manage.py stripe_customers pull --all-accounts --parallel K`` when the command has that
option, else ``sync.connect.every_account()`` then ``sync.runs.pull_accounts(accounts,
parallel=K)`` (``--via`` forces one). Our client keeps to its default limit for a test key
(25/s) and never retries (``MAX_RETRIES`` 0): a 429 fails the pull besides being counted.

Per pull: wall seconds (the listing of the accounts and the pull; imports, Django setup and the
DB connection come before the clock starts), customers/s, the requests the emulator received
and the 429s it answered, and the share of the limit, twice: requests/s ÷ the limit (how busy
the key was kept) and customers/s ÷ the limit's pace of customers (limit x 100 per page: 2,500/s
at 25/s; the headline, as ``pull_latency.py`` reports it). When each request arrived and was
answered is recorded here (a wrapper around the emulator app's ``handle``; ``time.monotonic``
is one clock for every process on Linux), which splits the wall time into the lead before the
first request, the window requests were sent in, and the tail after the last answer.

Checked after each pull: every account's customers are in the database with its
``stripe_account`` and nothing else is (no row of the own account, none twice, none deleted), one
succeeded ``PullRun`` per account, and the fewest requests possible were sent (one list of the
accounts, and ceil(customers/100) pages per account, at least one).

Results: a Markdown report on stdout and in ``benchmarks/results/accounts-latest.md``
(``--quick``: ``accounts-quick.md``, so a smoke run never replaces the published one).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a clean clone: benchmarks.* importable
    sys.path.insert(0, str(ROOT))

from benchmarks.common import StatementCounter, source_state  # noqa: E402
from benchmarks.pull import (  # noqa: E402
    API_KEY,
    CHILD_TIMEOUT,
    PAGE_SIZE,
    PG_ADMIN_DB,
    RESULT_PREFIX,
    Databases,
    _request_key,
    child_env,
    postgres_problem,
    proc_memory_mb,
)

SETTINGS = "benchmarks.settings_accounts"
RESULTS = ROOT / "benchmarks" / "results" / "accounts-latest.md"
QUICK_RESULTS = RESULTS.with_name("accounts-quick.md")
PG_BENCH_DB = "bench_stripe_accounts"
#: Which public path a pull takes: the management command, or the two functions it runs.
VIA = ("auto", "command", "functions")


# -- the measured child ------------------------------------------------------------------------


def command_has_all_accounts() -> bool:
    """Whether ``stripe_customers pull`` takes ``--all-accounts`` (it is being added)."""
    from django.core.management import load_command_class
    from django.core.management.base import CommandError

    command = load_command_class("django_stripe_customers", "stripe_customers")
    parser = command.create_parser("manage.py", "stripe_customers")
    try:
        parser.parse_args(["pull", "--all-accounts", "--parallel", "2"])
    except (CommandError, SystemExit):
        return False
    return True


def child() -> int:
    """One measured pull of every account in this process; prints ``BENCH_RESULT {json}``."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count

    from django_stripe_customers.clients import get_client
    from django_stripe_customers.models import Customer, PullRun, StripeAccount
    from django_stripe_customers.sync.connect import every_account
    from django_stripe_customers.sync.runs import pull_accounts

    parallel = int(os.environ["BENCH_PULL_PARALLEL"])
    via = os.environ.get("BENCH_ACCOUNTS_VIA", "auto")
    if via == "auto":
        via = "command" if command_has_all_accounts() else "functions"

    # The client every Account of the key uses (``Account.client``), built before the clock.
    get_client(api_key=os.environ["BENCH_API_KEY"], stripe_account=None)
    connection.ensure_connection()
    statements = StatementCounter()
    out, err = io.StringIO(), io.StringIO()
    error = ""
    listing_seconds: float | None = None
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    try:
        with statements.counting():
            if via == "command":
                call_command(
                    "stripe_customers",
                    "pull",
                    "--all-accounts",
                    "--parallel",
                    str(parallel),
                    stdout=out,
                    stderr=err,
                )
            else:
                accounts = every_account()
                listing_seconds = time.monotonic() - started
                pulled = pull_accounts(accounts, parallel=parallel)
                results = {
                    str(account.stripe_account): result.as_dict()
                    for account, result in pulled.items()
                }
    except Exception as exc:  # reported, with what the database holds after it
        error = f"{type(exc).__name__}: {exc}"[:400]
    ended = time.monotonic()
    ids: dict[str, list[str]] = {}
    for stripe_account, stripe_id in Customer.objects.values_list("stripe_account", "stripe_id"):
        ids.setdefault(str(stripe_account), []).append(stripe_id)
    runs = Counter(
        f"{stripe_account} {status}"
        for stripe_account, status in PullRun.objects.values_list("stripe_account", "status")
    )
    flags = Customer.objects.values_list("livemode", "deleted").annotate(n=Count("id")).order_by()
    from importlib import metadata

    versions = {name: metadata.version(name) for name in ("Django", "requests")}
    if connection.vendor == "postgresql":
        versions["psycopg"] = metadata.version("psycopg")
    print(
        RESULT_PREFIX
        + json.dumps(
            {
                "via": via,
                "error": error,
                "started": started,
                "ended": ended,
                "listing_seconds": listing_seconds,
                "queries": statements.queries,
                "db_seconds": statements.db_seconds,
                "rss_peak_mb": proc_memory_mb("self").get("VmHWM", 0.0),
                "ids": ids,
                "flags": [[livemode, deleted, n] for livemode, deleted, n in flags],
                "runs": dict(runs),
                "stripe_accounts": StripeAccount.objects.filter(connected=True).count(),
                "results": results,
                "output": (out.getvalue().strip().splitlines() or [""])[-1][:300],
                "stderr": err.getvalue().strip()[:300],
                "versions": versions,
            }
        ),
        flush=True,
    )
    return 0


# -- the emulator's side -----------------------------------------------------------------------


class Arrivals:
    """When each request reached the emulator and when its answer was ready (after the
    latency), by ``time.monotonic()``: the emulator app's ``handle``, wrapped."""

    def __init__(self, app: Any) -> None:
        self.times: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        handle = app.handle

        def timed(method: str, target: str, headers: Any, body: bytes) -> Any:
            arrived = time.monotonic()
            try:
                return handle(method, target, headers, body)
            finally:
                with self._lock:
                    self.times.append((arrived, time.monotonic()))

        app.handle = timed

    def since(self, start: int) -> list[tuple[float, float]]:
        with self._lock:
            return sorted(self.times[start:])

    def __len__(self) -> int:
        with self._lock:
            return len(self.times)


def seed(emulator: Any, accounts: int, per_account: int) -> dict[str, set[str]]:
    """``accounts`` connected accounts with ``per_account`` customers each; their ids."""
    seeded = {}
    for number in range(accounts):
        stripe_account = emulator.add_account(account_id=f"acct_1Bench{number:05d}")
        seeded[stripe_account] = set(emulator.seed(per_account, account=stripe_account))
    return seeded


def fewest_requests(accounts: int, per_account: int) -> int:
    """The accounts' list (pages of 100), the own account's empty page, each account's pages."""
    return math.ceil(accounts / 100) + 1 + accounts * max(1, math.ceil(per_account / PAGE_SIZE))


# -- running and measuring ---------------------------------------------------------------------


@dataclass
class Run:
    backend: str
    ok: bool = False
    error: str = ""
    via: str = ""
    seconds: float = 0.0
    listing_seconds: float | None = None
    rows: int = 0
    queries: int = 0
    db_seconds: float = 0.0
    rss_peak_mb: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    per_account: Counter[str] = field(default_factory=Counter)
    lead: float = 0.0
    window: float = 0.0
    tail: float = 0.0
    peak_second: int = 0
    checks: list[tuple[bool, str]] = field(default_factory=list)
    output: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    repeats: list[float] = field(default_factory=list)

    @property
    def http_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def refused(self) -> int:
        return sum(count for key, count in self.requests.items() if key.endswith(" 429"))

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def requests_per_second(self) -> float:
        return self.http_requests / self.seconds if self.seconds else 0.0


def measure(
    emulator: Any,
    arrivals: Arrivals,
    databases: Databases,
    backend: str,
    seeded: dict[str, set[str]],
    args: argparse.Namespace,
) -> Run:
    """One pull of every account in a fresh process, from an empty migrated database."""
    run = Run(backend)
    name = databases.fresh(backend, SETTINGS, Path(sys.executable))
    env = child_env(
        {
            **databases.env(backend, name),
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "BENCH_API_BASE": emulator.url,
            "BENCH_API_KEY": API_KEY,
            "BENCH_PULL_PARALLEL": str(args.parallel),
            "BENCH_ACCOUNTS_VIA": args.via,
        }
    )
    expected = fewest_requests(len(seeded), args.per_account)
    timeout = CHILD_TIMEOUT + 3 * expected * args.latency_ms / 1000
    logged, timed = len(emulator.requests), len(arrivals)
    command = [sys.executable, str(Path(__file__).resolve()), "--child"]
    try:
        proc = subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        run.error = f"timed out after {timeout:.0f}s"
        return run
    finally:
        databases.discard(backend, name)
    for entry in emulator.requests[logged:]:
        run.requests[_request_key(entry.method, entry.path, entry.status)] += 1
        if entry.path == "/v1/customers":
            header = {k.lower(): v for k, v in entry.headers.items()}.get("stripe-account")
            run.per_account[header or "own account"] += 1
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        run.error = f"exit {proc.returncode}: {tail[0][:300]}"
        return run
    data = json.loads(lines[-1][len(RESULT_PREFIX) :])
    run.via, run.error, run.output = data["via"], data["error"], data["output"]
    run.seconds = data["ended"] - data["started"]
    run.repeats = [run.seconds]
    run.listing_seconds = data["listing_seconds"]
    run.queries, run.db_seconds = data["queries"], data["db_seconds"]
    run.rss_peak_mb, run.versions = data["rss_peak_mb"], data["versions"]
    run.rows = sum(len(ids) for ids in data["ids"].values())
    times = arrivals.since(timed)
    if times:
        run.lead = times[0][0] - data["started"]
        run.window = times[-1][0] - times[0][0]
        run.tail = data["ended"] - max(answered for _, answered in times)
        run.peak_second = busiest_second([arrived for arrived, _ in times])
    run.checks = verify(run, data, seeded, expected)
    run.ok = not run.error and all(passed for passed, _ in run.checks)
    if not run.ok and not run.error:
        run.error = "; ".join(text for passed, text in run.checks if not passed)[:400]
    return run


def busiest_second(arrived: list[float]) -> int:
    """The most requests that arrived within one second (``arrived`` sorted)."""
    most, first = 0, 0
    for last, moment in enumerate(arrived):
        while moment - arrived[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def verify(
    run: Run, data: dict[str, Any], seeded: dict[str, set[str]], expected: int
) -> list[tuple[bool, str]]:
    """What the database holds against what the emulator has, and what the pull sent."""
    found = {account: set(ids) for account, ids in data["ids"].items()}
    wrong = [
        account
        for account in sorted(set(found) | set(seeded))
        if found.get(account) != seeded.get(account)
    ]
    stored = sum(len(ids) for ids in data["ids"].values())
    distinct = len(set().union(*found.values())) if found else 0
    flags = {(livemode, deleted): n for livemode, deleted, n in data["flags"]}
    total = sum(len(ids) for ids in seeded.values())
    rows_ok = not wrong and stored == distinct == total and flags == {(False, False): total}
    detail = f"{len(seeded)} accounts, {total:,} rows"
    if wrong:
        detail += f"; wrong for {len(wrong)}: {', '.join(wrong[:3])}"
    if flags != {(False, False): total}:
        detail += f"; (livemode, deleted) counts {flags}"
    pulled = ["None", *seeded]  # the own account is pulled too (it has no customers)
    succeeded = [f"{account} succeeded" for account in pulled]
    runs_ok = data["runs"] == dict.fromkeys(succeeded, 1)
    others = {key: n for key, n in data["runs"].items() if key not in succeeded}
    listed = data["stripe_accounts"]
    heaviest = max(run.per_account.values(), default=0)
    pages = max(1, math.ceil(max(len(ids) for ids in seeded.values()) / PAGE_SIZE))
    return [
        (
            rows_ok,
            "every account's customers in the database with its `stripe_account`, nothing "
            f"else ({detail}; own account: {len(found.get('None', ()))} rows)",
        ),
        (
            runs_ok and listed == len(seeded),
            f"one succeeded PullRun per account ({sum(data['runs'].values())} runs for "
            f"{len(pulled)} accounts{f', others: {others}' if others else ''}); {listed} "
            "StripeAccount rows recorded as connected",
        ),
        (run.refused == 0, f"no 429 ({run.refused})"),
        (
            run.http_requests == expected and heaviest == pages,
            f"fewest requests: {run.http_requests} sent, {expected} needed; at most {heaviest} "
            f"list pages for one account ({pages} needed)",
        ),
    ]


def best_of(runs: list[Run]) -> Run:
    """The median run by seconds, with every time kept."""
    ok = [run for run in runs if run.ok] or runs
    ordered = sorted(ok, key=lambda run: run.seconds)
    chosen = ordered[len(ordered) // 2]
    chosen.repeats = [run.seconds for run in ok]
    return chosen


# -- the report --------------------------------------------------------------------------------


def render(runs: list[Run], notes: list[str], args: argparse.Namespace, elapsed: float) -> str:
    from importlib import metadata

    from django_stripe_customers.stripe.ratelimit import default_burst

    versions: dict[str, str] = {
        "django-stripe-customers": metadata.version("django-stripe-customers")
    }
    for run in runs:
        versions.update(run.versions)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    pace = args.rate_limit * PAGE_SIZE
    total = args.accounts * args.per_account
    burst = default_burst(args.rate_limit)
    floor = fewest_requests(args.accounts, args.per_account)
    # The accounts' list is answered before any page is asked for; then the client's burst,
    # then one request per 1/limit s, the last answered a latency after it left.
    best = 2 * args.latency_ms / 1000 + max(0, floor - 1 - burst) / args.rate_limit
    command = " ".join(["python", "benchmarks/accounts.py", *sys.argv[1:]])
    lines = [
        f"## Pull of every connected account: {args.accounts} accounts x {args.per_account:,} "
        f"customers, {args.latency_ms:g} ms per request, {args.rate_limit:g} requests/s ({stamp})",
        "",
        f"`{command}` at {source_state()}, on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        + f". Whole run {elapsed:.0f} s. {total:,} customers; `--all-accounts --parallel "
        f"{args.parallel}`; the limit allows {args.rate_limit:g} requests/s = {pace:,.0f} "
        "customers/s (pages of 100).",
        "",
        "| database | path | seconds | customers/s | requests | 429s | requests/s "
        "| requests/s ÷ limit | customers/s ÷ limit's pace | peak RSS MB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        if not run.seconds:
            lines.append(f"| {run.backend} | {run.via} | failed: {run.error} |||||||")
            continue
        lines.append(
            f"| {run.backend}{'' if run.ok else ' (FAILED)'} | {run.via} | {run.seconds:.2f} "
            f"| {run.per_second:,.0f} | {run.http_requests:,} | {run.refused} "
            f"| {run.requests_per_second:.1f} | {run.requests_per_second / args.rate_limit:.0%} "
            f"| {run.per_second / pace:.0%} | {run.rss_peak_mb:.1f} |"
        )
    lines += [
        "",
        f"seconds: wall time of the pull in a fresh process (median of {max(1, args.repeat)}), "
        "from before the accounts are listed to the last run recorded. requests: all the "
        "emulator received. The headline share is customers/s ÷ the limit's pace "
        f"({pace:,.0f}/s); requests/s ÷ limit says how busy the key was kept. Neither can "
        f"reach 100% exactly: the accounts' list, answered before any page is asked for, then "
        f"{floor - 1} pages at {args.rate_limit:g}/s after the client's burst of {burst}, take "
        f"at least {best:.2f} s with the latency ({total / best:,.0f} customers/s); the list "
        "and the own account's empty page carry no customer.",
        "",
        "Checks:",
    ]
    for run in runs:
        lines += [f"- {'PASS' if ok else 'FAIL'} {run.backend}: {text}" for ok, text in run.checks]
        if run.error and not run.checks:
            lines.append(f"- FAIL {run.backend}: {run.error}")
    lines += ["", "Details:"]
    for run in runs:
        if not run.seconds:
            continue
        requests = ", ".join(f"{key} x{count:,}" for key, count in sorted(run.requests.items()))
        listing = (
            f"listing the accounts {run.listing_seconds:.2f} s; "
            if run.listing_seconds is not None
            else ""
        )
        window_rate = (run.http_requests - 1) / run.window if run.window else 0.0
        lines.append(
            f"- {run.backend} ({run.via}): runs {', '.join(f'{s:.2f}' for s in run.repeats)} s; "
            f"{listing}first request {run.lead:.2f} s after the start, requests sent over "
            f"{run.window:.2f} s ({window_rate:.1f}/s, at most {run.peak_second} in one "
            f"second), {run.tail:.2f} s from the last answer to the end; {run.queries:,} DB "
            f"statements, {run.db_seconds:.2f} s in cursor.execute; requests: {requests}"
            + (f"; command said: {run.output}" if run.output else "")
        )
    lines += [f"- note: {note}" for note in notes]
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=None, help="connected accounts (50)")
    parser.add_argument("--per-account", type=int, default=None, help="customers per account (200)")
    parser.add_argument("--parallel", type=int, default=16, help="streams (16)")
    parser.add_argument("--latency-ms", type=float, default=300.0, help="per request (300)")
    parser.add_argument(
        "--rate-limit", type=float, default=25.0, help="requests/s (25: Stripe's test mode)"
    )
    parser.add_argument(
        "--backends",
        type=lambda text: [b.strip() for b in text.split(",") if b.strip()],
        default=None,
        help="postgres,sqlite (default both)",
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="pulls per database, median reported (3)"
    )
    parser.add_argument(
        "--via",
        choices=VIA,
        default="auto",
        help="the management command, the functions, or (auto) the command if it has "
        "--all-accounts",
    )
    parser.add_argument("--quick", action="store_true", help="5 accounts x 50, once: a smoke run")
    parser.add_argument("--output", type=Path, default=None, help=f"default {RESULTS.name}")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.accounts = args.accounts or (5 if args.quick else 50)
    args.per_account = args.per_account or (50 if args.quick else 200)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.output = args.output or (QUICK_RESULTS if args.quick else RESULTS)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.child:
        return child()
    started = time.monotonic()
    backends = args.backends or ["postgres", "sqlite"]
    notes: list[str] = []
    if "postgres" in backends and (problem := postgres_problem()):
        notes.append(
            f"PostgreSQL SKIPPED: nothing usable at 127.0.0.1:5432/{PG_ADMIN_DB} ({problem})"
        )
        print("!!! " + notes[-1], flush=True)
        backends = [backend for backend in backends if backend != "postgres"]

    from django_stripe_customers.testing import StripeEmulator

    runs: list[Run] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-accounts-"))
    databases = Databases(workdir, pg_name=PG_BENCH_DB)
    limits = {"latency_ms": args.latency_ms, "rate_limit": args.rate_limit}
    try:
        with StripeEmulator(max_logged_requests=10_000_000, **limits) as emulator:
            arrivals = Arrivals(emulator.app)
            seeded = seed(emulator, args.accounts, args.per_account)
            print(f"seeded {args.accounts} accounts x {args.per_account:,} customers", flush=True)
            for backend in backends:
                attempts = []
                for _ in range(max(1, args.repeat)):
                    attempt = measure(emulator, arrivals, databases, backend, seeded, args)
                    attempts.append(attempt)
                    print(f"  {backend:8} {summary(attempt, args)}", flush=True)
                runs.append(best_of(attempts))
    finally:
        databases.close()
        shutil.rmtree(workdir, ignore_errors=True)

    report = render(runs, notes, args, time.monotonic() - started)
    print()
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report + "\n")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"\n(written to {shown})")
    return 0 if runs and all(run.ok for run in runs) else 1


def summary(run: Run, args: argparse.Namespace) -> str:
    if not run.seconds:
        return f"FAILED {run.error}"
    state = "ok" if run.ok else f"FAILED {run.error}"
    return (
        f"{run.via:9} {run.seconds:6.2f}s {run.per_second:6,.0f}/s {run.http_requests:5,} "
        f"requests {run.refused} x 429, {run.per_second / (args.rate_limit * PAGE_SIZE):.0%} "
        f"of the pace: {state}"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
