"""Run the emulator standalone: ``python -m django_stripe_customers.testing --port 12111``.

Prints ``Stripe emulator listening on http://127.0.0.1:PORT`` once ready; stops on
SIGINT/SIGTERM. ``--latency-ms``, ``--rate-limit`` and ``--endpoint-rate-limit`` (with
``--endpoint-limit``, ``--strict-window``) give it Stripe's pace.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from .. import schema
from .emulator import StripeEmulator
from .limits import Limits


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_stripe_customers.testing",
        description="A local Stripe for the Customer API (in memory, test mode; see --live-keys).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=12111, help="port (0 picks a free one)")
    parser.add_argument(
        "--api-key", help="accept only this key (default: any sk_test_/rk_test_ key)"
    )
    parser.add_argument(
        "--live-keys", action="store_true", help="accept sk_live_/rk_live_ keys too (live mode)"
    )
    parser.add_argument(
        "--webhook", action="append", default=[], metavar="URL", help="deliver events here"
    )
    parser.add_argument("--secret", help="webhook signing secret (default: a random whsec_)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="create N customers")
    pace = parser.add_argument_group("Stripe's pace (default: none)")
    pace.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="answer every request no sooner than MS milliseconds after it arrived",
    )
    pace.add_argument(
        "--latency-jitter-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="add a random 0..MS milliseconds to each answer's latency",
    )
    pace.add_argument(
        "--rate-limit",
        type=float,
        metavar="N",
        help="requests per second per API key (token bucket); beyond it, 429 rate_limit "
        "(Stripe: 25 in test mode, 100 live)",
    )
    pace.add_argument(
        "--rate-limit-burst",
        type=int,
        metavar="N",
        help="requests a key may send at once (default: one second's worth)",
    )
    pace.add_argument(
        "--endpoint-rate-limit",
        type=float,
        metavar="N",
        help="requests per second per API key to each endpoint (API operation, ids aside); "
        "beyond it, 429 rate_limit (Stripe: 25)",
    )
    pace.add_argument(
        "--endpoint-limit",
        action="append",
        default=[],
        type=_endpoint_rate,
        metavar="'METHOD /PATH=N'",
        help="this endpoint's own limit, e.g. 'GET /v1/customers/search=20' (repeatable)",
    )
    pace.add_argument(
        "--strict-window",
        action="store_true",
        help="limits are strict sliding one-second windows, not token buckets",
    )
    return parser


def _endpoint_rate(value: str) -> tuple[str, float]:
    endpoint, equals, rate = value.rpartition("=")
    try:
        if not equals:
            raise ValueError
        return endpoint.strip(), float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not 'METHOD /PATH=N' (e.g. 'GET /v1/customers/search=20')"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        emulator = StripeEmulator(
            api_key=args.api_key,
            host=args.host,
            port=args.port,
            webhook_urls=args.webhook,
            webhook_secret=args.secret,
            latency_ms=args.latency_ms,
            latency_jitter_ms=args.latency_jitter_ms,
            rate_limit=args.rate_limit,
            rate_limit_burst=args.rate_limit_burst,
            endpoint_rate_limit=args.endpoint_rate_limit,
            endpoint_rate_limits=dict(args.endpoint_limit),
            strict_window=args.strict_window,
            live_keys=args.live_keys,
        )
    except ValueError as exc:  # the limits' own checks, said as a usage error
        parser.error(str(exc))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator.start()
    try:
        if args.seed:
            emulator.seed(args.seed)
        print(f"Stripe emulator listening on {emulator.url}", flush=True)
        print(f"  API version {schema.API_VERSION}; {args.seed} seeded customers", flush=True)
        print(f"  {_describe(emulator.limits)}", flush=True)
        if args.webhook:
            print(f"  webhooks to {', '.join(args.webhook)}", flush=True)
            print(f"  signing secret {emulator.webhook_secret}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        _stop_within(emulator, STOP_TIMEOUT)
    # Stopped: end here, without the interpreter's shutdown (once, in CI, an emulator that had
    # delivered webhooks stopped serving on SIGTERM, then hung there on a lock for good).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _describe(limits: Limits) -> str:
    latency = f"latency {limits.latency_ms:g} ms" if limits.latency_ms else "no latency"
    if limits.latency_jitter_ms:
        latency += f" (+0..{limits.latency_jitter_ms:g} ms)"
    if limits.rate_limit is None:
        described = f"{latency}; no rate limit"
    elif limits.strict_window:
        described = f"{latency}; rate limit {limits.rate_limit:g}/s per key"
    else:
        described = f"{latency}; rate limit {limits.rate_limit:g}/s per key, burst {limits.burst}"
    if limits.endpoint_rate_limit is not None:
        described += f"; {limits.endpoint_rate_limit:g}/s per endpoint"
    for endpoint, rate in limits.endpoint_rate_limits.items():
        described += f"; {endpoint} {rate:g}/s"
    if limits.strict_window:
        described += " (strict 1 s windows)"
    return described


#: Seconds a signalled emulator may take to stop cleanly before it exits regardless.
STOP_TIMEOUT = 5.0


def _stop_within(emulator: StripeEmulator, timeout: float) -> None:
    """Stop the emulator; if that hangs (a stuck connection, a blocked pipe), exit anyway, so
    a signalled emulator never outlives whatever started it."""
    stopper = threading.Thread(target=emulator.stop, name="stripe-emulator-stop", daemon=True)
    stopper.start()
    stopper.join(timeout)
    if stopper.is_alive():
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
