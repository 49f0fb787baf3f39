"""Errors raised by the Stripe client, mapped from Stripe's error object and the HTTP status.

Hierarchy::

    StripeError                  base: message, http_status, type, code, param, request_id, ...
    ├── APIConnectionError       no response: network failure (http_status is None)
    │   └── APITimeoutError      no response in time
    ├── AuthenticationError      401: bad or revoked API key
    ├── PermissionDeniedError    403: the key may not do this
    ├── CardError                402: request failed
    ├── InvalidRequestError      400, 404 and other 4xx: bad parameters, unknown object
    ├── IdempotencyError         type "idempotency_error": key reused with other parameters
    ├── ConflictError            409 (not idempotency): concurrent requests on one object
    ├── RateLimitError           429: too many requests
    └── APIError                 5xx, unparseable responses, anything else

Only response headers are kept, never request headers, so the API key is in no attribute.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_BODY_EXCERPT = 200


class StripeError(Exception):
    """A failed Stripe call; attribute names follow stripe-python's."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        type: str | None = None,  # Stripe's name, as in stripe-python
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        doc_url: str | None = None,
        json_body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.doc_url = doc_url
        self.json_body = json_body
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def is_transient(self) -> bool:
        """True when the same call may succeed later (retry), False when it never will: the
        judgement the client's retries and the tasks' make (``retryable``), so none disagrees
        (a 5xx that says ``Stripe-Should-Retry: false`` is not transient anywhere)."""
        return retryable(
            status=self.http_status,
            headers=self.headers,
            connection_error=isinstance(self, APIConnectionError),
        )

    def __str__(self) -> str:
        head = " ".join(str(part) for part in ("Stripe", self.http_status, self.type) if part)
        details = ", ".join(filter(None, (self.code, self.param and f"param: {self.param}")))
        if details:
            head += f" ({details})"
        text = f"{head}: {self.message}"
        if self.request_id:
            text += f" [Request-Id: {self.request_id}]"
        return text

    def __repr__(self) -> str:
        fields = ("http_status", "type", "code", "param", "request_id")
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in fields)
        return f"{type(self).__name__}(message={self.message!r}, {shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only attributes survive pickling (Celery result backends pickle errors).
        return (type(self), (self.message,), self.__dict__)


class APIConnectionError(StripeError):
    pass


class APITimeoutError(APIConnectionError):
    pass


class AuthenticationError(StripeError):
    pass


class PermissionDeniedError(StripeError):
    pass


class CardError(StripeError):
    pass


class InvalidRequestError(StripeError):
    pass


class IdempotencyError(StripeError):
    pass


class ConflictError(StripeError):
    pass


class RateLimitError(StripeError):
    pass


class APIError(StripeError):
    """Stripe's ``api_error``, or an answer that is not Stripe's JSON: a 409/429/5xx from a
    proxy or load balancer is transient; a garbled 2xx is not (the call may have succeeded)."""


_BY_STATUS: dict[int, type[StripeError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: CardError,
    403: PermissionDeniedError,
    404: InvalidRequestError,
    409: ConflictError,
    429: RateLimitError,
}


def _error_class(http_status: int, error_type: str | None) -> type[StripeError]:
    if error_type == "idempotency_error":
        return IdempotencyError
    if http_status in _BY_STATUS:
        return _BY_STATUS[http_status]
    if 400 <= http_status < 500:
        return InvalidRequestError
    return APIError


def retryable(*, status: int | None, headers: Mapping[str, str], connection_error: bool) -> bool:
    """Whether a failed call may succeed if made again (``retry.should_retry`` adds the budget).

    ``Stripe-Should-Retry: false`` always wins. Connection errors, timeouts, 409, 429 and 5xx
    may; ``Stripe-Should-Retry: true`` adds a call only when there was no response; other
    statuses never, whatever the header says."""
    stripe_should_retry = (_header(headers, "Stripe-Should-Retry") or "").strip().lower()
    if stripe_should_retry == "false":
        return False
    if connection_error:
        return True
    if status is None:
        return stripe_should_retry == "true"
    return status in (409, 429) or status >= 500


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def error_from_response(
    http_status: int, body: bytes | str | dict[str, Any] | None, headers: Mapping[str, str]
) -> StripeError:
    """Build the error for a non-2xx response (or an unparseable 2xx) from Stripe."""
    request_id = _header(headers, "Request-Id")
    parsed: object = body
    if isinstance(body, bytes | str):
        try:
            parsed = json.loads(body)
        except ValueError:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            excerpt = text[:_BODY_EXCERPT] + ("…" if len(text) > _BODY_EXCERPT else "")
            return APIError(
                f"HTTP {http_status} with a body that is not JSON: {excerpt!r}",
                http_status=http_status,
                request_id=request_id,
                headers=headers,
            )
    json_body = parsed if isinstance(parsed, dict) else None
    error = json_body.get("error") if json_body is not None else None
    if not isinstance(error, dict):
        return _error_class(http_status, None)(
            f"HTTP {http_status} without a Stripe error object",
            http_status=http_status,
            request_id=request_id,
            json_body=json_body,
            headers=headers,
        )
    error_type = _optional_str(error.get("type"))
    return _error_class(http_status, error_type)(
        _optional_str(error.get("message")) or f"HTTP {http_status}",
        http_status=http_status,
        type=error_type,
        code=_optional_str(error.get("code")),
        param=_optional_str(error.get("param")),
        request_id=request_id,
        doc_url=_optional_str(error.get("doc_url")),
        json_body=json_body,
        headers=headers,
    )
