"""The package's layers point down only, read from its imports (``ast``, nothing imported).

From the bottom: Stripe's data; the HTTP client (``stripe/``) and the emulator (``testing/``),
which know no Django and nothing of each other; settings; the rules of an edit; the model;
``sync/`` (plain functions that decide and return); how work runs (tasks, receivers,
dispatch); then what people and programs use (admin, API, commands, the webhook view,
checks). ``python tests/unit/test_layers.py`` prints the graph (module -> modules it imports).
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_stripe_customers import schema

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "django_stripe_customers"

#: Layer of each module (longest matching prefix); an import may only go to a lower or equal
#: layer, and modules of one layer may not import each other in a circle.
LAYERS: dict[str, int] = {
    "schema": 0,
    "countries": 0,
    "": 0,  # the package's __init__: the version
    "stripe": 1,
    "testing": 1,
    "conf": 2,
    "clients": 2,
    "accounts": 3,
    "columns": 3,
    "ratelimits": 2,
    "validation": 3,
    "mirror": 3,
    "edits": 3,
    "saved_fields": 3,
    "bookkeeping": 3,
    "metadata_patch": 3,
    "owners": 4,
    "deletion": 4,
    "managers": 4,
    "records": 4,
    "descriptions": 4,
    "models": 4,
    "migrations": 4,
    "sync": 5,
    "signals": 6,
    "tasks": 6,
    "dispatch": 6,
    "receivers": 6,
    "admin": 7,
    "api": 7,
    "management": 7,
    "webhooks": 7,
    "urls": 7,
    "checks": 7,
    "push_checks": 7,
    "apps": 8,
}

#: Function-local imports Django's app loading forces: ``AppConfig.ready()`` loads the
#: modules that register receivers and checks, which import the models.
ALLOWED_LOCAL_IMPORTS = {("apps", "StripeCustomersConfig.ready")}

#: Third-party packages a layer must not import.
NO_DJANGO = ("django", "rest_framework", "celery")


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def package_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in sorted((ROOT / PACKAGE).rglob("*.py"))
        if "migrations" not in path.parts
    }


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The modules ``from X import a, b`` loads: ``X.a`` where that is a module, else ``X``."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - node.level + 1]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    known = package_modules()
    names = {
        f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix
        for alias in node.names
    }
    return sorted(names)


def imports_of(module: str, path: Path) -> Iterator[tuple[str, str, bool]]:
    """(imported module, where, is function-local) for every import, ``TYPE_CHECKING``
    blocks left out (they are not run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, scope: list[str], local: bool) -> Iterator[tuple[str, str, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                yield from (found for other in child.orelse for found in visit(other, scope, local))
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, ".".join(scope), local
            elif isinstance(child, ast.ImportFrom):
                for name in _resolve(module, is_package, child):
                    yield name, ".".join(scope), local
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from visit(child, [*scope, child.name], True)
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, [*scope, child.name], local)
            else:
                yield from visit(child, scope, local)

    yield from visit(tree, [], False)


def graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at run time)."""
    modules = package_modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imported, _where, _local in imports_of(name, path):
            if imported in modules and imported != name:
                edges[name].add(imported)
    return edges


def layer(module: str) -> int:
    inner = module.removeprefix(PACKAGE).lstrip(".")
    keys = [key for key in LAYERS if inner == key or inner.startswith(key + ".")]
    key = max(keys, key=len) if keys else ""
    if not keys and inner:
        raise AssertionError(f"{module}: no layer declared in tests/unit/test_layers.py")
    return LAYERS[key]


def short(module: str) -> str:
    return module.removeprefix(PACKAGE + ".") if module != PACKAGE else "__init__"


# -- the rules -----------------------------------------------------------------------------


def test_every_module_has_a_layer():
    for module in package_modules():
        layer(module)


def test_imports_only_point_down():
    upward = [
        f"{short(a)} (layer {layer(a)}) imports {short(b)} (layer {layer(b)})"
        for a, targets in graph().items()
        for b in targets
        if layer(b) > layer(a)
    ]
    assert upward == []


def test_no_circle_of_imports():
    edges = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                circles.append([short(m) for m in [*path[path.index(target) :], target]])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert circles == []


def test_no_function_local_imports_of_the_package():
    found = []
    for name, path in package_modules().items():
        for imported, where, local in imports_of(name, path):
            if local and imported.startswith(PACKAGE):
                if (short(name), where) not in ALLOWED_LOCAL_IMPORTS:
                    found.append(f"{short(name)}:{where} imports {short(imported)}")
    assert found == []


@pytest.mark.parametrize("layer_name", ["stripe", "testing"])
def test_the_client_and_the_emulator_know_no_django_and_not_each_other(layer_name):
    other = "testing" if layer_name == "stripe" else "stripe"
    found = []
    for name, path in package_modules().items():
        if not (short(name) == layer_name or short(name).startswith(layer_name + ".")):
            continue
        for imported, where, local in imports_of(name, path):
            if short(name) == "testing.pytest_plugin" and local:
                continue  # pytest-django's own fixtures, asked for by name inside a fixture
            top = imported.split(".")[0]
            if top in NO_DJANGO or imported.startswith(f"{PACKAGE}.{other}"):
                found.append(f"{short(name)}:{where or '<module>'} imports {imported}")
    assert found == []


def test_the_model_imports_no_sync_tasks_signals_or_screens():
    lower = {"schema", "countries", "conf", "clients", "validation", "mirror", "edits"}
    lower |= {"saved_fields", "__init__", "models", "bookkeeping", "managers", "owners"}
    lower |= {"deletion", "records", "metadata_patch", "accounts", "columns"}
    for target in graph()[f"{PACKAGE}.models"]:
        assert short(target) in lower, f"models imports {short(target)}"


def test_sync_imports_no_tasks_signals_or_screens():
    for module, targets in graph().items():
        if not short(module).startswith("sync"):
            continue
        for target in targets:
            assert layer(target) <= layer(module), f"{short(module)} imports {short(target)}"
            assert not short(target).startswith(("signals", "receivers", "tasks", "dispatch"))


def print_graph() -> None:
    for module, targets in sorted(graph().items()):
        listed = ", ".join(sorted(short(t) for t in targets)) or "-"
        print(f"{short(module)} -> {listed}")


if __name__ == "__main__":
    sys.exit(print_graph())


#: Attributes every Stripe object the engine could mirror has: ``sync/`` may name these.
COMMON_ATTRIBUTES = frozenset({"id", "object", "created", "livemode", "metadata"})


def test_sync_names_no_attribute_of_the_customer_and_not_its_path():
    """What is particular to Customers lives in ``descriptions`` and ``schema``: the engine's
    strings (code and docstrings) name none of its attributes and not ``/v1/customers``."""
    particular = set(schema.MIRRORED) - COMMON_ATTRIBUTES
    found = []
    for path in sorted((ROOT / PACKAGE / "sync").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                continue
            if node.value in particular or "/v1/customers" in node.value:
                found.append(f"{path.name}:{node.lineno} {node.value[:60]!r}")
    assert found == []
