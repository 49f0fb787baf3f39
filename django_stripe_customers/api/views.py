"""``CustomerViewSet``: list, retrieve, create, update and pull the mirrored customers.

Every write goes through ``Customer.save()``, so it is pushed to Stripe like any other save.

Routes (under wherever ``django_stripe_customers.api.urls`` is included)::

    GET   customers/                 the list, newest first (see below)
    POST  customers/                 create (pushed to Stripe on commit)      -> 201
    GET   customers/{id}/            one customer, with its version as ETag
    PUT   customers/{id}/            update (omitted fields are left as they are); with
                                     If-Match: the ETag read, 412 if the row changed since
    PATCH customers/{id}/            update
    DELETE customers/{id}/           delete: in Stripe through the outbox (202, the row kept as a
                                     tombstone), or outright if it never reached Stripe (204)
    POST  customers/{id}/pull/       reconcile the row with Stripe now

``{id}`` is the Stripe id (``cus_...``) or the local ``pk`` (the only handle on a row that is not
in Stripe yet). Bodies are JSON. A customer looks like Stripe's object (``id`` is the Stripe id,
``created`` unix seconds) plus ``pk``, ``deleted``, ``stripe_account`` (null: the API key's own
account), ``sync_status``, ``synced_at`` (unix seconds) and ``sync_error``; only the attributes
in ``serializers.WRITABLE_FIELDS`` are written (and, on create only, ``stripe_account`` and
``livemode``: an account no configured key reaches is a 400), other known fields sent are
ignored, unknown ones refused.

List parameters (an unknown one is a 400, as in Stripe):

- ``email`` (exact, case-sensitive, as in Stripe), ``sync_status`` (synced, pending, failed),
  ``deleted`` (true or false; deleted customers are listed unless ``deleted=false``);
- ``stripe_account`` (``own``: the API key's own account; or an ``acct_`` id), ``livemode``
  (true or false);
- ``created``, ``created[gt]``, ``created[gte]``, ``created[lt]``, ``created[lte]``: unix
  seconds or ISO 8601 (``2024-01-31``, ``2024-01-31T12:00:00+01:00``; no offset means UTC);
- ``limit`` (1 to 100, default 50), ``starting_after`` or ``ending_before`` (a customer's
  ``id`` or ``pk``); the answer is Stripe's list: ``{"object": "list", "url", "has_more",
  "data"}``.

Errors have DRF's usual shape: ``{"field": ["field: <what Stripe allows> (got ...)"]}`` for
bad input (nothing saved, nothing sent), else ``{"detail": "..."}``: 404 unknown customer,
409 an update of a customer deleted in Stripe or a pull Stripe answers 404, 400 a pull of a
row not in Stripe yet, 502 Stripe refused the call (the API key's value is never shown), 503
Stripe unreachable or overloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db import transaction
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.settings import api_settings

from ..accounts import UnknownAccount
from ..deletion import delete_rows
from ..models import Customer
from ..stripe import AuthenticationError, InvalidRequestError, PermissionDeniedError, StripeError
from ..sync.pull import pull_customer
from .filters import FILTER_PARAMS, CustomerFilterBackend, identifier_filter
from .pagination import PAGINATION_PARAMS, StripeListPagination
from .permissions import api_permission_classes
from .serializers import CustomerSerializer

if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission

LIST_PARAMS = FILTER_PARAMS | PAGINATION_PARAMS


class APIFailure(APIException):
    """An answer with its own status: ``APIFailure(409, "...", code="deleted_in_stripe")``."""

    def __init__(self, status: int, detail: str, *, code: str) -> None:
        super().__init__(detail, code)
        self.status_code = status


def stripe_failure(exc: StripeError, customer: Customer) -> APIException:
    """The answer to a failed Stripe call; Stripe's words about the key are never repeated."""
    if isinstance(exc, InvalidRequestError) and exc.http_status == 404:
        customer.refresh_from_db(fields=["sync_error"])  # pull_customer recorded why
        return APIFailure(409, customer.sync_error or str(exc), code="not_in_stripe_account")
    status = f"HTTP {exc.http_status}" if exc.http_status else "no answer"
    if exc.is_transient:
        return APIFailure(
            503,
            f"Stripe could not be reached or is overloaded ({status}, {type(exc).__name__}); "
            "nothing was changed, try again later.",
            code="stripe_unavailable",
        )
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return APIFailure(
            502,
            f"Stripe refused this site's API key ({status}): check STRIPE_CUSTOMERS['API_KEY'].",
            code="stripe_authentication",
        )
    where = f", param {exc.param}" if exc.param else ""
    message = f"Stripe refused the request ({status}{where}): {exc.message}"
    return APIFailure(502, message, code="stripe_error")


class CustomerViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Customer],
):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filter_backends = [CustomerFilterBackend]
    pagination_class = StripeListPagination
    parser_classes = [JSONParser]
    lookup_url_kwarg = "id"

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        return [permission() for permission in api_permission_classes()]

    def get_object(self) -> Customer:
        """By Stripe id or local pk (list filters do not apply to a detail route)."""
        identifier = self.kwargs[self.lookup_url_kwarg or "id"]
        lookup = identifier_filter(identifier)
        customer = None if lookup is None else self.get_queryset().filter(lookup).first()
        if customer is None:
            raise NotFound(f"No customer {identifier!r} (use its Stripe id, cus_..., or its pk).")
        self.check_object_permissions(self.request, customer)
        return customer

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        known = LIST_PARAMS | {api_settings.URL_FORMAT_OVERRIDE}
        unknown = sorted(name for name in request.query_params if name not in known)
        if unknown:
            raise ValidationError({name: [f"{name}: unknown query parameter"] for name in unknown})
        return super().list(request, *args, **kwargs)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        customer = self.get_object()
        return Response(self.get_serializer(customer).data, headers={"ETag": etag(customer)})

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with transaction.atomic():  # the version compared is the version written over
            customer = self.get_object()
            customer = Customer.objects.select_for_update().get(pk=customer.pk)
            if customer.deleted:
                raise APIFailure(
                    409,
                    f"Customer {customer.stripe_id} was deleted in Stripe; it cannot be updated.",
                    code="deleted_in_stripe",
                )
            _check_if_match(request, customer)
            partial = kwargs.get("partial", False)
            serializer = self.get_serializer(customer, data=request.data, partial=partial)
            serializer.is_valid(raise_exception=True)
            self.perform_update(serializer)
        customer.refresh_from_db()  # after the commit, and the push it ran (inline, eager)
        return Response(serializer.data, headers={"ETag": etag(customer)})

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Delete the customer: in Stripe, through the outbox (202 and the row, now flagged
        ``deleted`` and pending until Stripe confirms), or, for a row that never reached
        Stripe or a tombstone, removed outright (204)."""
        customer = self.get_object()
        done = delete_rows(Customer.objects.filter(pk=customer.pk))
        if done.removed:
            return Response(status=status.HTTP_204_NO_CONTENT)
        customer.refresh_from_db()
        return Response(self.get_serializer(customer).data, status=status.HTTP_202_ACCEPTED)

    def perform_create(self, serializer: BaseSerializer[Customer]) -> None:
        _save_and_refresh(serializer)

    def perform_update(self, serializer: BaseSerializer[Customer]) -> None:
        _save_and_refresh(serializer)

    @action(detail=True, methods=["post"])
    def pull(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Retrieve the customer from Stripe and apply it (unpushed local edits are kept)."""
        customer = self.get_object()
        if not customer.stripe_id:
            raise APIFailure(
                400,
                "This customer is not in Stripe yet (no Stripe id): nothing to pull.",
                code="not_in_stripe",
            )
        try:
            pull_customer(customer.stripe_id)
        except StripeError as exc:
            raise stripe_failure(exc, customer) from exc
        except UnknownAccount as exc:  # the settings have no key for the row's account
            raise APIFailure(502, str(exc), code="no_key_for_account") from exc
        customer.refresh_from_db()
        return Response(self.get_serializer(customer).data)


def etag(customer: Customer) -> str:
    """The row's version, for ``If-Match``: it changes with every local edit and every time
    Stripe's data is applied (a push's answer, a pull, an event)."""
    synced = int(customer.synced_at.timestamp() * 1_000_000) if customer.synced_at else 0
    return f'"{customer.pk}.{customer.local_version}.{synced}"'


def _check_if_match(request: Request, customer: Customer) -> None:
    """``If-Match``: the update applies only to the version the client read (412 otherwise,
    with the current version); none, or ``*``, updates whatever the row holds."""
    wanted = request.headers.get("If-Match")
    if not wanted or wanted.strip() == "*":
        return
    current = etag(customer)
    if current not in [tag.strip().removeprefix("W/") for tag in wanted.split(",")]:
        raise PreconditionFailed(current)


class PreconditionFailed(APIException):
    status_code = 412
    default_code = "changed_since_read"

    def __init__(self, current: str) -> None:
        super().__init__(
            "The customer changed since you read it (If-Match does not match its ETag "
            f"{current}): read it again (GET), then apply your edit to what it holds now."
        )
        self.current = current


def _save_and_refresh(serializer: BaseSerializer[Customer]) -> None:
    """Save (the model's signals mark the row pending and push it on commit), then re-read the
    row so the answer shows what the push did (with ``ATOMIC_REQUESTS``: still pending)."""
    customer = serializer.save()
    customer.refresh_from_db()
