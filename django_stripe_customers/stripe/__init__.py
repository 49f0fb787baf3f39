"""The HTTP layer: Stripe's API spoken with ``requests``; knows nothing of Django.

``django_stripe_customers.clients.get_client()`` builds a client from the Django settings.
"""

from .client import StripeClient
from .customers import CustomersResource
from .encoding import encode_params
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    CardError,
    ConflictError,
    IdempotencyError,
    InvalidRequestError,
    PermissionDeniedError,
    RateLimitError,
    StripeError,
)
from .ratelimit import LocalRateLimiter, RateLimiter
from .responses import PageData, ResponseInfo, StripeObject, observed_at, sent_at

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "CardError",
    "ConflictError",
    "CustomersResource",
    "IdempotencyError",
    "InvalidRequestError",
    "LocalRateLimiter",
    "PageData",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimiter",
    "ResponseInfo",
    "StripeClient",
    "StripeError",
    "StripeObject",
    "encode_params",
    "observed_at",
    "sent_at",
]
