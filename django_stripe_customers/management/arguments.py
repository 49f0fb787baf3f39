"""Command-line helpers of ``manage.py stripe_customers``: dates, counted nouns, and Django's
own options accepted after a subcommand."""

from __future__ import annotations

from argparse import SUPPRESS, ArgumentParser, ArgumentTypeError
from datetime import datetime, timezone


def parse_moment(value: str) -> int:
    """A unix timestamp, or an ISO 8601 date/datetime (UTC unless it says otherwise)."""
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ArgumentTypeError(
            f"{value!r} is not a date: use YYYY-MM-DD, an ISO datetime or a unix timestamp"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """``counted(1, "customer")`` -> ``"1 customer"``; ``counted(2_000, "push", "pushes")`` ->
    ``"2,000 pushes"``."""
    noun = singular if count == 1 else (plural or f"{singular}s")
    return f"{count:,} {noun}"


def add_django_options(parser: ArgumentParser) -> None:
    """Django's base options on a subcommand's parser, so ``stripe_customers pull
    --settings=...`` works as ``stripe_customers --settings=... pull`` does.

    Their defaults are ``SUPPRESS``: an option given before the subcommand keeps its value
    unless repeated after it. They are listed in ``stripe_customers --help``, not here.
    """
    parser.add_argument(
        "-v", "--verbosity", type=int, choices=[0, 1, 2, 3], default=SUPPRESS, help=SUPPRESS
    )
    for option in ("--settings", "--pythonpath"):
        parser.add_argument(option, default=SUPPRESS, help=SUPPRESS)
    for flag in ("--traceback", "--no-color", "--force-color", "--skip-checks"):
        parser.add_argument(flag, action="store_true", default=SUPPRESS, help=SUPPRESS)
