"""Concurrent editors for ``scripts/soak_push.py``: several processes edit the same customers.

Run by ``soak_push.py`` after its own edits (``--editors N``, default 3): each editor is a
process of its own (its own database connection, its own eager Celery pushing through the same
proxy to the same Stripe) that loads random customers, sometimes waits a little with the
instance in hand (so that another editor saves in between), and saves an edit of what it owns:
metadata keys ``e{N}_k0``..``e{N}_k3`` (set, changed or removed) and one field
(``EDITOR_FIELDS``). Editors never touch each other's keys or fields, so every edit must
survive: in the row and in Stripe. Each prints what it last committed per customer; the soak
then sweeps and compares, key by key and field by field.

    python scripts/soak_editors.py --editor 1 --db soak.sqlite3 --api-base http://... \\
        --seed 7 --edits 200 --time-zone America/Chicago   # one editor (soak_push starts them)
"""

from __future__ import annotations

import argparse
import json
import random
import string
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: The field each editor owns (editors beyond these own metadata keys only).
EDITOR_FIELDS = ("description", "business_name", "individual_name")
KEYS_PER_EDITOR = 4


def owned(editor: int) -> tuple[list[str], str | None]:
    """The metadata keys and the field editor ``editor`` edits."""
    keys = [f"e{editor}_k{n}" for n in range(KEYS_PER_EDITOR)]
    return keys, EDITOR_FIELDS[editor] if editor < len(EDITOR_FIELDS) else None


def run_editor(args: argparse.Namespace) -> None:
    """One editor process: edits, then prints its last committed values as JSON."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from soak_django import setup_django

    setup_django(args.db, args.api_base, args)
    from django.db import OperationalError

    from django_stripe_customers.models import Customer

    rng = random.Random(f"{args.seed}-{args.editor}")
    keys, field = owned(args.editor)
    pks = list(Customer.objects.filter(deleted=False).values_list("pk", flat=True))
    committed: dict[int, dict[str, Any]] = {}
    counts: Counter[str] = Counter()
    for _ in range(args.edits):
        pk = rng.choice(pks)
        key = rng.choice(keys)
        token = "".join(rng.choices(string.ascii_letters, k=8))
        value = None if rng.random() < 0.25 else token
        for attempt in range(5):
            try:
                customer = Customer.objects.get(pk=pk)
                if rng.random() < 0.5:  # hold the instance while others save
                    time.sleep(rng.uniform(0, 0.02))
                if value is None:
                    customer.metadata.pop(key, None)
                else:
                    customer.metadata[key] = value
                edits_field = field is not None and rng.random() < 0.5
                if edits_field:
                    setattr(customer, str(field), token)
                customer.save()
            except OperationalError:  # SQLite's one writer: busy past the timeout, try again
                counts["database busy"] += 1
                time.sleep(0.05 * (attempt + 1))
                continue
            mine = committed.setdefault(pk, {})
            mine[f"metadata.{key}"] = value
            if edits_field:
                mine[str(field)] = token
            counts["saves"] += 1
            break
    print(json.dumps({"committed": {str(k): v for k, v in committed.items()}, "counts": counts}))


def run_editors(
    count: int, *, db: str, api_base: str, seed: int, edits: int, time_zone: str
) -> list[dict[str, Any]]:
    """Start ``count`` editor processes at once and return what each printed."""
    command = [sys.executable, str(Path(__file__).resolve())]
    common = ["--db", db, "--api-base", api_base, "--seed", str(seed), "--edits", str(edits)]
    procs = [
        subprocess.Popen(
            [*command, "--editor", str(n), *common, "--time-zone", time_zone],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(count)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"editor failed ({proc.returncode}):\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def check_editors(results: list[dict[str, Any]], stored: dict[str, Any]) -> dict[str, list[str]]:
    """Every editor's last committed value of each of its keys and fields, in the row and in
    Stripe (``stored``: the emulator's customers by id)."""
    from django_stripe_customers.models import Customer

    problems: dict[str, list[str]] = {"keys lost": [], "mismatches": []}
    rows = {row.pk: row for row in Customer.objects.all()}
    for editor, result in enumerate(results):
        for pk_text, values in result["committed"].items():
            row = rows[int(pk_text)]
            remote = stored.get(row.stripe_id or "", {})
            for name, value in values.items():
                if name.startswith("metadata."):
                    key = name.removeprefix("metadata.")
                    local, there = row.metadata.get(key), (remote.get("metadata") or {}).get(key)
                    if local != value or there != value:
                        problems["keys lost"].append(
                            f"row {row.pk} editor {editor} {key}: committed {value!r}, "
                            f"row {local!r}, Stripe {there!r}"
                        )
                elif getattr(row, name) != value or remote.get(name) != value:
                    problems["mismatches"].append(
                        f"row {row.pk} editor {editor} {name}: committed {value!r}, row "
                        f"{getattr(row, name)!r}, Stripe {remote.get(name)!r}"
                    )
    return problems


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--editor", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--time-zone", default="America/Chicago")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--max-retries", type=int, default=2)
    parser.add_argument("--eager-propagates", action="store_true")
    parser.add_argument("--migrate", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run_editor(parse_args())
