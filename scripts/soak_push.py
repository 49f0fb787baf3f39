"""Soak test of the push (DB -> Stripe) through a fault-injecting proxy. Not part of ``pytest``.

    .venv/bin/python scripts/soak_push.py                  # 1,000 edits, 100 customers, 10 %
    .venv/bin/python scripts/soak_push.py --edits 1000 --customers 100 --fault-rate 0.1 --seed 7

What it does, all in this process and on loopback:

1. starts the Stripe emulator and ``tests/support/faultproxy.py``'s ``FaultProxy`` in front of
   it, and sets Django up from ``tests/support/settings.py`` (Celery eager) with a SQLite *file*
   database in a temporary directory, migrated; the client goes through the proxy with small retries
   (``MAX_RETRIES`` 2, ``TIMEOUT`` 0.5 s). ``CELERY_TASK_EAGER_PROPAGATES`` is off, so a
   failing push task is retried in place by Celery as a worker would (``--eager-propagates``
   runs the test suite's setting instead: the first task failure leaves the row to the sweep);
2. creates ``--customers`` customers, then runs ``--edits`` random edits: email, name, phone,
   description, business_name, metadata key add/change/remove, address set/clear, shipping
   set/clear, preferred_locales, tax_exempt, balance, invoice_prefix, invoice_settings[footer],
   a field set back to its last synced value (every value checked with
   ``validate_customer_fields`` first), through ``save()``, ``save(update_fields=...)``,
   ``QuerySet.update()`` + ``mark_pending()``, bursts of saves in one transaction, and saves of
   a *stale instance* (the one ``create()`` returned, or one loaded many edits ago: it never
   saw its push's ``stripe_id`` nor later edits, and must still edit the same customer); some
   edits create new customers, some run inside a transaction that is rolled back (they must
   never reach Stripe);
   meanwhile the emulator's clock is frozen and moved one second every ``--second-every``
   edits, so the events of many pushes share a second, and with probability
   ``--webhook-rate`` after an edit the events not yet delivered are delivered (stored and
   applied as the webhook endpoint does) in a random order, some held back for later: the
   same-second, out-of-order deliveries that whole-second times cannot order;
3. before each committed edit, with probability ``--fault-rate``, queues a random fault for
   the next POST: connection reset, refused, response dropped after Stripe committed, 500, 503,
   429 with a small Retry-After, 409 lock_timeout, or a stall past the client's timeout. Most
   are single (the client's retry absorbs them); ``BURST_SHARE`` repeat on every client try
   (Celery retries the task, which resends the recorded request) and ``LONG_BURST_SHARE`` on
   every try of every Celery retry (the row is left with its request in flight);
4. sweeps (``push_pending_task(older_than=0)``) until nothing is pending (bounded rounds),
   after dropping faults still queued (the outage is over). A request left recorded by a push
   whose retries ran out is taken over by the sweep as it is in production once its lease has
   passed (``PUSH_LEASE`` is set to 0 for the sweep: the eager task that owned it has ended);
   then every event not yet delivered is delivered, shuffled;
5. checks, field by field over ``schema.PUSHABLE``: what the script committed == the DB row ==
   the emulator's stored customer (mapped through ``fields_from_stripe``); every row synced;
   exactly once: one Stripe customer per committed create, one ``customer.created`` event per
   create, at most one event per Idempotency-Key; no rolled-back value anywhere in the
   requests Stripe received, its stored objects or the DB; every delivered event processed or
   stale, none failed, no row deleted.

Prints edits, creates, rolled-back edits, faults injected by kind, HTTP retries (requests whose
Idempotency-Key was already seen by the proxy), mismatches and duplicates (both must be 0) and
the time taken; exits 1 when any check fails.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import random
import string
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.* and django_stripe_customers importable from a clone
    sys.path.insert(0, str(ROOT))

from soak_django import API_KEY, setup_django  # noqa: E402 (this folder, once ROOT is set)
from soak_editors import check_editors, run_editors  # noqa: E402

#: Marks every value written by a rolled-back edit; must never be seen by Stripe.
ROLLBACK_MARK = "ROLLEDBACK"
LOCALES = ["en", "fr", "de", "es", "it", "ja", "nl", "fr-CA", "en-GB", "es-419", "zh-Hant-TW"]
META_KEYS = [f"k{n}" for n in range(12)] + ["order_id", "plan", "segment", "ref"]
COUNTRIES = ["FR", "US", "DE", "GB", "ES", "CA", "JP"]
WORDS = [
    "alpha", "bravo", "Zoë", "Ångström", "O'Brien", "Smith & Sons", "a=b", "x[y]", "100%",
    "李小龙", "naïve", "café", "plain", "line\nbreak", "tab\there", "+plus", "semi;colon",
]  # fmt: skip
#: Of the faulted pushes, the share whose fault repeats on every client try (the push task
#: fails, Celery retries it and resends the recorded request), and the share whose fault
#: repeats on every try of every Celery retry (the row is left for the sweep).
BURST_SHARE = 0.10
LONG_BURST_SHARE = 0.03
FAULT_KINDS = (
    "reset", "refuse", "drop_response", "500", "503", "429", "409", "stall",
)  # fmt: skip


# -- set up ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    parser.add_argument("--timeout", type=float, default=0.5, help="client TIMEOUT, seconds")
    parser.add_argument("--max-retries", type=int, default=2, help="client MAX_RETRIES")
    parser.add_argument("--sweep-rounds", type=int, default=10)
    parser.add_argument(
        "--webhook-rate",
        type=float,
        default=0.15,
        help="chance, after each edit, of delivering the events not yet delivered (shuffled)",
    )
    parser.add_argument(
        "--second-every",
        type=int,
        default=25,
        help="edits per second of the emulator's frozen clock (events of one second collide)",
    )
    parser.add_argument(
        "--clear-locales",
        action="store_true",
        help="also clear preferred_locales to [] (a valid local value that Stripe cannot "
        "express: see the report; off by default so the run exercises the push machinery)",
    )
    parser.add_argument(
        "--eager-propagates",
        action="store_true",
        help="CELERY_TASK_EAGER_PROPAGATES on, as in tests/support/settings.py: a push task's "
        "first transient failure then escapes (enqueue_push logs it) and the row waits for the "
        "sweep; off (default), Celery retries the task in place, as a worker would",
    )
    parser.add_argument(
        "--editors",
        type=int,
        default=3,
        help="then this many processes edit the same customers at once (scripts/soak_editors.py)",
    )
    parser.add_argument("--editor-edits", type=int, default=200, help="edits per editor")
    parser.add_argument(
        "--time-zone", default="America/Chicago", help="the project's TIME_ZONE (not UTC)"
    )
    parser.add_argument("--db", help="SQLite file to use (default: a new temporary one)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    if not 0 <= args.fault_rate <= 1:
        parser.error("--fault-rate must be between 0 and 1")
    return args


class LogCounter(logging.Handler):
    """Counts the library's warnings (client retries, pushes left to the sweep)."""

    def __init__(self, verbose: bool) -> None:
        super().__init__(logging.WARNING)
        self.verbose = verbose
        self.messages: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if " retrying in " in message:
            self.messages["client retry"] += 1
        elif "pending sweep will push it" in message:
            self.messages["push left to the sweep"] += 1
        elif "failed:" in message:
            self.messages["push failed"] += 1
        else:
            self.messages["other"] += 1
        if self.verbose:
            print(f"  log {record.name}: {message}", file=sys.stderr)


# -- random valid values -----------------------------------------------------------------------


class Values:
    def __init__(self, rng: random.Random, clear_locales: bool) -> None:
        self.rng = rng
        self.clear_locales = clear_locales

    def text(self, low: int = 1, high: int = 4) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(low, high)))

    def maybe_clear(self, make: Callable[[], Any], empty: Any = "") -> Any:
        return empty if self.rng.random() < 0.12 else make()

    def email(self) -> str:
        user = "".join(self.rng.choices(string.ascii_lowercase, k=self.rng.randint(3, 10)))
        tld = self.rng.choice(["com", "org", "fr", "io"])
        return f"{user}.{self.rng.randrange(10**6)}@example.{tld}"

    def phone(self) -> str:
        return "+" + "".join(self.rng.choices(string.digits, k=self.rng.randint(8, 15)))

    def address(self) -> dict[str, Any]:
        address: dict[str, Any] = {"line1": f"{self.rng.randint(1, 999)} {self.text(1, 2)}"}
        for key, make in (
            ("line2", lambda: f"Apt {self.rng.randint(1, 99)}"),
            ("city", lambda: self.rng.choice(["Paris", "Berlin", "New York", "Zürich"])),
            ("postal_code", lambda: str(self.rng.randint(10000, 99999))),
            ("state", lambda: self.rng.choice(["IDF", "NY", "BE"])),
            ("country", lambda: self.rng.choice(COUNTRIES)),
        ):
            if self.rng.random() < 0.7:
                address[key] = make()
        return address

    def shipping(self) -> dict[str, Any]:
        shipping: dict[str, Any] = {"name": self.text(1, 2), "address": self.address()}
        if self.rng.random() < 0.5:
            shipping["phone"] = self.phone()
        return shipping

    def locales(self) -> list[str]:
        if self.clear_locales and self.rng.random() < 0.15:
            return []
        return self.rng.sample(LOCALES, self.rng.randint(1, 3))

    def invoice_prefix(self) -> str:
        alphabet = string.ascii_uppercase + string.digits
        return "".join(self.rng.choices(alphabet, k=self.rng.randint(3, 12)))


def edit_fields(values: Values, customer: Any) -> dict[str, Any]:
    """One to three random field changes for ``customer`` (a fresh instance)."""
    rng = values.rng
    changes: dict[str, Any] = {}
    kinds = rng.sample(list(EDITS), rng.choice([1, 1, 1, 2, 3]))
    for kind in kinds:
        name, value = EDITS[kind](values, customer)
        changes[name] = value
        setattr(customer, name, copy.deepcopy(value))  # the next kind sees this one
    return changes


def _metadata_edit(values: Values, customer: Any) -> tuple[str, Any]:
    rng = values.rng
    metadata = dict(customer.metadata or {})
    operation = rng.choice(["add", "change", "remove", "remove_by_empty"])
    if operation in ("change", "remove", "remove_by_empty") and not metadata:
        operation = "add"
    if operation == "add":
        metadata[rng.choice(META_KEYS)] = values.text(1, 3)
    elif operation == "change":
        metadata[rng.choice(sorted(metadata))] = values.text(1, 3)
    elif operation == "remove":
        del metadata[rng.choice(sorted(metadata))]
    else:  # a "" value is Stripe's way of unsetting a key; the local row may hold one
        metadata[rng.choice(sorted(metadata))] = ""
    return "metadata", metadata


def _footer_edit(values: Values, customer: Any) -> tuple[str, Any]:
    return "invoice_settings", {**(customer.invoice_settings or {}), "footer": values.text(2, 5)}


def _revert_edit(values: Values, customer: Any) -> tuple[str, Any]:
    """A field set back to its value in the last snapshot from Stripe (an undo)."""
    from django_stripe_customers.mirror import fields_from_stripe

    name = values.rng.choice(["name", "email", "phone", "description", "balance", "tax_exempt"])
    snapshot = fields_from_stripe(customer.stripe_data or {})
    if name not in snapshot:  # never pushed yet: an ordinary edit instead
        return EDITS[name](values, customer)
    return name, snapshot[name]


EDITS: dict[str, Callable[[Values, Any], tuple[str, Any]]] = {
    "email": lambda v, c: ("email", v.maybe_clear(v.email)),
    "name": lambda v, c: ("name", v.maybe_clear(lambda: v.text(1, 3))),
    "phone": lambda v, c: ("phone", v.maybe_clear(v.phone)),
    "description": lambda v, c: (
        "description",
        v.maybe_clear(lambda: v.text(1, v.rng.choice([3, 10, 60]))),
    ),
    "business_name": lambda v, c: ("business_name", v.maybe_clear(lambda: v.text(1, 3)[:150])),
    "metadata": _metadata_edit,
    "metadata ": _metadata_edit,  # twice as likely: three kinds of metadata change
    "address": lambda v, c: ("address", v.maybe_clear(v.address, None)),
    "shipping": lambda v, c: ("shipping", v.maybe_clear(v.shipping, None)),
    "preferred_locales": lambda v, c: ("preferred_locales", v.locales()),
    "tax_exempt": lambda v, c: (
        "tax_exempt",
        v.rng.choice(["none", "exempt", "reverse", None]),
    ),
    "balance": lambda v, c: ("balance", v.rng.randint(-100_000, 100_000)),
    "invoice_prefix": lambda v, c: ("invoice_prefix", v.invoice_prefix()),
    "invoice_settings": _footer_edit,
    "revert": _revert_edit,
}


def new_customer_fields(values: Values) -> dict[str, Any]:
    rng = values.rng
    fields: dict[str, Any] = {"email": values.email(), "metadata": {"soak": "1"}}
    for name, make in (
        ("name", lambda: values.text(1, 3)),
        ("phone", values.phone),
        ("description", lambda: values.text(2, 6)),
        ("address", values.address),
        ("preferred_locales", values.locales),
        ("tax_exempt", lambda: rng.choice(["exempt", "reverse"])),
        ("balance", lambda: rng.randint(-5000, 5000)),
    ):
        if rng.random() < 0.4:
            fields[name] = make()
    return fields


def check_valid(fields: dict[str, Any]) -> None:
    from django_stripe_customers.validation import validate_customer_fields

    validate_customer_fields(fields)  # raises: the generator must only make valid values


# -- normalisation (one representation for what was committed, the row and Stripe) -------------


def normalise(name: str, value: Any) -> Any:
    from django_stripe_customers import schema
    from django_stripe_customers.testing import objects

    spec = schema.UPDATE_PARAMS.get(name) or schema.CREATE_PARAMS.get(name) or {}
    if name == "metadata":
        return {key: item for key, item in (value or {}).items() if item != ""}
    if name == "preferred_locales":
        return list(value or [])
    if name == "tax_exempt":
        return value or "none"
    if name == "invoice_settings":  # a bag of settings: compare the keys the script sets
        return {"footer": (value or {}).get("footer") or None}
    if spec.get("type") == "object":
        return objects.fill(spec["fields"], value) if value else None
    if value == "":
        return None
    return value


# -- the run -----------------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace, emulator: Any, proxy: Any) -> None:
        self.args = args
        self.emulator = emulator
        self.proxy = proxy
        self.rng = random.Random(args.seed)
        self.values = Values(self.rng, args.clear_locales)
        #: pk -> field -> the value last committed by the script (normalised)
        self.expected: dict[int, dict[str, Any]] = defaultdict(dict)
        self.counts: Counter[str] = Counter()
        self.faults_queued: Counter[str] = Counter()
        self.fault_events: Counter[str] = Counter()
        self.rolled_back: list[str] = []
        self.trace: list[str] = []
        #: pk -> an instance loaded (or created) earlier, saved again later as it is
        self.kept: dict[int, Any] = {}
        self.delivered: set[str] = set()
        self.event_statuses: Counter[str] = Counter()

    # faults -------------------------------------------------------------------------------

    def maybe_fault(self) -> None:
        from django_stripe_customers.tasks import TASK_OPTIONS
        from tests.support.faultproxy import (
            CONFLICT,
            DROP_RESPONSE,
            RATE_LIMIT,
            REFUSE,
            RESET,
            STALL,
            STATUS,
        )

        if self.rng.random() >= self.args.fault_rate:
            return
        kind = self.rng.choice(FAULT_KINDS)
        make = {
            "reset": lambda: RESET(method="POST"),
            "refuse": lambda: REFUSE(method="POST"),
            "drop_response": lambda: DROP_RESPONSE(method="POST"),
            "500": lambda: STATUS(500, method="POST"),
            "503": lambda: STATUS(503, method="POST"),
            "429": lambda: RATE_LIMIT(
                retry_after=round(self.rng.uniform(0.05, 0.3), 2), method="POST"
            ),
            "409": lambda: CONFLICT(method="POST"),
            "stall": lambda: STALL(self.args.timeout + 0.5, method="POST"),
        }[kind]
        client_tries = self.args.max_retries + 1
        shape = self.rng.random()
        if shape < LONG_BURST_SHARE:  # every try of every Celery retry: left to the sweep
            size, label = client_tries * (TASK_OPTIONS["max_retries"] + 1), "outlasting Celery"
        elif shape < LONG_BURST_SHARE + BURST_SHARE:  # the client gives up, Celery retries
            size, label = client_tries, "outlasting the client"
        else:
            size, label = 1, "single"
        self.proxy.enqueue(*(make() for _ in range(size)))
        self.faults_queued[kind] += size
        self.fault_events[label] += 1
        self.trace.append(f"  fault {kind} x{size}")

    # edits --------------------------------------------------------------------------------

    def create(self, *, setup: bool = False) -> None:
        from django_stripe_customers.models import Customer

        fields = new_customer_fields(self.values)
        check_valid(fields)
        self.maybe_fault()
        customer = Customer.objects.create(**fields)
        self.kept[customer.pk] = customer  # the README's pattern: edited and saved later
        self.counts["creates"] += 1
        self.counts["setup creates" if setup else "creates during edits"] += 1
        self.expected[customer.pk] = {name: normalise(name, v) for name, v in fields.items()}
        self.trace.append(f"create #{customer.pk} {sorted(fields)}")

    def edit(self) -> None:
        from django.db import transaction

        from django_stripe_customers.models import Customer

        pk = self.rng.choice(sorted(self.expected))
        shape = self.rng.choices(
            ["save", "update_fields", "queryset", "burst", "stale"], weights=[65, 10, 7, 8, 10]
        )[0]
        if shape == "stale" and pk not in self.kept:
            shape = "save"
        self.maybe_fault()
        self.counts[f"edit via {shape}"] += 1
        if shape == "burst":  # several saves of one row in one transaction: one push after
            with transaction.atomic():
                for _ in range(self.rng.randint(2, 4)):
                    customer = Customer.objects.select_for_update().get(pk=pk)
                    changes = self._apply(customer)
                    customer.save()
                    self.trace.append(f"edit #{pk} burst-save {sorted(changes)}")
                    self._expect(pk, changes)  # committed below (nothing raises in between)
            self.counts["edits"] += 1
            return
        customer = self.kept[pk] if shape == "stale" else Customer.objects.get(pk=pk)
        changes = self._apply(customer)
        self.trace.append(f"edit #{pk} {shape} {sorted(changes)}")
        if shape in ("save", "stale"):
            customer.save()
            if shape == "save" and self.rng.random() < 0.2:
                self.kept[pk] = customer  # kept for a stale save many edits later
        elif shape == "update_fields":
            customer.save(update_fields=list(changes))
        else:
            Customer.objects.filter(pk=pk).update(**changes)
            Customer.objects.mark_pending(Customer.objects.filter(pk=pk))
        self._expect(pk, changes)
        self.counts["edits"] += 1

    def _apply(self, customer: Any) -> dict[str, Any]:
        changes = edit_fields(self.values, customer)
        check_valid(changes)
        for name, value in changes.items():
            setattr(customer, name, copy.deepcopy(value))
        return changes

    def _expect(self, pk: int, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            self.expected[pk][name] = normalise(name, value)
        self.counts["saves"] += 1

    def rolled_back_edit(self) -> None:
        from django.db import transaction

        from django_stripe_customers.models import Customer

        mark = f"{ROLLBACK_MARK}{len(self.rolled_back):04d}"
        self.rolled_back.append(mark)
        self.counts["rolled-back edits"] += 1
        kind = self.rng.choice(["update", "create", "update+create"])
        self.trace.append(f"rolled-back {kind} {mark}")

        class Rollback(Exception):
            pass

        try:
            with transaction.atomic():
                if "update" in kind:
                    customer = Customer.objects.get(pk=self.rng.choice(sorted(self.expected)))
                    customer.name = mark
                    customer.metadata = {**customer.metadata, "rolled_back": mark}
                    customer.save()
                if "create" in kind:
                    Customer.objects.create(email=f"{mark.lower()}@example.com", name=mark)
                raise Rollback
        except Rollback:
            pass

    def run(self) -> None:
        self.emulator.clock.set(int(time.time()))
        for _ in range(self.args.customers):
            self.create(setup=True)
        for number in range(self.args.edits):
            if number % max(1, self.args.second_every) == 0:
                self.emulator.clock.advance(1)
            roll = self.rng.random()
            if roll < 0.03:
                self.create()
            elif roll < 0.06:
                self.rolled_back_edit()
            else:
                self.edit()
            if self.rng.random() < self.args.webhook_rate:
                self.deliver_events(hold_back=0.3)

    # webhooks -----------------------------------------------------------------------------

    def deliver_events(self, hold_back: float = 0.0) -> None:
        """Deliver the events not yet delivered, shuffled, holding back a share for later, as
        the webhook endpoint would store and apply them."""
        from django_stripe_customers.sync.events import process_event, store_event

        waiting = [e for e in self.emulator.events if e["id"] not in self.delivered]
        self.rng.shuffle(waiting)
        for payload in waiting:
            if self.rng.random() < hold_back:
                continue
            self.delivered.add(payload["id"])
            self.counts["webhooks delivered"] += 1
            event, created = store_event(payload)
            if not created:
                continue
            try:
                status = process_event(event.pk)
            except Exception as exc:  # reported by check()
                status = f"failed: {type(exc).__name__}: {exc}"
            self.event_statuses[status] += 1
            self.trace.append(f"  webhook {payload['type']} {payload['created']} -> {status}")

    # the sweep ----------------------------------------------------------------------------

    def sweep(self) -> None:
        from django.db.models import Q

        from django_stripe_customers.models import Customer, SyncStatus
        from django_stripe_customers.tasks import push_pending_task

        unfinished = Q(sync_status=SyncStatus.PENDING) | Q(push_intent__isnull=False)
        self.counts["pending after the edits"] = Customer.objects.filter(unfinished).count()
        self.counts["requests left in flight after the edits"] = Customer.objects.filter(
            push_intent__isnull=False
        ).count()
        # the outage ends: faults queued for pushes that never came are dropped
        with self.proxy._lock:
            self.counts["faults dropped at the end of the edits"] = len(self.proxy._faults)
            self.proxy._faults.clear()
        from django.conf import settings

        saved = settings.STRIPE_CUSTOMERS
        # the eager tasks that owned them have ended: take their requests over at once
        settings.STRIPE_CUSTOMERS = {**saved, "PUSH_LEASE": 0}
        try:
            for _ in range(self.args.sweep_rounds):
                if not Customer.objects.filter(unfinished).exists():
                    break
                self.counts["sweep rounds"] += 1
                try:
                    self.counts["rows re-enqueued by sweeps"] += push_pending_task(older_than=0)
                except Exception as exc:  # with --eager-propagates a failing push raises out
                    self.counts["sweep rounds interrupted"] += 1
                    self.trace.append(f"sweep: {type(exc).__name__}: {exc}")
        finally:
            settings.STRIPE_CUSTOMERS = saved
        self.deliver_events()

    # the checks ---------------------------------------------------------------------------

    def check(self) -> dict[str, list[str]]:
        from django_stripe_customers import schema
        from django_stripe_customers.mirror import fields_from_stripe
        from django_stripe_customers.models import Customer, SyncStatus

        problems: dict[str, list[str]] = defaultdict(list)
        stored = self.emulator.customers
        live = {cid: obj for cid, obj in stored.items() if not obj.get("deleted")}
        rows = list(Customer.objects.order_by("pk"))
        by_stripe_id: dict[str, list[int]] = defaultdict(list)

        for row in rows:
            where = f"customer #{row.pk} ({row.stripe_id})"
            if row.pk not in self.expected:
                problems["unexpected rows"].append(f"{where}: not created by a committed edit")
            if row.sync_status != SyncStatus.SYNCED or row.push_intent is not None:
                problems["not synced"].append(
                    f"{where}: {row.sync_status}, intent {row.push_intent is not None}, "
                    f"error {row.sync_error!r}"
                )
            if not row.stripe_id or row.stripe_id not in live:
                problems["missing in Stripe"].append(where)
                continue
            by_stripe_id[row.stripe_id].append(row.pk)
            remote = fields_from_stripe(live[row.stripe_id])
            for name in schema.PUSHABLE:
                db = normalise(name, getattr(row, name))
                stripe = normalise(name, remote.get(name))
                if db != stripe:
                    problems["mismatches"].append(f"{where}.{name}: DB {db!r} != Stripe {stripe!r}")
                if name in self.expected[row.pk] and self.expected[row.pk][name] != db:
                    problems["mismatches"].append(
                        f"{where}.{name}: committed {self.expected[row.pk][name]!r} "
                        f"!= DB {db!r} (Stripe {stripe!r})"
                    )

        # exactly once: one Stripe customer per committed create, one event per key
        for stripe_id, pks in by_stripe_id.items():
            if len(pks) > 1:
                problems["duplicates"].append(f"{stripe_id} is the customer of rows {pks}")
        orphans = sorted(set(live) - set(by_stripe_id))
        for orphan in orphans:
            problems["duplicates"].append(f"{orphan}: in Stripe, no row points at it")
        if len(live) != self.counts["creates"]:
            problems["duplicates"].append(
                f"{len(live)} customers in Stripe for {self.counts['creates']} committed creates"
            )
        events_per_key = Counter(
            (event.get("request") or {}).get("idempotency_key")
            for event in self.emulator.events
            if event["type"].startswith("customer.")
        )
        for key, count in events_per_key.items():
            if key is not None and count > 1:
                problems["duplicates"].append(f"Idempotency-Key {key} took effect {count} times")
        created_events = sum(1 for e in self.emulator.events if e["type"] == "customer.created")
        if created_events != self.counts["creates"]:
            problems["duplicates"].append(
                f"{created_events} customer.created events for {self.counts['creates']} creates"
            )

        # webhooks: every delivered event applied or found stale; nothing deleted
        for status, count in self.event_statuses.items():
            if status not in ("processed", "stale"):
                problems["events not applied"].append(f"{count} x {status}")
        deleted = [row.pk for row in rows if row.deleted]
        if deleted:
            problems["mismatches"].append(f"rows flagged deleted: {deleted}")

        # rolled back: no trace in any request Stripe received, in Stripe, or in the DB
        seen_by_stripe = json.dumps([r.params for r in self.emulator.requests], default=str)
        seen_by_stripe += json.dumps(list(stored.values()), default=str)
        for mark in self.rolled_back:
            if mark in seen_by_stripe or mark.lower() in seen_by_stripe:
                problems["rolled-back edits seen by Stripe"].append(mark)
        in_db = json.dumps(list(Customer.objects.values("name", "email", "metadata")), default=str)
        for mark in self.rolled_back:
            if mark in in_db or mark.lower() in in_db:
                problems["rolled-back edits in the DB"].append(mark)
        return problems

    def http_retries(self) -> tuple[int, Counter[str]]:
        """Requests whose Idempotency-Key the proxy had already seen, and faults hit by kind."""
        seen: set[str] = set()
        retries = 0
        hit: Counter[str] = Counter()
        for record in self.proxy.requests:
            key = record.idempotency_key
            if key is not None:
                if key in seen:
                    retries += 1
                seen.add(key)
            if record.fault is not None:
                label = record.fault.value
                if label == "status":
                    label = str(record.response_status)
                hit[label] += 1
        return retries, hit


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from django_stripe_customers.testing import StripeEmulator
    from tests.support.faultproxy import FaultProxy

    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="soak-push-") as tmp,
        StripeEmulator(api_key=API_KEY) as emulator,
        FaultProxy(upstream=emulator.url) as proxy,
    ):
        db_path = args.db or os.path.join(tmp, "soak.sqlite3")
        setup_django(db_path, proxy.url, args)
        counter = LogCounter(args.verbose)
        library_logger = logging.getLogger("django_stripe_customers")
        library_logger.addHandler(counter)
        library_logger.propagate = False
        library_logger.setLevel(logging.WARNING)

        soak = Soak(args, emulator, proxy)
        from celery.signals import task_failure, task_retry

        def on_retry(**kwargs: Any) -> None:
            soak.counts["celery task retries"] += 1

        def on_failure(**kwargs: Any) -> None:
            soak.counts["celery task failures"] += 1

        task_retry.connect(on_retry, weak=False)
        task_failure.connect(on_failure, weak=False)
        try:
            soak.run()
            edits_done = time.monotonic()
            soak.sweep()
        except BaseException:
            print("\n".join(soak.trace[-40:]), file=sys.stderr)
            raise
        problems = soak.check()
        editors: list[dict[str, Any]] = []
        if args.editors:
            editors = run_editors(
                args.editors,
                db=db_path,
                api_base=proxy.url,
                seed=args.seed,
                edits=args.editor_edits,
                time_zone=args.time_zone,
            )
            kept = (
                "pending after the edits",
                "sweep rounds",
                "requests left in flight after the edits",
                "rows re-enqueued by sweeps",
            )
            first = {name: soak.counts[name] for name in kept}
            soak.sweep()  # what the editors' own pushes left (none, or a few in flight)
            soak.counts.update(first)  # the report's sweep figures stay those of the edits
            problems.update(check_editors(editors, emulator.customers))
        retries, faults_hit = soak.http_retries()
        elapsed = time.monotonic() - started

        counts = soak.counts
        print(f"soak_push: seed {args.seed}, {args.customers} customers, {args.edits} edits, "
              f"fault rate {args.fault_rate:g}, client TIMEOUT {args.timeout:g} s, "
              f"MAX_RETRIES {args.max_retries}")  # fmt: skip
        print(f"edits:                  {args.edits} = {counts['edits']} committed edits "
              f"+ {counts['creates during edits']} creates "
              f"+ {counts['rolled-back edits']} rolled back")  # fmt: skip
        print(f"committed edits:        {counts['edits']}: save {counts['edit via save']}, "
              f"save(update_fields) {counts['edit via update_fields']}, "
              f"QuerySet.update+mark_pending {counts['edit via queryset']}, "
              f"bursts of 2-4 saves in one transaction {counts['edit via burst']}, "
              f"stale instance {counts['edit via stale']} "
              f"({counts['saves']} saves in all)")  # fmt: skip
        print(
            f"creates:                {counts['creates']} "
            f"({counts['setup creates']} setup + {counts['creates during edits']} during edits)"
        )
        print(f"rolled-back edits:      {counts['rolled-back edits']}")
        queued = ", ".join(f"{k} {v}" for k, v in sorted(soak.faults_queued.items()))
        hit = ", ".join(f"{k} {v}" for k, v in sorted(faults_hit.items()))
        events = ", ".join(f"{soak.fault_events[k]} {k}" for k in (
            "single", "outlasting the client", "outlasting Celery"))  # fmt: skip
        print(f"faulted pushes:         {sum(soak.fault_events.values())} ({events})")
        print(f"faults queued:          {sum(soak.faults_queued.values())} ({queued})")
        print(f"faults injected:        {sum(faults_hit.values())} ({hit}); "
              f"{counts['faults dropped at the end of the edits']} still queued at the end of "
              "the edits, dropped")  # fmt: skip
        print(f"HTTP requests:          {len(proxy.requests)} through the proxy, "
              f"{emulator.count()} reached Stripe")  # fmt: skip
        print(f"HTTP retries:           {retries} (requests resending an Idempotency-Key); "
              f"client retries logged {counter.messages['client retry']}, pushes the on-commit "
              f"hook could not run {counter.messages['push left to the sweep']}")  # fmt: skip
        print(f"push tasks:             {counts['celery task retries']} Celery retries, "
              f"{counts['celery task failures']} failed for good (left to the sweep); "
              f"eager propagates {args.eager_propagates}")  # fmt: skip
        print(f"after the edits:        {counts['pending after the edits']} rows pending, "
              f"{counts['requests left in flight after the edits']} with a request in flight; "
              f"{counts['sweep rounds']} sweep rounds re-enqueued "
              f"{counts['rows re-enqueued by sweeps']} rows")  # fmt: skip
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(soak.event_statuses.items()))
        print(f"webhooks:               {counts['webhooks delivered']} events delivered "
              f"shuffled, {args.second_every} edits per second of Stripe's clock: {statuses}; "
              f"{emulator.count('GET')} retrieves")  # fmt: skip
        print(f"Stripe customers:       {len(emulator.customers)}; local rows "
              f"{len(soak.expected)}")  # fmt: skip
        if editors:
            saves = sum(e["counts"].get("saves", 0) for e in editors)
            busy = sum(e["counts"].get("database busy", 0) for e in editors)
            keys = sum(
                1 for e in editors for v in e["committed"].values() for name in v
                if name.startswith("metadata.")
            )  # fmt: skip
            print(f"concurrent editors:     {args.editors} processes, {saves} saves of the same "
                  f"{args.customers}+ customers ({keys} keys committed last), {busy} database "
                  f"busy retries; TIME_ZONE {args.time_zone}")  # fmt: skip
        failing = 0
        for label in (
            "keys lost",
            "mismatches",
            "duplicates",
            "not synced",
            "missing in Stripe",
            "unexpected rows",
            "rolled-back edits seen by Stripe",
            "rolled-back edits in the DB",
            "events not applied",
        ):
            found = problems.get(label, [])
            failing += len(found)
            print(f"{label + ':':<24}{len(found)}")
            for line in found[:20]:
                print(f"    {line}")
            if len(found) > 20:
                print(f"    ... {len(found) - 20} more")
        print(f"time:                   {elapsed:.1f} s "
              f"(edits {edits_done - started:.1f} s, sweep and checks "
              f"{elapsed - (edits_done - started):.1f} s)")  # fmt: skip
        print("RESULT: " + ("PASS" if failing == 0 else "FAIL"))
        if failing and args.verbose:
            print("last steps:\n" + "\n".join(soak.trace[-60:]))
    return 0 if failing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
