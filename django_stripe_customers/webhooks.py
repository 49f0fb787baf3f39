"""The webhook endpoint: verify the signature, store the event once, answer 200 fast.

Processing happens in ``process_webhook_event_task``, enqueued when the event's row commits
(``process_pending_events_task`` re-enqueues stored events whose message was lost).
Refusals: a bad or missing signature (400, nothing stored), a body that is not a JSON event
(400; signed but malformed: recorded as ``refused``, see ``sync.event_shape``), a body over
``WEBHOOK_MAX_BODY`` (413), an event whose ``livemode`` differs from the API
key's mode (400, stored as ``refused``, never applied). A duplicate event answers 200 and is not
processed again; an event type we do not handle is stored as ``ignored``.
"""

from __future__ import annotations

import json
import logging

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import conf
from .accounts import KeyEntry, entries
from .models import WebhookEvent
from .stripe.webhooks import WebhookSignatureError, verify_signature
from .sync.events import MalformedEvent, record_refused, store_event
from .tasks import enqueue_event

logger = logging.getLogger("django_stripe_customers.webhooks")


def _refuse(status: int, reason: str) -> JsonResponse:
    logger.warning("Stripe webhook refused (%s): %s", status, reason)
    return JsonResponse({"error": reason}, status=status)


def _read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The raw body, or None when it is over ``limit`` bytes (read no further than that).

    A chunked body (``Transfer-Encoding: chunked``) has no ``Content-Length``, and Django's
    WSGI request then reads nothing: the server's own stream is read instead when the server
    says it ends with the body (``wsgi.input_terminated``, as gunicorn does). Under ASGI the
    server hands Django the whole body.
    """
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared:
        if not declared.isdigit() or int(declared) > limit:
            return None
        body = request.body
    elif request.META.get("wsgi.input_terminated") and "wsgi.input" in request.META:
        body = request.META["wsgi.input"].read(limit + 1)
    else:
        body = request.body
    return None if len(body) > limit else body


def _verify(payload: bytes, header: str | None) -> tuple[int, KeyEntry]:
    """The signature's time and the key whose endpoint secret signed it (an account or a
    Connect endpoint of that key: the event is of its own account, or of the connected account
    the event names). Raises ``WebhookSignatureError`` when no secret signed it."""
    tolerance = int(conf.get_setting("WEBHOOK_TOLERANCE"))
    failure = WebhookSignatureError("no webhook secret configured")
    for entry in entries():
        secrets = [*entry.webhook_secrets, *entry.connect_webhook_secrets]
        if not secrets:
            continue
        try:
            return verify_signature(payload, header, secrets, tolerance=tolerance), entry
        except WebhookSignatureError as exc:
            failure = exc
    raise failure


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    limit = int(conf.get_setting("WEBHOOK_MAX_BODY"))
    payload = _read_body(request, limit)
    if payload is None:
        return _refuse(413, f"body larger than {limit} bytes")
    try:
        signed_at, entry = _verify(payload, request.headers.get("Stripe-Signature"))
    except WebhookSignatureError as exc:
        return _refuse(400, str(exc))
    try:
        event_payload = json.loads(payload)
    except ValueError as exc:
        reason = f"the body is not JSON ({exc})"
        record_refused(payload, None, reason)
        return _refuse(400, f"not a Stripe event: {reason}")
    try:
        event, created = store_event(event_payload, not_after=signed_at, endpoint=entry)
    except MalformedEvent as exc:  # signed, yet not an event: recorded, so it can be seen
        record_refused(payload, event_payload, str(exc))
        return _refuse(400, f"not a Stripe event: {exc}")
    if event.status == WebhookEvent.Status.REFUSED:  # recorded, never applied
        if not created:
            event.refresh_from_db(fields=["error"])
        return _refuse(400, event.error)
    if created and event.status == WebhookEvent.Status.RECEIVED:
        pk = event.pk
        transaction.on_commit(lambda: enqueue_event(pk))
    return JsonResponse({"received": True, "duplicate": not created, "status": event.status})
