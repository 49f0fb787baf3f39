"""Decoded answers, and what their HTTP response says besides the body.

``StripeObject`` is the JSON object (a ``dict``); its ``last_response`` tells when Stripe
answered (the ``Date`` header, Stripe's clock, whole seconds) and whether the answer is an
idempotent replay, whose body is the first answer's and so says nothing about now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final

import orjson
import requests

from .errors import APIError, _header, error_from_response


@dataclass(frozen=True)
class ResponseInfo:
    status: int
    request_id: str | None
    #: Stripe's clock when it answered (unix seconds, from ``Date``); None when absent.
    stripe_time: int | None
    #: ``Idempotent-Replayed: true``: the body is the first answer to this key, resent.
    replayed: bool
    #: Our clock when the request that got this answer was sent (unix seconds).
    sent_at: float | None = None

    @property
    def observed_at(self) -> int | None:
        """When the body was Stripe's state: the answer's time; unknown for a replay."""
        return None if self.replayed else self.stripe_time


class StripeObject(dict[str, Any]):
    """A JSON object from Stripe; ``last_response`` is the response it came in, if any."""

    last_response: ResponseInfo | None = None


class PageData(list[dict[str, Any]]):
    """The ``data`` of one page of a list; ``last_response`` is the page's response and
    ``has_more`` whether the list goes on."""

    last_response: ResponseInfo | None = None
    has_more: bool = False


def observed_at(value: object) -> int | None:
    """When ``value`` (a ``StripeObject`` or ``PageData``) was Stripe's state, if known."""
    info = getattr(value, "last_response", None)
    return info.observed_at if isinstance(info, ResponseInfo) else None


def sent_at(value: object) -> float | None:
    """When the request that fetched ``value`` was sent (our clock), if known."""
    info = getattr(value, "last_response", None)
    return info.sent_at if isinstance(info, ResponseInfo) else None


def response_info(response: requests.Response, sent: float | None = None) -> ResponseInfo:
    headers = response.headers
    return ResponseInfo(
        status=response.status_code,
        request_id=_header(headers, "Request-Id"),
        stripe_time=_unix_time(_header(headers, "Date")),
        replayed=(_header(headers, "Idempotent-Replayed") or "").strip().lower() == "true",
        sent_at=sent,
    )


def decode(response: requests.Response, sent: float | None = None) -> StripeObject:
    """The body of a 2xx answer as a ``StripeObject``; an ``APIError`` if it is not one."""
    try:
        body = orjson.loads(response.content)
    except ValueError:
        raise error_from_response(
            response.status_code, response.content, response.headers
        ) from None
    if not isinstance(body, dict):
        raise APIError(
            f"HTTP {response.status_code} with a JSON body that is not an object",
            http_status=response.status_code,
            request_id=response.headers.get("Request-Id"),
            headers=response.headers,
        )
    decoded = StripeObject(body)
    decoded.last_response = response_info(response, sent)
    return decoded


#: An HTTP date as servers send it (RFC 9110 5.6.7, IMF-fixdate), on GMT, alone.
_HTTP_DATE: Final = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT"
)


def _unix_time(value: str | None) -> int | None:
    """The time of a ``Date`` header, or None when it is not one date on GMT: two headers
    joined (an intermediary adding its own), no zone, another format. Such a date is unknown,
    not guessed: a date without a zone would be read in the process's time zone (the project's
    ``TIME_ZONE``), hours off."""
    if not value or not _HTTP_DATE.fullmatch(value.strip()):
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None or parsed.utcoffset() != timedelta(0):
        return None
    return int(parsed.timestamp())
