"""``client.customers``: the /v1/customers endpoints of ``StripeClient``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import quote

from .responses import StripeObject

if TYPE_CHECKING:
    from .client import StripeClient

Params: TypeAlias = Mapping[str, Any]
Expand: TypeAlias = Sequence[str] | None


class CustomersResource:
    """``client.customers``: the /v1/customers endpoints."""

    def __init__(self, client: StripeClient) -> None:
        self._client = client

    @staticmethod
    def _path(customer_id: str) -> str:
        if not isinstance(customer_id, str) or not customer_id:
            raise ValueError(f"customer_id must be a non-empty string, got {customer_id!r}")
        return f"/v1/customers/{quote(customer_id, safe='')}"

    def create(
        self,
        params: Params | None = None,
        *,
        idempotency_key: str | None = None,
        expand: Expand = None,
    ) -> StripeObject:
        return self._client.request(
            "POST", "/v1/customers", params, idempotency_key=idempotency_key, expand=expand
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
        return self._client.request("GET", "/v1/customers", params, expand=expand)

    def list_all(
        self, params: Params | None = None, *, limit: int = 100, expand: Expand = None
    ) -> Iterator[dict[str, Any]]:
        """Every customer, newest first, fetched one page at a time (memory stays flat)."""
        _checked_limit(limit)
        if params and params.get("ending_before") is not None:
            raise ValueError("list_all pages forward with starting_after; drop ending_before")
        query = {**(params or {}), "limit": limit}
        return (
            customer
            for page in self._client.iter_pages("/v1/customers", query, expand=expand)
            for customer in page
        )


def _checked_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise ValueError(f"limit must be an int from 1 to 100, got {limit!r}")
    return limit
