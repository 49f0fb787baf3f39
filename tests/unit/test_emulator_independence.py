"""``django_stripe_customers.testing`` stands on its own: no Django, nothing of the client.

The emulator is the yardstick the client is measured with, so it shares no code with
``django_stripe_customers.stripe`` (a bug there would hide on both sides), and it runs where
Django is not configured (the CLI, a plain pytest suite). The pytest plugin may import Django
lazily, inside a fixture; nothing else in the package may import it at all. (At run time, in a
fresh interpreter: ``tests/system/test_emulator_cli.py``.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import django_stripe_customers.testing

PACKAGE = "django_stripe_customers.testing"
PACKAGE_DIR = Path(django_stripe_customers.testing.__file__).parent
#: Modules allowed to import Django inside a function (lazily), never at import time.
LAZY_DJANGO_ALLOWED = {"pytest_plugin"}


def imported_modules(tree: ast.Module, module: str) -> list[tuple[str, bool]]:
    """Every module an import statement names, made absolute, with whether the statement is
    inside a function (lazy). ``from .. import stripe`` names ``...stripe`` itself."""
    package = module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((alias.name, inside) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    anchor = ".".join(parts[: len(parts) - child.level + 1])
                    base = f"{anchor}.{base}" if base else anchor
                found.append((base, inside))
                found.extend((f"{base}.{alias.name}", inside) for alias in child.names)
            visit(child, inside)

    visit(tree, False)
    return found


def is_django(name: str) -> bool:
    return name == "django" or name.startswith("django.")


def is_client(name: str) -> bool:
    return name == "django_stripe_customers.stripe" or name.startswith(
        "django_stripe_customers.stripe."
    )


def test_the_import_walker_resolves_relative_imports() -> None:
    """The walker itself, on the forms it must catch (so the test below can fail)."""
    source = (
        "from ..stripe.webhooks import sign_payload\n"
        "from .. import stripe\n"
        "import django.conf\n"
        "def fixture():\n"
        "    from django.conf import settings\n"
    )
    names = imported_modules(ast.parse(source), f"{PACKAGE}.webhooks")
    assert ("django_stripe_customers.stripe.webhooks", False) in names
    assert ("django_stripe_customers.stripe", False) in names
    assert ("django.conf", False) in names
    assert ("django.conf", True) in names


def test_testing_imports_nothing_of_the_client_nor_of_django() -> None:
    modules = sorted(PACKAGE_DIR.glob("*.py"))
    assert {path.stem for path in modules} >= {"app", "emulator", "webhooks", "pytest_plugin"}
    offences: list[str] = []
    for path in modules:
        module = f"{PACKAGE}.{path.stem}" if path.stem != "__init__" else f"{PACKAGE}.__init__"
        for name, lazy in imported_modules(ast.parse(path.read_text()), module):
            if is_client(name):
                offences.append(f"{path.name} imports {name}")
            elif is_django(name) and not (lazy and path.stem in LAZY_DJANGO_ALLOWED):
                offences.append(f"{path.name} imports {name}{' (lazily)' if lazy else ''}")
    assert offences == []
