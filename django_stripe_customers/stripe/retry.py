"""When to try a failed request to Stripe again, and after how long: the one retry policy.

Pure functions, as stripe-python's: the client applies them to each HTTP try (seconds apart),
and the Celery tasks to the task as a whole (minutes apart), so both decide alike.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping

from .errors import _header, retryable


def should_retry(
    *,
    attempt: int,
    max_retries: int,
    status: int | None,
    headers: Mapping[str, str],
    connection_error: bool,
) -> bool:
    """Whether to try again after a failed try; ``attempt`` counts retries made (0-based):
    within the budget, when the failure is ``retryable`` (the one judgement of what is
    transient, also ``StripeError.is_transient``)."""
    if attempt >= max_retries:
        return False
    return retryable(status=status, headers=headers, connection_error=connection_error)


def retry_after(headers: Mapping[str, str], maximum: float) -> float | None:
    """The ``Retry-After`` (seconds) to honour: None when absent, malformed, not positive or
    above ``maximum`` (more than we are willing to wait: we back off our own way instead)."""
    try:
        seconds = float(_header(headers, "Retry-After") or "")
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and 0 < seconds <= maximum else None


def retry_delay(
    *,
    attempt: int,
    headers: Mapping[str, str],
    initial: float,
    maximum: float,
    max_retry_after: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to sleep before retry number ``attempt + 1``.

    Exponential backoff ``initial * 2**attempt`` capped at ``maximum``, times a jitter factor in
    [0.75, 1.0]. A ``Retry-After`` (seconds) within ``0 < value <= max_retry_after`` raises the
    delay to at least that value; a larger or malformed one is ignored (the server asked for more
    than we are willing to wait, so we back off our own way and keep the retry budget).
    """
    delay = min(initial * 2.0 ** min(attempt, 32), maximum) * (0.75 + 0.25 * rand())
    asked = retry_after(headers, max_retry_after)
    return delay if asked is None else max(asked, delay)
