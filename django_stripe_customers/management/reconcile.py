"""``manage.py stripe_customers reconcile``: bring the mirror up to date at the cost of what
changed (``sync.reconcile``), or audit it against Stripe without writing (``sync.audit``)."""

from __future__ import annotations

from argparse import ArgumentParser, ArgumentTypeError
from typing import Any

from ..sync.audit import audit
from ..sync.reconcile import ReconcileReport, Route, reconcile
from .account_options import add_account_options, chosen_accounts
from .arguments import counted
from .status import Out


def add_reconcile_arguments(parser: ArgumentParser) -> None:
    add_account_options(parser)
    parser.add_argument(
        "--full", action="store_true", help="a full pull, whatever the cursor (then restart it)"
    )
    parser.add_argument(
        "--parallel", type=int, default=1, metavar="K", help="streams of a full pull, if any"
    )
    parser.add_argument(
        "--audit",
        action="store_true",
        help="compare every row with Stripe, page by page, and report the differences; "
        "write nothing",
    )
    parser.add_argument(
        "--sample",
        type=percentage,
        default=None,
        metavar="P%",
        help="with --audit: compare about P%% of the customers (slices of the created range)",
    )


def percentage(value: str) -> float:
    """``"1%"`` or ``"1"`` -> 0.01, between 0 (excluded) and 100."""
    try:
        number = float(value.rstrip("%"))
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not a percentage (e.g. 1%)") from None
    if not 0 < number <= 100:
        raise ArgumentTypeError(f"{value!r}: a percentage above 0 and at most 100")
    return number / 100


def run_reconcile(out: Out, options: dict[str, Any]) -> int:
    """Reconcile (or audit) each chosen account; one line each. Returns how many events
    failed (an audit: how many rows drifted)."""
    if options["audit"]:
        return run_audit(out, options)
    failed = 0
    for account in chosen_accounts(options):
        report = reconcile(account, parallel=max(1, options["parallel"]), full=options["full"])
        out.write(describe(report) + "\n")
        failed += report.failed
    return failed


def run_audit(out: Out, options: dict[str, Any], shown: int = 20) -> int:
    drifted = 0
    for account in chosen_accounts(options):
        report = audit(account, sample=options["sample"])
        what = "compared" if report.sample is None else f"compared (a {report.sample:.1%} sample)"
        counts = ", ".join(f"{n:,} {kind}" for kind, n in sorted(report.counts.items()))
        out.write(
            f"{account}: {counted(report.compared, 'customer')} {what}: "
            f"{counts or 'no difference'}; {counted(report.requests, 'request')} in "
            f"{report.seconds:.1f}s; nothing written.\n"
        )
        for drift in report.drifts[:shown]:
            fields = f" ({', '.join(drift.fields)})" if drift.fields else ""
            out.write(f"  {drift.stripe_id}: {drift.kind}{fields}\n")
        if len(report.drifts) > shown:
            out.write(f"  ... and {sum(report.counts.values()) - shown:,} more\n")
        drifted += report.drifted
    return drifted


def describe(report: ReconcileReport) -> str:
    cost = f"{counted(report.requests, 'request')} in {report.seconds:.1f}s"
    if report.route is Route.FULL_PULL:
        pulled = report.pull
        seen = counted(pulled.seen if pulled else 0, "customer")
        changed = f"{pulled.created:,} created, {pulled.updated:,} updated, " if pulled else ""
        deleted = f"{pulled.marked_deleted:,} marked deleted" if pulled else ""
        return (
            f"{report.account}: full pull ({report.reason}): {seen}, {changed}{deleted}; {cost}; "
            f"cursor {report.cursor or 'at the pull start'}."
        )
    applied = ", ".join(f"{n:,} {kind}" for kind, n in sorted(report.applied.items()))
    failed = f", {report.failed:,} failed (cursor kept)" if report.failed else ""
    problems = "".join(f"\n  not an event to store: {problem}" for problem in report.problems)
    return (
        f"{report.account}: {counted(report.listed, 'event')} since the cursor: "
        f"{applied or 'nothing to apply'}, {report.stale:,} stale{failed}; {cost}; "
        f"cursor {report.cursor}.{problems}"
    )
