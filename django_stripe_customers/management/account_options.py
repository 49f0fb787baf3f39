"""``--account``, ``--all-accounts``, ``--live`` and ``--test`` of ``manage.py stripe_customers``:
which accounts a pull or a catch-up works on (``accounts``)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from ..accounts import Account, UnknownAccount, default_account, is_account_id
from ..sync.connect import every_account, named_account

#: What ``--account`` takes for the key's own account.
OWN: str = "own"


def add_account_options(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="ACCT",
        help=f"a Stripe account (acct_..., or {OWN!r} for the key's own); repeat for several "
        "(default: the default account, the first in ACCOUNTS)",
    )
    parser.add_argument(
        "--all-accounts",
        action="store_true",
        help="every account in ACCOUNTS, and every connected account of a key with "
        "CONNECTED 'all' (listed from Stripe)",
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--live", action="store_true", help="live mode only")
    modes.add_argument("--test", action="store_true", help="test mode only")


def chosen_accounts(options: dict[str, Any]) -> list[Account]:
    """The accounts the options name, checked; raises ``CommandError`` saying why not."""
    livemode = True if options["live"] else (False if options["test"] else None)
    if options["all_accounts"]:
        if options["account"]:
            raise CommandError("give --account or --all-accounts, not both")
        found = every_account(livemode=livemode)
        if not found:
            raise CommandError("no account to pull: check ACCOUNTS (and --live/--test)")
        return found
    if not options["account"]:
        account = default_account()
        if livemode is not None and account.livemode != livemode:
            return [named_account(account.stripe_account, livemode)]
        return [account]
    chosen = []
    for given in options["account"]:
        stripe_account = None if given == OWN else given
        if stripe_account is not None and not is_account_id(stripe_account):
            raise CommandError(f"--account {given!r}: an acct_ id or {OWN!r}")
        try:
            chosen.append(named_account(stripe_account, livemode))
        except UnknownAccount as exc:
            raise CommandError(str(exc)) from exc
    return list(dict.fromkeys(chosen))
