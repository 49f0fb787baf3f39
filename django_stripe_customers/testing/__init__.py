"""A stateful local Stripe for the Customer API: emulator, pytest plugin, CLI. No Django.

Endpoints: ``POST/GET /v1/customers``, ``GET/POST/DELETE /v1/customers/{id}``,
``GET /v1/events[/{id}]``, ``GET /v1/account`` and ``POST/GET /v1/accounts[/{id}]``, in Stripe's
wire format (form-encoded params, JSON answers, Stripe's error object). Parameters are checked
against ``django_stripe_customers.schema``, the same data the app's validators use.

Connect and live mode (``accounts``): each (mode, account) has its own store, chosen by the key
(``live_keys=True`` accepts ``sk_live_`` keys) and the ``Stripe-Account`` header;
``add_account()``, ``deauthorize()``, ``add_webhook(url, connect=True)``, and
``customers_of(account, livemode=...)``/``events_of(...)``/``seed(..., account=...)``.
Several unrelated Stripe accounts (``platforms``): ``add_key(api_key)`` (or ``keys=``) makes a
key reach a separate platform of its own, with its own stores, connected accounts and webhooks.

    from django_stripe_customers.testing import StripeEmulator

    with StripeEmulator() as stripe:
        requests.post(f"{stripe.url}/v1/customers", data={"email": "a@example.com"},
                      headers={"Authorization": "Bearer sk_test_x"})

In pytest, the ``stripe_emulator`` fixture (this package's plugin) gives a running one, reset
before each test; ``stripe_settings`` also points ``settings.STRIPE_CUSTOMERS`` at it.

Stripe's pace (``limits``): ``StripeEmulator(latency_ms=300, rate_limit=25)``, ``set_limits()``
on a running one, ``--latency-ms``/``--rate-limit`` on the CLI, or
``@pytest.mark.stripe_emulator(latency_ms=300, rate_limit=25)`` on a test. Per endpoint (each API
operation, ids aside: ``limits.endpoint_of``): ``endpoint_rate_limit=25``,
``endpoint_rate_limits={"GET /v1/customers/search": 20}``; ``strict_window=True`` makes every
limit a strict one-second sliding window. Beyond a limit: Stripe's 429 ``rate_limit``, counted by
``emulator.count_rate_limited()`` (or ``count(status=429)`` in the request log);
``emulator.max_in_window("GET /v1/customers")`` is the most admitted in any second.

Where the emulator had to choose (each choice is tested in ``tests/test_emulator*.py``):
- Default responses hold every attribute but ``deleted`` and the includable ones
  (``cash_balance``, ``invoice_credit_balance``, ``sources``, ``subscriptions``, ``tax``,
  ``tax_ids``), which ``expand[]`` adds; see ``objects``.
- Ids it cannot resolve (``source``, ``payment_method``, ``test_clock``, ``default_source``,
  ``invoice_settings[default_payment_method]``) are accepted as opaque ids, when they have the
  prefix Stripe gives such an object (``pm_``, ``tok_``, ...: ``endpoints.REFERENCES``); a
  ``payment_method``, ``source`` or ``test_clock`` without one is ``resource_missing``, as an
  unknown id is.
- ``coupon``/``promotion_code`` are unknown params at this API version (not in the spec data);
  ``preferred_locales=""`` is refused (the spec does not let it be unset).
- Concurrent requests with one Idempotency-Key are serialised: the second replays the first.
- Webhook signatures use the emulator's clock for ``t``; seeded customers make no events.
- Nothing here imports Django or the client (``django_stripe_customers.stripe``): the emulator
  is the yardstick the client is measured with, so it signs webhooks with its own signer.
"""

from .emulator import StripeEmulator
from .limits import Limits
from .store import Clock
from .webhooks import signature_header

__all__ = ["Clock", "Limits", "StripeEmulator", "signature_header"]
