"""Signed webhook delivery from a background thread, with bounded retries.

Each event is POSTed to every registered endpoint with ``Stripe-Signature: t=...,v1=...``,
``v1`` being HMAC-SHA256 of ``"{t}.{body}"`` keyed with the endpoint's secret, re-signed at
each attempt (``t`` from the emulator's clock). A non-2xx answer or a connection error is
retried after ``retry_delays`` until ``max_attempts`` (Stripe retries for days; the
emulator keeps it short).

Endpoints are per mode and per platform (``platform``: an added key's account id, None for the
default platform), and of one of Stripe's two kinds: account endpoints get the events of the
platform's own account; Connect endpoints (``connect=True``) get those of its connected
accounts.

The signer is the emulator's own, written apart from the client's
(``django_stripe_customers.stripe.webhooks``), so a signing bug cannot hide on both sides.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .store import Clock


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header for ``payload`` signed at ``timestamp``:
    ``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<payload>" keyed with the secret>``."""
    signed_at = int(timestamp)
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)
    mac.update(b"%d." % signed_at)
    mac.update(payload)
    return f"t={signed_at},v1={mac.hexdigest()}"


@dataclass(frozen=True)
class WebhookEndpoint:
    url: str
    secret: str
    connect: bool = False
    livemode: bool = False
    platform: str | None = None

    def wants(self, *, connect: bool, livemode: bool, platform: str | None = None) -> bool:
        """Whether an event of this kind (connected account or not, mode, platform) is sent
        here."""
        return (self.connect, self.livemode, self.platform) == (connect, livemode, platform)


@dataclass(frozen=True)
class Delivery:
    """One attempt: ``status`` is the HTTP status, or None when no answer came."""

    event_id: str
    url: str
    attempt: int
    status: int | None
    error: str | None
    signature: str

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class _Job:
    event_id: str
    payload: bytes
    endpoint: WebhookEndpoint
    attempt: int
    generation: int


class WebhookDispatcher:
    """Queues events for delivery; one daemon thread sends them (started on first need)."""

    def __init__(
        self,
        clock: Clock,
        on_delivered: Callable[[str], None],
        endpoints: Sequence[WebhookEndpoint] = (),
        *,
        max_attempts: int = 4,
        retry_delays: Sequence[float] = (0.1, 0.5, 2.0),
        timeout: float = 5.0,
    ) -> None:
        self._clock = clock
        self._on_delivered = on_delivered
        self._initial = tuple(endpoints)
        self.endpoints: list[WebhookEndpoint] = list(endpoints)
        self.deliveries: list[Delivery] = []
        self.max_attempts = max_attempts
        self.retry_delays = tuple(retry_delays) or (0.1,)
        self.timeout = timeout
        self._jobs: list[tuple[float, int, _Job]] = []
        self._order = itertools.count()
        self._in_flight = 0
        self._generation = 0
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def add(
        self,
        url: str,
        secret: str,
        *,
        connect: bool = False,
        livemode: bool = False,
        platform: str | None = None,
    ) -> None:
        with self._condition:
            self.endpoints.append(WebhookEndpoint(url, secret, connect, livemode, platform))

    def count(
        self, *, connect: bool = False, livemode: bool = False, platform: str | None = None
    ) -> int:
        """How many endpoints an event of this kind goes to."""
        with self._condition:
            return len(self._endpoints_for(connect, livemode, platform))

    def enqueue(
        self,
        event_id: str,
        payload: bytes,
        *,
        connect: bool = False,
        livemode: bool = False,
        platform: str | None = None,
    ) -> None:
        with self._condition:
            endpoints = self._endpoints_for(connect, livemode, platform)
            if not endpoints:
                return
            for endpoint in endpoints:
                job = _Job(event_id, payload, endpoint, 1, self._generation)
                heapq.heappush(self._jobs, (time.monotonic(), next(self._order), job))
            self._ensure_thread()
            self._condition.notify_all()

    def _endpoints_for(
        self, connect: bool, livemode: bool, platform: str | None
    ) -> list[WebhookEndpoint]:
        """The endpoints an event of this kind goes to (condition held)."""
        return [
            e
            for e in self.endpoints
            if e.wants(connect=connect, livemode=livemode, platform=platform)
        ]

    def reset(self) -> None:
        """Drop pending deliveries and the log; back to the endpoints given at construction."""
        with self._condition:
            self._generation += 1
            self._jobs.clear()
            self.deliveries = []
            self.endpoints = list(self._initial)
            self._condition.notify_all()

    def wait(self, timeout: float = 5.0) -> bool:
        """Block until nothing is queued or in flight (retries included); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._jobs or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
        return True

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(self.timeout + 1)
            self._thread = None
        self._stopping = False

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="stripe-emulator-webhooks", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._condition:
                job = self._next_job()
                if job is None:
                    return
                self._in_flight += 1
            delivery: Delivery | None = None
            try:
                delivery = self._attempt(job)
                if delivery.succeeded and job.generation == self._generation:
                    self._on_delivered(job.event_id)
            finally:
                with self._condition:
                    self._in_flight -= 1
                    if delivery is not None and job.generation == self._generation:
                        self._record(job, delivery)
                    self._condition.notify_all()

    def _next_job(self) -> _Job | None:
        """Wait (condition held) for a due job; None when stopping."""
        while not self._stopping:
            if self._jobs:
                due = self._jobs[0][0]
                delay = due - time.monotonic()
                if delay <= 0:
                    return heapq.heappop(self._jobs)[2]
                self._condition.wait(delay)
            else:
                self._condition.wait()
        return None

    def _record(self, job: _Job, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        if not delivery.succeeded and job.attempt < self.max_attempts:
            delay = self.retry_delays[min(job.attempt, len(self.retry_delays)) - 1]
            retry = _Job(job.event_id, job.payload, job.endpoint, job.attempt + 1, job.generation)
            heapq.heappush(self._jobs, (time.monotonic() + delay, next(self._order), retry))

    def _attempt(self, job: _Job) -> Delivery:
        signature = signature_header(job.payload, job.endpoint.secret, self._clock.now())
        request = urllib.request.Request(  # noqa: S310 - the URL is the test's own endpoint
            job.endpoint.url,
            data=job.payload,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": signature,
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            },
        )
        status: int | None = None
        error: str | None = None
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status, error = exc.code, str(exc)
            exc.close()
        except (OSError, ValueError) as exc:
            error = str(exc)
        return Delivery(job.event_id, job.endpoint.url, job.attempt, status, error, signature)
