"""``manage.py stripe_customers status``: the mirror's state, per account and mode when it
holds several."""

from __future__ import annotations

from typing import Any, Protocol

from django.db.models import Count, QuerySet

from ..bookkeeping import SyncStatus
from ..models import ACCOUNT_FIELDS, Customer, PullRun, StripeAccount
from .arguments import counted


class Out(Protocol):
    """Where the report goes (the command's ``stdout``)."""

    def write(self, msg: str) -> Any: ...


def write_status(out: Out) -> None:
    """Counts by sync status, deleted rows, pushes waiting to be retried, the last full pull;
    then one section per account and mode when there are several (or one of them is not the
    key's own account in its mode)."""
    counts = dict(Customer.objects.values_list("sync_status").annotate(n=Count("id")).order_by())
    total = sum(counts.values())
    out.write(f"customers: {total:,}\n")
    for status in SyncStatus:
        out.write(f"  {status.value:<8} {counts.get(status.value, 0):,}\n")
    out.write(f"  deleted  {Customer.objects.filter(deleted=True).count():,}\n")
    _retrying(out)
    out.write(f"last full pull: {_last_full_pull(PullRun.objects.all())}\n")
    _per_account(out)


def _per_account(out: Out) -> None:
    rows = (
        Customer.objects.values_list(*ACCOUNT_FIELDS, "sync_status")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_account: dict[tuple[str | None, bool], dict[str, int]] = {}
    for stripe_account, livemode, status, count in rows:
        by_account.setdefault((stripe_account, livemode), {})[status] = count
    if list(by_account) in ([], [(None, False)], [(None, True)]):
        return
    cut = StripeAccount.objects.filter(deauthorized_at__isnull=False)
    deauthorized = {(row.stripe_account, row.livemode): row.deauthorized_at for row in cut}
    out.write(f"accounts: {len(by_account):,}\n")
    for (stripe_account, livemode), statuses in sorted(
        by_account.items(), key=lambda item: (item[0][1], item[0][0] or "")
    ):
        mode = "live" if livemode else "test"
        name = f"{stripe_account or 'own account'} ({mode})"
        shown = ", ".join(f"{statuses.get(s.value, 0):,} {s.value}" for s in SyncStatus)
        out.write(f"  {name}: {counted(sum(statuses.values()), 'customer')} ({shown})\n")
        runs = PullRun.objects.filter(stripe_account=stripe_account, livemode=livemode)
        out.write(f"    last full pull: {_last_full_pull(runs)}\n")
        if (stripe_account, livemode) in deauthorized:
            when = deauthorized[(stripe_account, livemode)]
            out.write(f"    disconnected {when:%Y-%m-%d %H:%M:%S} UTC: rows kept, not pushed\n")


def _last_full_pull(runs: QuerySet[PullRun]) -> str:
    full = runs.filter(
        created_gte__isnull=True, created_lt__isnull=True, finished_at__isnull=False
    ).first()
    if full is None or full.finished_at is None:
        return "never"
    seen = counted(full.created + full.updated + full.unchanged, "customer")
    errors = counted(len(full.errors), "error")
    return f"{full.finished_at:%Y-%m-%d %H:%M:%S} UTC ({full.status}, {seen}, {errors})"


def _retrying(out: Out, shown: int = 10) -> None:
    """Pushes Stripe did not take yet: when each is tried again, and why it waits."""
    retrying = Customer.objects.filter(
        sync_status=SyncStatus.PENDING, next_attempt_at__isnull=False, deleted=False
    ).order_by("next_attempt_at")
    count = retrying.count()
    if not count:
        return
    out.write(f"retrying: {counted(count, 'push', 'pushes')} Stripe did not take yet\n")
    for row in retrying.only("pk", "stripe_id", "next_attempt_at", "sync_error")[:shown]:
        name = f"{row.pk} ({row.stripe_id})" if row.stripe_id else str(row.pk)
        out.write(
            f"  {name}: next attempt {row.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC; "
            f"{row.sync_error}\n"
        )
    if count > shown:
        out.write(f"  ... and {count - shown:,} more\n")
