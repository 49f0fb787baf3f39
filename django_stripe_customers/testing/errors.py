"""Stripe's error object, raised anywhere in the emulator and rendered by the HTTP layer.

``ApiError`` carries what Stripe puts in ``{"error": {...}}`` plus the HTTP status.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer: HTTP ``status`` and Stripe's ``type``/``code``/``param``/``message``.

    ``saved`` is False for errors raised before an endpoint starts executing (parameter
    validation): Stripe does not store those under an Idempotency-Key.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        saved: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.saved = saved
        self.headers = headers or {}

    def body(self, request_id: str, livemode: bool = False) -> dict[str, Any]:
        """The JSON body Stripe answers with (its log link is the live or the test one)."""
        doc_url = (
            f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
            if self.code
            else None
        )
        logs = "https://dashboard.stripe.com/" + ("logs" if livemode else "test/logs")
        return {
            "error": {
                "code": self.code,
                "doc_url": doc_url,
                "message": self.message,
                "param": self.param,
                "request_log_url": f"{logs}/{request_id}",
                "type": self.type,
            }
        }


def mask_key(key: str) -> str:
    """An API key as Stripe shows it in errors: its prefix, stars, its last 4 characters."""
    return key[:8] + "*" * (len(key) - 12) + key[-4:] if len(key) > 12 else "*" * len(key)


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 parameter error, raised before execution (so never stored for idempotency)."""
    return ApiError(400, message, code=code, param=param, saved=False)


def no_such(kind: str, object_id: str, *, param: str = "id", status: int = 404) -> ApiError:
    """Stripe's ``resource_missing``: ``No such customer: 'cus_x'``."""
    return ApiError(status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


#: Stripe's description of the ``rate_limit`` error code (docs.stripe.com/error-codes, and the
#: 429 row of the API reference's HTTP status code summary).
RATE_LIMIT_MESSAGE = (
    "Too many requests hit the API too quickly. We recommend an exponential backoff of your "
    "requests."
)


def rate_limited() -> ApiError:
    """Stripe's 429 ``rate_limit``. No ``Stripe-Should-Retry``: Stripe sends it only when it knows
    better than the status, and its SDKs (which obey it) leave rate-limit 429s to the caller."""
    return ApiError(429, RATE_LIMIT_MESSAGE, code="rate_limit", saved=False)
