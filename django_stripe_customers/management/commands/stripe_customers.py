"""``manage.py stripe_customers pull|push|replay|events|status|erase``: operate the mirror.

Expected failures (no key, Stripe unreachable, a 404) print one clear line and exit non-zero;
they never print a traceback.
"""

from __future__ import annotations

from argparse import ArgumentParser
from contextlib import nullcontext
from typing import Any, Final

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ...accounts import Account
from ...models import Customer, SyncStatus, WebhookEvent
from ...stripe import StripeError
from ...sync import drain, events, outbox, pull, push, runs
from ...sync.pages import PullResult
from ..account_options import add_account_options, chosen_accounts
from ..arguments import add_django_options, counted, parse_moment
from ..progress import Bar, Progress
from ..reconcile import add_reconcile_arguments, run_reconcile
from ..status import write_status


class Command(BaseCommand):
    help = "Pull customers from Stripe, push local edits, or show the state of the mirror."

    def add_arguments(self, parser: ArgumentParser) -> None:
        commands = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
        pull_parser = commands.add_parser(
            "pull", help="reconcile customers from Stripe (all, a created range, or some ids)"
        )
        pull_parser.add_argument(
            "stripe_ids",
            nargs="*",
            metavar="STRIPE_ID",
            help="cus_... ids to pull one by one (default: every customer, paged)",
        )
        pull_parser.add_argument(
            "--since", type=parse_moment, help="only customers created at or after DATE"
        )
        pull_parser.add_argument(
            "--until", type=parse_moment, help="only customers created before DATE"
        )
        pull_parser.add_argument(
            "--parallel",
            type=int,
            default=1,
            metavar="K",
            help="fetch with K streams in this process (paced by RATE_LIMIT); 8-16 reach "
            "Stripe's rate limit at its usual latency",
        )
        pull_parser.add_argument(
            "--partitions", type=int, default=1, help="split the pull across K Celery workers"
        )
        pull_parser.add_argument(
            "--timeout", type=float, default=None, help="give up waiting for workers after S s"
        )
        pull_parser.add_argument(
            "--dry-run", action="store_true", help="report what would change, change nothing"
        )
        add_account_options(pull_parser)
        push_parser = commands.add_parser(
            "push", help="push local edits to Stripe now (pending rows, or some customers)"
        )
        push_parser.add_argument(
            "customers", nargs="*", metavar="STRIPE_ID_OR_PK", help="cus_... ids or local pks"
        )
        push_parser.add_argument(
            "--pending", action="store_true", help="every pending row (what the sweep does)"
        )
        push_parser.add_argument(
            "--parallel",
            type=int,
            default=drain.DEFAULT_STREAMS,
            metavar="K",
            help=f"--pending: push K rows at once (default {drain.DEFAULT_STREAMS}, about the "
            "test-mode write limit; 32 reach live mode's; paced by RATE_LIMIT)",
        )
        replay_parser = commands.add_parser(
            "replay", help="process stored webhook events again (some ids, or the failed ones)"
        )
        replay_parser.add_argument(
            "event_ids", nargs="*", metavar="EVENT_ID", help="evt_... ids of stored events"
        )
        replay_parser.add_argument("--failed", action="store_true", help="every failed event")
        events_parser = commands.add_parser(
            "events", help="catch up: store and apply customer events from Stripe's Events API"
        )
        events_parser.add_argument(
            "--since", type=parse_moment, required=True, help="events created at or after DATE"
        )
        add_account_options(events_parser)
        reconcile_parser = commands.add_parser(
            "reconcile",
            help="apply what changed in Stripe since the last reconcile (its events), or a full "
            "pull when they cannot tell; --audit compares without writing",
        )
        add_reconcile_arguments(reconcile_parser)
        status_parser = commands.add_parser(
            "status", help="counts by sync status, deleted, retrying pushes, last full pull"
        )
        erase_parser = commands.add_parser(
            "erase",
            help="scrub the personal data of customers deleted in Stripe (data-protection "
            "requests): name, email, phone, addresses, shipping, metadata",
        )
        erase_parser.add_argument(
            "customers", nargs="+", metavar="STRIPE_ID_OR_PK", help="cus_... ids or local pks"
        )
        parsers = (pull_parser, push_parser, replay_parser, events_parser, status_parser)
        add_django_options(reconcile_parser)
        for subcommand in (*parsers, erase_parser):
            add_django_options(subcommand)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["subcommand"] == "pull":
                self.pull(options)
            elif options["subcommand"] == "push":
                self.push(options)
            elif options["subcommand"] == "replay":
                self.replay(options)
            elif options["subcommand"] == "events":
                self.catch_up(options)
            elif options["subcommand"] == "reconcile":
                self.reconcile(options)
            elif options["subcommand"] == "erase":
                self.erase(options)
            else:
                self.status()
        except (StripeError, ImproperlyConfigured, TimeoutError) as exc:
            raise CommandError(str(exc)) from exc

    # -- pull ---------------------------------------------------------------------------------

    def pull(self, options: dict[str, Any]) -> None:
        if options["partitions"] < 1 or options["parallel"] < 1:
            raise CommandError("--parallel and --partitions must be at least 1")
        if options["partitions"] > 1 and options["parallel"] > 1:
            raise CommandError("give --parallel (threads here) or --partitions (Celery), not both")
        if options["dry_run"] and options["partitions"] > 1:
            raise CommandError("--dry-run runs in one transaction: it cannot use --partitions")
        if options["stripe_ids"] and (options["since"] or options["until"]):
            raise CommandError("give either STRIPE_IDs or --since/--until, not both")
        several = options["all_accounts"] or len(options["account"]) > 1
        if several and (options["stripe_ids"] or options["partitions"] > 1):
            raise CommandError(
                "several accounts are pulled whole, here: no STRIPE_IDs, no --partitions (under "
                "Celery, pull_all_task(all_accounts=True) sends one task per account)"
            )
        accounts = chosen_accounts(options)
        with transaction.atomic() if options["dry_run"] else nullcontext():
            if options["stripe_ids"]:
                self.pull_ids(
                    options["stripe_ids"],
                    account=accounts[0] if options["account"] else None,
                    dry_run=options["dry_run"],
                )
            elif several:
                self.pull_accounts(accounts, options)
            else:
                self.pull_all(options, accounts[0])
            if options["dry_run"]:
                transaction.set_rollback(True)
                self.stdout.write("dry run: nothing was written")

    def pull_ids(
        self, stripe_ids: list[str], *, account: Account | None, dry_run: bool = False
    ) -> None:
        failures = 0
        for stripe_id in stripe_ids:
            try:
                customer = pull.pull_customer(stripe_id, account=account)
            except StripeError as exc:
                failures += 1
                self.stderr.write(f"{stripe_id}: {exc}")
                continue
            state = (
                "not in the mirror (deleted upstream)"
                if customer is None
                else ("deleted upstream" if customer.deleted else "pulled")
            )
            if dry_run and customer is not None:
                state = "would be marked deleted" if customer.deleted else "would be pulled"
            self.stdout.write(f"{stripe_id}: {state}")
        if failures:
            total = counted(len(stripe_ids), "customer")
            raise CommandError(f"{failures} of {total} could not be pulled")

    def pull_accounts(self, accounts: list[Account], options: dict[str, Any]) -> None:
        """Several accounts in ``--parallel`` streams: a line per account, then the total."""
        known = Customer.objects.filter(stripe_id__isnull=False, deleted=False).count()
        progress = Progress(self.stdout, expected=known)
        try:
            results = runs.pull_accounts(accounts, progress, parallel=options["parallel"])
        finally:
            progress.done()
        for account, result in results.items():
            self.stdout.write(
                f"{account}: {counted(result.seen, 'customer')}, {result.created:,} created, "
                f"{result.updated:,} updated, {result.marked_deleted:,} marked deleted"
            )
        total = sum(results.values(), PullResult())
        total.seconds = max((result.seconds for result in results.values()), default=0.0)
        self._report(total, options, f" in {counted(len(results), 'account')}")

    def pull_all(self, options: dict[str, Any], account: Account) -> None:
        known = Customer.objects.filter(
            stripe_id__isnull=False, deleted=False, **account.rows
        ).count()
        progress = Progress(self.stdout, expected=known)
        try:
            try:
                result = runs.pull_all(
                    options["since"],
                    options["until"],
                    partitions=options["partitions"],
                    progress=progress,
                    parallel=options["parallel"],
                    account=account,
                    timeout=options["timeout"],
                )
            finally:
                progress.done()
        except StripeError:
            if progress.latest is not None and not options["dry_run"]:
                done = progress.latest
                self.stderr.write(
                    f"Stopped after {counted(done.seen, 'customer')} ({done.created:,} new, "
                    f"{done.updated:,} updated) in {counted(done.pages, 'page')}: those are "
                    "written; the run is recorded as failed (see `stripe_customers status`)."
                )
            raise
        self._report(result, options)

    def _report(self, result: PullResult, options: dict[str, Any], where: str = "") -> None:
        cost = (
            f"{counted(result.requests, 'request')} ({counted(result.pages, 'page')}) in "
            f"{result.seconds:.1f}s{where}"
        )
        if options["dry_run"]:
            summary = (
                f"Dry run, {counted(result.seen, 'customer')} seen: would create "
                f"{result.created:,}, update {result.updated:,}, mark deleted "
                f"{result.marked_deleted:,}; {result.unchanged:,} unchanged; {cost}."
            )
        else:
            summary = (
                f"Pulled {counted(result.seen, 'customer')}: {result.created:,} created, "
                f"{result.updated:,} updated, {result.unchanged:,} unchanged, "
                f"{result.marked_deleted:,} marked deleted; {cost}."
            )
        self.stdout.write(self.style.SUCCESS(summary))
        for error in result.errors:
            self.stderr.write(error)
        if result.errors:
            raise CommandError(f"{counted(len(result.errors), 'error')} during the pull")

    # -- push ---------------------------------------------------------------------------------

    def push(self, options: dict[str, Any]) -> None:
        if options["pending"] == bool(options["customers"]):
            raise CommandError("give either --pending or some STRIPE_IDs/pks")
        if options["parallel"] < 1:
            raise CommandError("--parallel must be at least 1")
        if options["pending"]:
            rows = outbox.waiting()
            pks = list(rows.order_by("pending_since").values_list("pk", flat=True))
        else:
            pks = [self._resolve(ref) for ref in options["customers"]]
            # A named customer whose push failed is tried again, as the admin's "Retry failed
            # pushes" does (its status alone would make the push find nothing to send).
            Customer.objects.filter(pk__in=pks, sync_status=SyncStatus.FAILED).mark_pending()
        named = not options["pending"]
        bar = Bar(self.stdout, len(pks))

        def row_done(done: int, row: drain.DrainedRow) -> None:
            if named and row.failure is None and row.result is not None:
                self.stdout.write(_described(row.pk, row.result))
            bar.update(done)

        try:  # named ones one after another, in order; pending ones in K streams
            streams = 1 if named else options["parallel"]
            result = drain.drain(pks, streams=streams, progress=row_done)
        finally:
            bar.done()
        outcomes = {str(outcome): count for outcome, count in result.counts.items()}
        failed = outcomes["failed"] = len(result.failures)  # refused, or not answered yet
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()) if n)
        self.stdout.write(f"Pushed {counted(len(pks), 'customer')}: {summary or 'nothing to do'}.")
        for failure in result.failures:
            self.stderr.write(f"customer {failure.pk}: {failure.error}")
        if failed:
            raise CommandError(f"{failed} of {counted(len(pks), 'push', 'pushes')} failed")

    # -- erase --------------------------------------------------------------------------------

    def erase(self, options: dict[str, Any]) -> None:
        pks = [self._resolve(ref) for ref in options["customers"]]
        try:
            erased = Customer.objects.filter(pk__in=pks).erase()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Erased the personal data of {counted(erased, 'deleted customer')}.")

    @staticmethod
    def _resolve(ref: str) -> int:
        rows = Customer.objects.filter(stripe_id=ref) if ref.startswith("cus_") else None
        if rows is None:
            if not ref.isdigit():
                raise CommandError(f"{ref!r} is neither a Stripe id (cus_...) nor a local pk")
            rows = Customer.objects.filter(pk=int(ref))
        pk = rows.values_list("pk", flat=True).first()
        if pk is None:
            raise CommandError(f"no local customer {ref}")
        return pk

    # -- events -------------------------------------------------------------------------------

    def replay(self, options: dict[str, Any]) -> None:
        if options["failed"] == bool(options["event_ids"]):
            raise CommandError("give either --failed or some EVENT_IDs")
        if options["failed"]:
            stored = WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED)
        else:
            stored = WebhookEvent.objects.filter(event_id__in=options["event_ids"])
            missing = set(options["event_ids"]) - set(stored.values_list("event_id", flat=True))
            if missing:
                raise CommandError(f"no stored event {', '.join(sorted(missing))}")
        if not stored.exists():
            self.stdout.write("No failed events to replay.")
            return
        failures = 0
        for replayed in events.replay(stored):
            if replayed.error:
                failures += 1
                self.stderr.write(f"{replayed.event_id}: failed: {replayed.error}")
            else:
                self.stdout.write(f"{replayed.event_id} ({replayed.type}): {replayed.status}")
        if failures:
            raise CommandError(f"{counted(failures, 'event')} failed again")

    def catch_up(self, options: dict[str, Any]) -> None:
        result = events.CatchUpResult()
        for account in chosen_accounts(options):
            done = events.catch_up(options["since"], account=account)
            for name in vars(result):
                setattr(result, name, getattr(result, name) + getattr(done, name))
        self.stdout.write(
            f"Listed {counted(result.listed, 'event')} in {counted(result.requests, 'request')}: "
            f"{result.stored} new, {result.processed} applied, {result.stale} stale, "
            f"{result.failed} failed."
        )
        if result.failed:
            failed = counted(result.failed, "event")
            raise CommandError(f"{failed} failed: see `stripe_customers replay --failed`")

    # -- reconcile ----------------------------------------------------------------------------

    def reconcile(self, options: dict[str, Any]) -> None:
        if options["sample"] is not None and not options["audit"]:
            raise CommandError("--sample goes with --audit")
        failed = run_reconcile(self.stdout, options)
        if failed and options["audit"]:
            raise CommandError(f"{counted(failed, 'customer')} drifted from Stripe")
        if failed:
            raise CommandError(f"{counted(failed, 'event')} failed: see `replay --failed`")

    # -- status -------------------------------------------------------------------------------

    def status(self) -> None:
        write_status(self.stdout)


#: What ``push <id>`` says of each outcome.
_OUTCOMES: Final = {
    push.PushOutcome.CREATED: "created in Stripe",
    push.PushOutcome.UPDATED: "updated in Stripe",
    push.PushOutcome.DELETED: "deleted in Stripe",
    push.PushOutcome.UNCHANGED: "nothing to send (not pending, or Stripe already has every edit)",
    push.PushOutcome.IN_FLIGHT: "another push holds its request in flight (resent, same key)",
    push.PushOutcome.SKIPPED: "not sent",
    push.PushOutcome.TAKEN_OVER: "another push took its request over and stored the answer",
}


def _described(pk: int, result: push.PushResult) -> str:
    """One line for ``push <id>``: what happened to that customer."""
    stripe_id = Customer.objects.filter(pk=pk).values_list("stripe_id", flat=True).first()
    what = _OUTCOMES.get(result.outcome, str(result.outcome))
    reason = f" ({result.error})" if result.error else ""
    more = "; edited meanwhile, pushed next" if result.still_pending else ""
    return f"customer {pk}{f' ({stripe_id})' if stripe_id else ''}: {what}{reason}{more}"
