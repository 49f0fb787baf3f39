"""A bare Stripe HTTP caller on ``requests`` for tests: independent of the project's client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests

Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None

DEFAULT_KEY = "sk_test_fidelity"


def form_pairs(params: Params, prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: ``{"a": {"b": [1]}}`` -> ``[("a[b][0]", "1")]``.

    Booleans become ``true``/``false``; ``None`` is left out; ``""`` is sent as is.
    """
    if params is None:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    pairs: list[tuple[str, str]] = []
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs.extend(form_pairs(value, name))
        elif isinstance(value, list | tuple):
            pairs.extend(form_pairs([(str(i), item) for i, item in enumerate(value)], name))
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        else:
            pairs.append((name, str(value)))
    return pairs


class Api:
    """``api.post("/v1/customers", {"email": "a@example.com"})`` and friends."""

    def __init__(self, base_url: str, api_key: str | None = DEFAULT_KEY) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if api_key is not None:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def request(
        self,
        method: str,
        path: str,
        params: Params = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = self.base_url + path
        pairs = form_pairs(params)
        if method == "POST":
            return self.session.request(method, url, data=pairs, headers=headers, timeout=10)
        return self.session.request(method, url, params=pairs, headers=headers, timeout=10)

    def get(self, path: str, params: Params = None, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, params, **kwargs)

    def post(self, path: str, params: Params = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, params, **kwargs)

    def delete(self, path: str, params: Params = None, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, params, **kwargs)

    def create_customer(self, params: Params = None) -> dict[str, Any]:
        response = self.post("/v1/customers", params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def close(self) -> None:
        self.session.close()
