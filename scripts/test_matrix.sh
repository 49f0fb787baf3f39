#!/usr/bin/env bash
# `make test-matrix`: the SQLite tier on one Python x Django pair, in its own venv.
#   bash scripts/test_matrix.sh 3.10 4.2      -> .venv-py310-dj42, Python 3.10, Django 4.2.x
# The interpreter is python3.10 on PATH if it runs, else pyenv's newest 3.10.x. The venv is
# made once and refreshed when pyproject.toml changes. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY_VERSION=$1
DJANGO_VERSION=$2
shift 2
VENV=".venv-py${PY_VERSION/./}-dj${DJANGO_VERSION/./}"

find_python() {
  if "python$1" -c "" 2>/dev/null; then
    command -v "python$1"
    return
  fi
  local root candidate
  root=$( (pyenv root 2>/dev/null) || echo "$HOME/.pyenv")
  candidate=$(ls -d "$root/versions/$1".* 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$candidate" ] && "$candidate/bin/python$1" -c "" 2>/dev/null; then
    echo "$candidate/bin/python$1"
    return
  fi
  echo "!!! no Python $1 found (python$1 on PATH, or under $root/versions)" >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
  PYTHON=$(find_python "$PY_VERSION")
  echo "=== $VENV: Python $PY_VERSION ($PYTHON), Django $DJANGO_VERSION.x ==="
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -e '.[test]' "Django~=$DJANGO_VERSION.0"
  touch "$VENV/.installed"
fi
"$VENV/bin/python" -c "import django, sys; print(f'=== pytest, SQLite tier: Python {sys.version.split()[0]}, Django {django.__version__} ===')"
"$VENV/bin/python" -c "import django, sys; sys.exit(0 if django.__version__.startswith('$DJANGO_VERSION.') else 1)" \
  || { echo "!!! $VENV does not have Django $DJANGO_VERSION"; exit 1; }
exec "$VENV/bin/pytest" -m "not standalone" "$@"
