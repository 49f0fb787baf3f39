"""The API's permissions: ``STRIPE_CUSTOMERS["API_PERMISSION_CLASSES"]``, read on every request.

Dotted paths are imported then, so ``override_settings`` applies to the next request.
"""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string

from ..conf import get_setting


def api_permission_classes() -> list[Any]:
    """The configured permission classes (dotted paths or classes, ``&``/``|`` compositions)."""
    configured = get_setting("API_PERMISSION_CLASSES")
    return [import_string(entry) if isinstance(entry, str) else entry for entry in configured]
