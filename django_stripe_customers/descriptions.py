"""What the sync engine knows of an object it mirrors, in one place: its model, its API path,
the events that carry it, its attributes.

The engine (``sync/``) reads these from the description it works on instead of naming
``/v1/customers`` or ``customer.*`` itself; ``CUSTOMERS`` is the one object mirrored today.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from . import schema
from .models import Customer
from .stripe import StripeClient
from .stripe.customers import ObjectResource


@dataclass(frozen=True)
class MirroredObject:
    """One Stripe object type and its mirror."""

    name: str  # Stripe's ``object``, the prefix of its events
    model: type[Any]
    path: str  # the collection: list and create; ``{path}/{id}`` retrieves, updates, deletes
    mirrored: tuple[str, ...]  # attributes with a column
    pushable: tuple[str, ...]  # attributes a local edit sends
    includable: tuple[str, ...]  # attributes Stripe shows only when expanded

    def endpoints(self, client: StripeClient) -> ObjectResource:
        """Its create, retrieve, update, delete and list requests, through ``client``."""
        return client.resource(self.path)

    @property
    def events(self) -> frozenset[str]:
        """The event types that carry the object: created, updated, deleted."""
        return frozenset(f"{self.name}.{change}" for change in ("created", "updated", "deleted"))

    @property
    def deleted_event(self) -> str:
        return f"{self.name}.deleted"

    @property
    def event_filter(self) -> str:
        """The Events API's ``type`` filter for all of them (``customer.*``)."""
        return f"{self.name}.*"


CUSTOMERS: Final = MirroredObject(
    name="customer",
    model=Customer,
    path="/v1/customers",
    mirrored=schema.MIRRORED,
    pushable=schema.PUSHABLE,
    includable=schema.INCLUDABLE,
)
