"""Stripe's ``Date`` header is read as one date on GMT, or not at all, whatever the time zone.

Reported (issue 20): two ``Date`` headers (an intermediary adding its own) were parsed as a naive
time and read in the process's time zone, which Django sets to the project's ``TIME_ZONE``: in
a project on America/Chicago a row's clock ran six hours ahead, and every webhook for it was
dropped as stale for hours.
"""

from __future__ import annotations

import os
import time

import pytest

from django_stripe_customers.stripe.responses import _unix_time

NOON = 1_796_212_800  # Wed, 02 Dec 2026 12:00:00 GMT


@pytest.fixture(params=["UTC", "America/Chicago", "Asia/Kolkata"])
def process_time_zone(request):
    """The process's local time zone, as Django sets it from ``TIME_ZONE``."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_a_gmt_date_is_read_the_same_in_every_time_zone(process_time_zone):
    assert _unix_time("Wed, 02 Dec 2026 12:00:00 GMT") == NOON


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 02 Dec 2026 12:00:00 GMT, Wed, 02 Dec 2026 12:00:01 GMT",  # two headers joined
        "Wed, 02 Dec 2026 12:00:00 -0000",  # no zone
        "Wed, 02 Dec 2026 12:00:00",
        "Wed, 02 Dec 2026 12:00:00 +0530",  # not GMT
        "Wednesday, 02-Dec-26 12:00:00 GMT",  # RFC 850, obsolete
        "2026-12-02T12:00:00Z",
        "",
        None,
    ],
)
def test_anything_else_is_unknown_not_guessed(process_time_zone, value):
    assert _unix_time(value) is None
