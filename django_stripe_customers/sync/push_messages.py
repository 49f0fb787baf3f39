"""What a push says on the row when Stripe refused it or did not take it yet."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from ..stripe import StripeError


def describe_transient(exc: StripeError) -> str:
    answer = f"HTTP {exc.http_status}" if exc.http_status else "no answer"
    detail = f": {exc.message}" if exc.message else ""
    return (
        f"Stripe did not take the change yet ({answer}, {type(exc).__name__}{detail}); it is "
        "sent again, with the same idempotency key."
    )


def describe(exc: StripeError) -> str:
    where = f" (param: {exc.param})" if exc.param else ""
    return f"Stripe refused the change{where}: {exc.message or exc}"


def validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(str(message) for errors in exc.message_dict.values() for message in errors)
    return "; ".join(exc.messages)
