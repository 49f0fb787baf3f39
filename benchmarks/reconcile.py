"""The incremental reconcile against a full pull, after 1% of the customers changed upstream.

    .venv/bin/python benchmarks/reconcile.py                 # N = 100,000, PostgreSQL
    .venv/bin/python benchmarks/reconcile.py --quick         # N = 2,000: a smoke run
    .venv/bin/python benchmarks/reconcile.py --n 20000 --latency-ms 300 --rate-limit 25

Our Stripe emulator runs in this process, on loopback. The steps:

1. Seed N customers (plain data, no events), then edit one of them through the HTTP API so
   that Stripe has an event before the mirror is synced (the cursor is then an event id, and
   the reconcile lists ``GET /v1/events?ending_before=<cursor>``, its usual route).
2. Sync a migrated PostgreSQL database with a first ``stripe_customers reconcile --parallel
   16``: no cursor yet, so a full pull, which restarts the cursor at the newest event. The
   emulator has no latency or limit then, nor has our client: this is set-up, not measured.
   The customers' data is recorded (a digest of every mirrored column per row).
3. Change 1% of the customers through the emulator's HTTP API (no latency or limit
   meanwhile), which emits a ``customer.*`` event per change as Stripe does: 0.8% edited
   (``POST /v1/customers/{id}``: name, email, ``metadata[bench]``), 0.1% new (``POST
   /v1/customers``), 0.1% deleted (``DELETE /v1/customers/{id}``), in a shuffled order, on
   distinct customers. Then the emulator answers every request ``--latency-ms`` (300) after
   it arrived and refuses more than ``--rate-limit`` requests/s (25: Stripe's test mode) with a
   429; our client keeps to that limit (``RATE_LIMIT``) and never retries (``MAX_RETRIES`` 0).

Each measured run is a fresh process against its own copy of the synced database
(``CREATE DATABASE ... TEMPLATE``), running the management command through ``call_command``:

- (a) ``stripe_customers reconcile --parallel 16``: the events since the cursor, listed in 16
  streams (the page after the cursor and the newest page at once, then slices of the time
  between), each page stored and applied in bulk as it comes;
- (a1) ``stripe_customers reconcile``: the same in one stream (``ending_before``, a page at a
  time), for comparison;
- (b) ``stripe_customers pull --parallel 16``: a full pull, our fastest;
- (c) ``stripe_customers reconcile --parallel 16`` with the cursor's time set 31 days back
  (before the clock): it must fall back to a full pull and say why (``--parallel 16``, or a
  one-stream pull of 100,000 takes ~6 minutes at this pace).

Per run: wall seconds of the command alone (imports, Django setup and the DB connection come
before the clock starts; the whole process's life is given too), the HTTP requests the emulator
received and the 429s it answered. After each run every row is checked against the synced
record and the changes: the edited customers have the new values, the new ones are rows, the
deleted ones are flagged ``deleted``, and every other row's mirrored columns are unchanged
(bookkeeping such as ``synced_at`` aside). The targets (issue 22): (a) applies every change
with at most 2% of (b)'s requests and is at least 20x faster than (b), in the same run.

Results: stdout and ``benchmarks/results/reconcile-latest.md`` (``--quick``:
``reconcile-quick.md``, git-ignored).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
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
    _pg,
    _request_key,
    child_env,
    postgres_problem,
    proc_memory_mb,
)

SETTINGS = "benchmarks.settings"
RESULTS = ROOT / "benchmarks" / "results" / "reconcile-latest.md"
QUICK_RESULTS = RESULTS.with_name("reconcile-quick.md")
PG_BENCH_DB = "bench_stripe_reconcile"
SYNCED_DB = f"{PG_BENCH_DB}_synced"
#: The changes upstream, as shares of N.
SHARES = {"edited": 0.008, "created": 0.001, "deleted": 0.001}
FULL_PULL_PARALLEL = 16
STALE_DAYS = 31
#: Issue 22's targets for the reconcile against the full pull.
GOAL_REQUEST_SHARE = 0.02
GOAL_TIMES_FASTER = 20.0
RNG_SEED = 22
#: How much slower than before the changes (b) may be and still count as the same pull.
PULL_SLOWDOWN_ALLOWED = 1.5

Snapshot = dict[str, Any]  # {"digests": {stripe_id: [deleted, digest]}, "watched": {...}}


# -- the measured child ------------------------------------------------------------------------


def child() -> int:
    """One management command in this process, timed; then the rows' digests to
    ``BENCH_STATE_FILE`` and ``BENCH_RESULT {json}`` on stdout."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django.utils import timezone as dj_timezone

    from django_stripe_customers.clients import get_client
    from django_stripe_customers.models import StripeAccount, WebhookEvent

    command: list[str] = json.loads(os.environ["BENCH_COMMAND"])
    stale_days = float(os.environ.get("BENCH_STALE_DAYS") or 0)
    get_client()  # the client (settings read, session made) before the clock starts
    connection.ensure_connection()
    statements = StatementCounter()
    if stale_days:
        StripeAccount.objects.update(
            events_cursor_at=dj_timezone.now() - timedelta(days=stale_days)
        )
    cursor_before = _cursors(StripeAccount)
    out, err = io.StringIO(), io.StringIO()
    error = ""
    started = time.monotonic()
    try:
        with statements.counting():
            call_command("stripe_customers", *command, stdout=out, stderr=err)
    except Exception as exc:  # reported, with what the database holds after it
        error = f"{type(exc).__name__}: {exc}"[:400]
    ended = time.monotonic()  # one clock for every process on Linux: the parent reads it
    seconds = ended - started
    watch_file = os.environ.get("BENCH_WATCH_FILE")
    watch = set(json.loads(Path(watch_file).read_text())) if watch_file else set()
    Path(os.environ["BENCH_STATE_FILE"]).write_text(json.dumps(snapshot(watch)))
    events = WebhookEvent.objects.values_list("type", "status").annotate(n=Count("id")).order_by()
    print(
        RESULT_PREFIX
        + json.dumps(
            {
                "seconds": seconds,
                "ended": ended,
                "queries": statements.queries,
                "db_seconds": statements.db_seconds,
                "error": error,
                "output": out.getvalue().strip(),
                "stderr": err.getvalue().strip()[:600],
                "cursor_before": cursor_before,
                "cursor_after": _cursors(StripeAccount),
                "events": {f"{kind} {status}": n for kind, status, n in events},
                "rss_peak_mb": proc_memory_mb("self").get("VmHWM", 0.0),
            }
        ),
        flush=True,
    )
    return 0


def _cursors(model: Any) -> list[list[str]]:
    return [
        [str(cursor), "" if at is None else at.isoformat()]
        for cursor, at in model.objects.values_list("events_cursor", "events_cursor_at")
    ]


def snapshot(watch: set[str]) -> Snapshot:
    """Every row's mirrored columns, digested; the values checked of the ``watch`` ids."""
    from django_stripe_customers.models import Customer
    from django_stripe_customers.schema import MIRRORED

    kept = {*MIRRORED, "stripe_id", "stripe_account", "deleted", "user"}
    columns = [f.attname for f in Customer._meta.concrete_fields if f.name in kept]
    digests: dict[str, list[Any]] = {}
    watched: dict[str, dict[str, Any]] = {}
    for row in Customer.objects.order_by().values(*columns).iterator(chunk_size=5000):
        stripe_id = str(row["stripe_id"])
        text = json.dumps(row, sort_keys=True, default=str).encode()
        digests[stripe_id] = [row["deleted"], hashlib.blake2b(text, digest_size=10).hexdigest()]
        if stripe_id in watch:
            watched[stripe_id] = {
                name: row[name] for name in ("name", "email", "metadata", "deleted")
            }
    return {"digests": digests, "watched": watched, "columns": len(columns)}


# -- the changes upstream ----------------------------------------------------------------------


class Upstream:
    """The emulator's HTTP API, as a Stripe user changes customers (one keep-alive session)."""

    def __init__(self, base: str) -> None:
        import requests

        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {API_KEY}"

    def call(self, method: str, path: str, data: dict[str, str] | None = None) -> dict[str, Any]:
        answer = self.session.request(method, self.base + path, data=data, timeout=30)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result


@dataclass
class Changes:
    """What was changed upstream: id -> the values sent (edited, created), or deleted ids."""

    edited: dict[str, dict[str, str]] = field(default_factory=dict)
    created: dict[str, dict[str, str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return len(self.edited) + len(self.created) + len(self.deleted)

    def watched(self) -> list[str]:
        return [*self.edited, *self.created, *self.deleted]


def counts(n: int) -> dict[str, int]:
    return {kind: max(1, round(n * share)) for kind, share in SHARES.items()}


def make_changes(upstream: Upstream, ids: list[str], n: int) -> Changes:
    """Edit, create and delete customers (``SHARES`` of N) in a shuffled order."""
    rng = random.Random(RNG_SEED)
    wanted = counts(n)
    chosen = rng.sample(ids, wanted["edited"] + wanted["deleted"])
    plan = [("edit", stripe_id) for stripe_id in chosen[: wanted["edited"]]]
    plan += [("delete", stripe_id) for stripe_id in chosen[wanted["edited"] :]]
    plan += [("create", str(number)) for number in range(wanted["created"])]
    rng.shuffle(plan)
    changes = Changes()
    started = time.monotonic()
    for number, (action, target) in enumerate(plan):
        if action == "edit":
            values = _values("Edited", number)
            upstream.call("POST", f"/v1/customers/{target}", _form(values))
            changes.edited[target] = values
        elif action == "delete":
            upstream.call("DELETE", f"/v1/customers/{target}")
            changes.deleted.append(target)
        else:
            values = _values("New", number)
            created = upstream.call("POST", "/v1/customers", _form(values))
            changes.created[str(created["id"])] = values
    changes.seconds = time.monotonic() - started
    return changes


def _values(kind: str, number: int) -> dict[str, str]:
    return {
        "name": f"{kind} customer {number}",
        "email": f"{kind.lower()}-{number}@example.com",
        "bench": f"{kind.lower()}-{number}",
    }


def _form(values: dict[str, str]) -> dict[str, str]:
    return {"name": values["name"], "email": values["email"], "metadata[bench]": values["bench"]}


# -- running and checking ----------------------------------------------------------------------


@dataclass
class Run:
    label: str
    command: list[str]
    stale_days: float = 0.0
    ok: bool = False
    error: str = ""
    seconds: float = 0.0  # the command alone
    process_seconds: float = 0.0  # the child's life up to the command's end (not the check)
    queries: int = 0
    db_seconds: float = 0.0
    output: str = ""
    requests: Counter[str] = field(default_factory=Counter)
    # GET /v1/events neither ``ending_before`` an event nor ``created[gte]`` a time: unbounded
    events_without_cursor: int = 0
    events_since: list[int] = field(default_factory=list)  # their ``created[gte]`` times
    posts: int = 0  # requests that are not GETs
    cursor_before: list[list[str]] = field(default_factory=list)
    cursor_after: list[list[str]] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    rss_peak_mb: float = 0.0
    checks: list[tuple[bool, str]] = field(default_factory=list)
    state: Snapshot = field(default_factory=dict)

    @property
    def http_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def refused(self) -> int:
        return sum(count for key, count in self.requests.items() if key.endswith(" 429"))

    @property
    def route(self) -> str:
        if self.command[0] == "pull":
            return "full pull (asked)"
        if "full pull (" in self.output:
            return "full pull (fallback)"
        return "events" if "since the cursor" in self.output else "?"


def run_child(
    emulator: Any,
    workdir: Path,
    run: Run,
    database: str,
    *,
    rate_limit: float,
    timeout: float,
    watch: list[str] | None = None,
) -> Run:
    """``run.command`` in a fresh process against ``database``; fills ``run`` in."""
    state_file = workdir / f"state-{run.label[:3].strip('() ')}-{time.monotonic_ns()}.json"
    env = {
        "BENCH_DB": "postgres",
        "BENCH_PG_NAME": database,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "BENCH_API_BASE": emulator.url,
        "BENCH_API_KEY": API_KEY,
        "BENCH_RATE_LIMIT": f"{rate_limit:g}",  # 0: no limit of ours (the set-up sync)
        "BENCH_COMMAND": json.dumps(run.command),
        "BENCH_STATE_FILE": str(state_file),
    }
    if run.stale_days:
        env["BENCH_STALE_DAYS"] = f"{run.stale_days:g}"
    if watch is not None:
        watch_file = workdir / "watch.json"
        watch_file.write_text(json.dumps(watch))
        env["BENCH_WATCH_FILE"] = str(watch_file)
    logged = len(emulator.requests)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child"],
            env=child_env(env),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        run.error = f"timed out after {timeout:.0f}s"
        return run
    for entry in emulator.requests[logged:]:
        run.requests[_request_key(entry.method, entry.path, entry.status)] += 1
        if entry.method != "GET":
            run.posts += 1
        elif entry.path == "/v1/events" and "ending_before" not in entry.params:
            since = (entry.params.get("created") or {}).get("gte")
            if since is None:
                run.events_without_cursor += 1
            else:
                run.events_since.append(int(since))
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        run.error = f"exit {proc.returncode}: {tail[0][:300]}"
        return run
    data = json.loads(lines[-1][len(RESULT_PREFIX) :])
    run.seconds, run.error = data["seconds"], data["error"]
    run.process_seconds = data["ended"] - started
    run.queries, run.db_seconds = data["queries"], data["db_seconds"]
    run.output = " / ".join(line.strip() for line in data["output"].splitlines() if line.strip())
    run.cursor_before, run.cursor_after = data["cursor_before"], data["cursor_after"]
    run.events, run.rss_peak_mb = data["events"], data["rss_peak_mb"]
    if data["stderr"]:
        run.output += f" [stderr: {data['stderr']}]"
    run.state = json.loads(state_file.read_text())
    state_file.unlink()
    run.ok = not run.error
    return run


def verify(after: Snapshot, synced: Snapshot, changes: Changes) -> list[tuple[bool, str]]:
    """Every change applied, nothing else changed: ``after`` against the synced record."""
    rows, watched = after["digests"], after["watched"]
    before = synced["digests"]

    def has(stripe_id: str, values: dict[str, str]) -> bool:
        row = watched.get(stripe_id)
        return (
            row is not None
            and not row["deleted"]
            and row["name"] == values["name"]
            and row["email"] == values["email"]
            and (row["metadata"] or {}).get("bench") == values["bench"]
        )

    edited = [i for i, values in changes.edited.items() if not has(i, values)]
    created = [i for i, values in changes.created.items() if not has(i, values)]
    deleted = [i for i in changes.deleted if not (watched.get(i) or {}).get("deleted")]
    untouched = set(before) - set(changes.edited) - set(changes.deleted)
    drifted = sorted(i for i in untouched if rows.get(i) != before[i])
    extra = sorted(set(rows) - set(before) - set(changes.created))

    def part(kind: str, wrong: list[str], of: int) -> tuple[bool, str]:
        shown = f" (e.g. {', '.join(wrong[:3])})" if wrong else ""
        return not wrong, f"{kind}: {of - len(wrong):,} of {of:,} right{shown}"

    return [
        part("edited (name, email, metadata[bench])", edited, len(changes.edited)),
        part("new rows (those values)", created, len(changes.created)),
        part("deleted rows flagged `deleted`", deleted, len(changes.deleted)),
        part("other rows unchanged (mirrored columns)", drifted, len(untouched)),
        (not extra, f"no other row ({len(extra)} unexpected)"),
    ]


def copy_synced() -> str:
    """A copy of the synced database for one measured run."""
    _pg(
        f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)',
        f'CREATE DATABASE "{PG_BENCH_DB}" TEMPLATE "{SYNCED_DB}" STRATEGY FILE_COPY',
    )
    return PG_BENCH_DB


def newest_event(emulator: Any) -> str:
    customer_events = [e for e in emulator.events if str(e["type"]).startswith("customer.")]
    return str(customer_events[-1]["id"]) if customer_events else ""


# -- main --------------------------------------------------------------------------------------


@dataclass
class Setup:
    n: int
    seed_seconds: float = 0.0
    migrate_seconds: float = 0.0
    sync: Run | None = None
    changes: Changes = field(default_factory=Changes)
    presync_event: str = ""
    presync_created: int = 0  # the cursor event's second
    newest_event: str = ""


PARALLEL = ["--parallel", str(FULL_PULL_PARALLEL)]


def reference_run() -> Run:
    """A full pull before the changes: what our fastest full pull takes here when the newest
    customers are as spread in time as the rest."""
    return Run(
        f"(b0) full pull before the changes, --parallel {FULL_PULL_PARALLEL}", ["pull", *PARALLEL]
    )


def measured_plan() -> list[Run]:
    parallel = PARALLEL
    return [
        Run(f"(a) reconcile, --parallel {FULL_PULL_PARALLEL}", ["reconcile", *parallel]),
        Run("(a1) reconcile, one stream", ["reconcile"]),
        Run(f"(b) full pull, --parallel {FULL_PULL_PARALLEL}", ["pull", *parallel]),
        Run(f"(c) reconcile, cursor {STALE_DAYS} days old", ["reconcile", *parallel], STALE_DAYS),
    ]


def measure(
    emulator: Any, workdir: Path, run: Run, sync: Run, changes: Changes, args: argparse.Namespace
) -> Run:
    """``run`` against a fresh copy of the synced database, then its rows checked."""
    timeout = CHILD_TIMEOUT + 3 * math.ceil(args.n / PAGE_SIZE) * args.latency_ms / 1000
    watch = changes.watched()
    run_child(
        emulator,
        workdir,
        run,
        copy_synced(),
        rate_limit=args.rate_limit,
        timeout=timeout,
        watch=watch,
    )
    if run.state:
        run.checks = verify(run.state, sync.state, changes)
        run.state = {}
    print(f"  {run.label:52} {summary(run)}", flush=True)
    return run


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.child:
        return child()
    started = time.monotonic()
    if problem := postgres_problem():
        print(f"!!! PostgreSQL needed at 127.0.0.1:5432/{PG_ADMIN_DB}: {problem}", file=sys.stderr)
        return 2

    from django_stripe_customers.testing import StripeEmulator

    setup = Setup(args.n)
    runs: list[Run] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    databases = Databases(workdir, pg_name=PG_BENCH_DB)
    timeout = CHILD_TIMEOUT + 3 * math.ceil(args.n / PAGE_SIZE) * args.latency_ms / 1000
    try:
        with StripeEmulator(max_logged_requests=10_000_000) as emulator:
            clock = time.monotonic()
            ids = emulator.seed(args.n)
            setup.seed_seconds = time.monotonic() - clock
            upstream = Upstream(emulator.url)
            presync = _values("Presync", 0)
            upstream.call("POST", f"/v1/customers/{ids[0]}", _form(presync))
            setup.presync_event = newest_event(emulator)
            setup.presync_created = next(
                int(e["created"]) for e in emulator.events if e["id"] == setup.presync_event
            )
            print(f"N={args.n:,}: seeded in {setup.seed_seconds:.1f}s", flush=True)

            clock = time.monotonic()
            template = databases.template("postgres", SETTINGS, Path(sys.executable))
            setup.migrate_seconds = time.monotonic() - clock
            _pg(
                f'DROP DATABASE IF EXISTS "{SYNCED_DB}" WITH (FORCE)',
                f'CREATE DATABASE "{SYNCED_DB}" TEMPLATE "{template}"',
            )
            sync = Run("first sync", ["reconcile", "--parallel", str(FULL_PULL_PARALLEL)])
            setup.sync = run_child(
                emulator, workdir, sync, SYNCED_DB, rate_limit=0, timeout=timeout
            )
            print(f"  first sync (no latency, not measured): {summary(sync)}", flush=True)
            if not sync.ok or len(sync.state.get("digests", {})) != args.n:
                print(f"!!! the first sync failed: {sync.error or sync.output}", file=sys.stderr)
                return 1

            limits = {"latency_ms": args.latency_ms, "rate_limit": args.rate_limit}
            emulator.set_limits(**limits)
            reference = measure(emulator, workdir, reference_run(), sync, Changes(), args)
            runs.append(reference)
            emulator.set_limits()

            time.sleep(1.0)  # the changes come after the second the mirror was synced in
            setup.changes = make_changes(upstream, ids[1:], args.n)
            setup.newest_event = newest_event(emulator)
            print(
                f"  changed {setup.changes.total:,} customers upstream in "
                f"{setup.changes.seconds:.1f}s ({len(setup.changes.edited):,} edited, "
                f"{len(setup.changes.created):,} new, {len(setup.changes.deleted):,} deleted)",
                flush=True,
            )

            emulator.set_limits(**limits)
            for run in measured_plan():
                runs.append(measure(emulator, workdir, run, sync, setup.changes, args))
            emulator.set_limits()
    finally:
        databases.close()
        _pg(f'DROP DATABASE IF EXISTS "{SYNCED_DB}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)

    verdicts = checks(runs, setup)
    report = render(runs, setup, verdicts, args, time.monotonic() - started)
    print()
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report + "\n")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"\n(written to {shown})")
    return 0 if all(passed for passed, _ in verdicts) else 1


def summary(run: Run) -> str:
    if not run.ok:
        return f"FAILED {run.error}"
    return (
        f"{run.seconds:7.2f}s ({run.process_seconds:.2f}s process) {run.http_requests:5,} "
        f"requests {run.refused} x 429, route {run.route}"
    )


# -- the report --------------------------------------------------------------------------------


def checks(runs: list[Run], setup: Setup) -> list[tuple[bool, str]]:
    """Issue 22's targets and what each run must have done."""
    reference, events, one_stream, pull, stale = runs
    out: list[tuple[bool, str]] = []
    for run in runs:
        failed = [text for passed, text in run.checks if not passed]
        out.append(
            (
                run.ok and bool(run.checks) and not failed,
                f"{run.label}: every change applied, nothing else changed"
                + (f" ({'; '.join(failed)})" if failed else "")
                + (f" ({run.error})" if run.error else ""),
            )
        )
    for run in (events, one_stream):
        out.append(_went_by_the_events(run, setup))
    if events.ok and pull.ok and reference.ok and pull.http_requests:
        share = events.http_requests / pull.http_requests
        out.append(
            (
                share <= GOAL_REQUEST_SHARE,
                f"≤ {GOAL_REQUEST_SHARE:.0%} of the full pull's requests: "
                f"{events.http_requests:,} vs {pull.http_requests:,} ((b)) = {share:.2%}",
            )
        )
        fastest = min(reference, pull, key=lambda run: run.seconds)
        times = fastest.seconds / events.seconds
        out.append(
            (
                times >= GOAL_TIMES_FASTER,
                f"≥ {GOAL_TIMES_FASTER:.0f}x faster than the fastest full pull: "
                f"{fastest.label.split()[0]} {fastest.seconds:.2f} s / (a) {events.seconds:.2f} s "
                f"= {times:.1f}x (whole processes: {fastest.process_seconds:.2f} s / "
                f"{events.process_seconds:.2f} s = "
                f"{fastest.process_seconds / events.process_seconds:.1f}x; against (b), the "
                f"pull of the changed data: {pull.seconds / events.seconds:.1f}x)",
            )
        )
        slower = pull.seconds / reference.seconds
        out.append(
            (
                slower <= PULL_SLOWDOWN_ALLOWED,
                f"(b) kept its streams busy: {pull.seconds:.2f} s after the changes vs "
                f"{reference.seconds:.2f} s before them = {slower:.1f}x (allowed "
                f"{PULL_SLOWDOWN_ALLOWED:g}x; the {len(setup.changes.created):,} new customers, "
                "created within a few seconds, are the newest page)",
            )
        )
    refused = sum(run.refused for run in runs)
    out.append((refused == 0, f"no 429: {refused} in {len(runs)} runs"))
    posts = sum(run.posts for run in runs)
    out.append((posts == 0, f"nothing written to Stripe: {posts} requests other than GET"))
    out.append(
        (
            stale.route == "full pull (fallback)"
            and "30 days" in stale.output
            and [c for c, _ in stale.cursor_after] == [setup.newest_event],
            f"(c) fell back to a full pull and said why; cursor restarted at "
            f"{_cursor(stale.cursor_after)}: `{stale.output or stale.error}`",
        )
    )
    return out


def _went_by_the_events(run: Run, setup: Setup) -> tuple[bool, str]:
    """The run listed only events after the cursor (``ending_before`` it, or ``created[gte]``
    its second or later) and moved the cursor to the newest event."""
    early = [since for since in run.events_since if since < setup.presync_created]
    return (
        run.route == "events"
        and run.events_without_cursor == 0
        and not early
        and [c for c, _ in run.cursor_before] == [setup.presync_event]
        and [c for c, _ in run.cursor_after] == [setup.newest_event],
        f"{run.label.split()[0]} went by the events: every `GET /v1/events` after the cursor "
        f"(`ending_before` it, or `created[gte]` its second or later; "
        f"{run.events_without_cursor + len(early)} not), cursor "
        f"{_cursor(run.cursor_before)} -> {_cursor(run.cursor_after)} (the newest event: "
        f"{setup.newest_event})",
    )


def _cursor(cursors: list[list[str]]) -> str:
    return ", ".join(f"{cursor or '(none)'} @ {at[:19] or '(none)'}" for cursor, at in cursors)


def render(
    runs: list[Run],
    setup: Setup,
    verdicts: list[tuple[bool, str]],
    args: argparse.Namespace,
    elapsed: float,
) -> str:
    from importlib import metadata

    versions = {
        name: metadata.version(name)
        for name in ("django-stripe-customers", "Django", "psycopg", "requests")
    }
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    wanted = setup.changes
    command = " ".join(["python", "benchmarks/reconcile.py", *sys.argv[1:]])
    lines = [
        f"## Reconcile after 1% changed upstream: N = {setup.n:,}, {args.latency_ms:g} ms per "
        f"request, {args.rate_limit:g} requests/s, PostgreSQL ({stamp})",
        "",
        f"`{command}` at {source_state()}, on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        + f". Whole run {elapsed:.0f} s. Changed upstream after the sync, through the HTTP API "
        f"(one event each): {len(wanted.edited):,} edited, {len(wanted.created):,} new, "
        f"{len(wanted.deleted):,} deleted ({wanted.total:,} = "
        f"{wanted.total / setup.n:.1%} of N), shuffled.",
        "",
        "| run | command | route | seconds | process s | HTTP requests | 429s "
        "| events applied | peak RSS MB |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        if not run.seconds:
            lines.append(f"| {run.label} | failed: {run.error} ||||||||")
            continue
        applied = sum(n for key, n in run.events.items() if key.endswith(" processed"))
        lines.append(
            f"| {run.label} | `stripe_customers {' '.join(run.command)}` | {run.route} "
            f"| {run.seconds:.2f} | {run.process_seconds:.2f} | {run.http_requests:,} "
            f"| {run.refused} | {applied:,} | {run.rss_peak_mb:.1f} |"
        )
    sync = setup.sync
    lines += [
        "",
        "seconds: the command alone, in a fresh process against a copy of the synced "
        "database (imports, Django setup, the DB connection before the clock); process s: the "
        "child process from its start to the command's end. HTTP requests: all the emulator "
        "received during the run. events applied: stored events `processed` after the run. "
        "(b0) is the same full pull as (b) before the changes were made: our fastest full "
        "pull of this N here.",
        "",
        "Checks:",
        *[f"- {'PASS' if passed else 'FAIL'} {text}" for passed, text in verdicts],
        "",
        "Details:",
    ]
    for run in runs:
        requests = ", ".join(f"{key} x{count:,}" for key, count in sorted(run.requests.items()))
        events = ", ".join(f"{key} x{n:,}" for key, n in sorted(run.events.items()))
        lines.append(
            f"- {run.label}: requests: {requests or 'none'}; {run.queries:,} DB statements, "
            f"{run.db_seconds:.2f} s in cursor.execute; events stored: {events or 'none'}; "
            f"the command said: `{run.output or run.error}`"
        )
        lines += [f"  - {'ok' if passed else 'WRONG'}: {text}" for passed, text in run.checks]
    if sync is not None:
        lines.append(
            f"- set-up: seeded in {setup.seed_seconds:.1f} s; template migrated in "
            f"{setup.migrate_seconds:.1f} s; first sync (`stripe_customers "
            f"{' '.join(sync.command)}`, no latency, no limit) {sync.seconds:.1f} s, "
            f"{sync.http_requests:,} requests: `{sync.output}`; the changes took "
            f"{wanted.seconds:.1f} s; the cursor before them: {setup.presync_event} (one edit "
            "made before the sync)"
        )
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="customers (100,000; quick: 2,000)")
    parser.add_argument("--latency-ms", type=float, default=300.0, help="per request (300)")
    parser.add_argument(
        "--rate-limit", type=float, default=25.0, help="requests/s (25: Stripe's test mode)"
    )
    parser.add_argument("--quick", action="store_true", help="N = 2,000: a smoke run")
    parser.add_argument("--output", type=Path, default=None, help=f"default {RESULTS.name}")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.n = args.n or (2_000 if args.quick else 100_000)
    args.output = args.output or (QUICK_RESULTS if args.quick else RESULTS)
    return args


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
