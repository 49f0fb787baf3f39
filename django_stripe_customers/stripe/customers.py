"""The endpoints of one Stripe object type (``client.resource(path)``), and
``client.customers``: the /v1/customers ones."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import quote

from .responses import StripeObject

if TYPE_CHECKING:
    from .client import StripeClient

Params: TypeAlias = Mapping[str, Any]
Expand: TypeAlias = Sequence[str] | None


class ObjectResource:
    """The create, retrieve, update, delete and list endpoints of the objects at ``path``
    (``/v1/customers``): ``{path}`` lists and creates, ``{path}/{id}`` does the rest."""

    def __init__(self, client: StripeClient, path: str) -> None:
        if not path.startswith("/v1/") or path.endswith("/"):
            raise ValueError(f"path must be a collection like /v1/customers, got {path!r}")
        self._client, self.path = client, path

    def _path(self, customer_id: str) -> str:
        if not isinstance(customer_id, str) or not customer_id:
            raise ValueError(f"customer_id must be a non-empty string, got {customer_id!r}")
        return f"{self.path}/{quote(customer_id, safe='')}"

    def create(
        self,
        params: Params | None = None,
        *,
        idempotency_key: str | None = None,
        expand: Expand = None,
    ) -> StripeObject:
        return self._client.request(
            "POST", self.path, params, idempotency_key=idempotency_key, expand=expand
        )

    def retrieve(self, customer_id: str, *, expand: Expand = None) -> StripeObject:
        return self._client.request("GET", self._path(customer_id), expand=expand)

    def update(
        self,
        customer_id: str,
        params: Params,
        *,
        idempotency_key: str | None = None,
        expand: Expand = None,
    ) -> StripeObject:
        return self._client.request(
            "POST", self._path(customer_id), params, idempotency_key=idempotency_key, expand=expand
        )

    def delete(self, customer_id: str, *, idempotency_key: str | None = None) -> StripeObject:
        return self._client.request(
            "DELETE", self._path(customer_id), idempotency_key=idempotency_key
        )

    def list(
        self, params: Params | None = None, *, limit: int | None = None, expand: Expand = None
    ) -> StripeObject:
        """One page: the raw list object (``data``, ``has_more``)."""
        if limit is not None:
            params = {**(params or {}), "limit": _checked_limit(limit)}
        return self._client.request("GET", self.path, params, expand=expand)

    def list_all(
        self, params: Params | None = None, *, limit: int = 100, expand: Expand = None
    ) -> Iterator[dict[str, Any]]:
        """Every object, newest first, fetched one page at a time (memory stays flat)."""
        _checked_limit(limit)
        if params and params.get("ending_before") is not None:
            raise ValueError("list_all pages forward with starting_after; drop ending_before")
        query = {**(params or {}), "limit": limit}
        return (
            customer
            for page in self._client.iter_pages(self.path, query, expand=expand)
            for customer in page
        )


class CustomersResource(ObjectResource):
    """``client.customers``: the /v1/customers endpoints."""

    def __init__(self, client: StripeClient) -> None:
        super().__init__(client, "/v1/customers")


def _checked_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise ValueError(f"limit must be an int from 1 to 100, got {limit!r}")
    return limit
