"""The API's permissions: ``STRIPE_CUSTOMERS["API_PERMISSION_CLASSES"]``, read on every request.

The default, ``CustomerModelPermissions``, applies Django's model permissions the way the admin
does. Dotted paths are imported per request, so ``override_settings`` applies to the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from django.contrib.auth import get_permission_codename
from django.utils.module_loading import import_string
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from ..conf import get_setting
from ..models import Customer

#: Each action of ``CustomerViewSet`` and the model permissions that allow it (any one of
#: them): the admin's rules, where the change permission also lets a user see customers.
ACTION_PERMISSIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "list": ("view", "change"),
    "retrieve": ("view", "change"),
    "create": ("add",),
    "update": ("change",),
    "partial_update": ("change",),
    "pull": ("change",),
    "destroy": ("delete",),
}

#: ``OPTIONS`` is DRF's ``metadata`` action; DRF's metadata asks again with the method whose
#: form it describes (``POST``, ``PUT``), which maps to the action it would run.
_METADATA_ACTIONS: Final[Mapping[str, str]] = {"POST": "create", "PUT": "update"}

_VERBS: Final[Mapping[str, str]] = {
    "list": "list",
    "retrieve": "see",
    "create": "create",
    "update": "update",
    "partial_update": "update",
    "pull": "pull",
    "destroy": "delete",
}


class CustomerModelPermissions(BasePermission):
    """Django's model permissions on ``Customer``, as the admin applies them.

    Reading (list, retrieve) needs ``view_customer`` or ``change_customer``; creating needs
    ``add_customer``; updating and pulling need ``change_customer``; deleting needs
    ``delete_customer``. Anonymous users and
    actions not listed in ``ACTION_PERMISSIONS`` are refused; a method without a route is a
    405. Superusers have every permission. Staff status is not needed
    (a program's own user can be given just the permissions it uses), and not enough.
    """

    message = "You do not have permission to perform this action."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        action = getattr(view, "action", None)
        if action is None:  # a method no route has (DELETE of the list): 405, as DRF's own
            raise MethodNotAllowed(request.method or "")
        if action == "metadata":
            action = _METADATA_ACTIONS.get(request.method or "", "list")
        allowed = ACTION_PERMISSIONS.get(action)
        if allowed is None:
            return False
        names = [_permission_name(permission) for permission in allowed]
        if any(user.has_perm(name) for name in names):
            return True
        self.message = (
            f"To {_VERBS[action]} customers you need the {' or '.join(names)} permission."
        )
        return False


def _permission_name(action: str) -> str:
    """``"change"`` -> ``"stripe_customers.change_customer"``."""
    opts = Customer._meta
    return f"{opts.app_label}.{get_permission_codename(action, opts)}"


def api_permission_classes() -> list[Any]:
    """The configured permission classes (dotted paths or classes, ``&``/``|`` compositions)."""
    configured = get_setting("API_PERMISSION_CLASSES")
    return [import_string(entry) if isinstance(entry, str) else entry for entry in configured]
