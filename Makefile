# `make test` and `make demo` each bootstrap their own .venv with the machine's python3.
PYTHON ?= python3
SERVE ?= 1
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED_SPEC := ../shared/stripe/customer.json

.PHONY: test test-fast demo demo-remote-edit chromium screenshots venv lint test-sqlite test-postgres test-matrix bench bench-pull bench-pull-latency bench-accounts clean distclean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy django_stripe_customers
	@if [ -f $(SHARED_SPEC) ]; then $(BIN)/python scripts/generate_schema.py --check $(SHARED_SPEC); \
	  else echo "note: $(SHARED_SPEC) not found; schema.py freshness not checked"; fi
	PYTHONPATH=. $(BIN)/python -m django makemigrations --check --dry-run --settings=tests.support.settings

# Debian's Chromium for tests/browser (Playwright drives it; never `playwright install`).
# Best effort: without root and apt-get the browser tests skip with a loud banner, unless
# REQUIRE_BROWSER=1 (set by .ci/run) makes that a failure.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	    || echo "!!! apt-get could not install chromium: the browser tests will be skipped"; \
	else echo "!!! no $(CHROMIUM) and no root apt-get: the browser tests will be skipped"; fi

# Regenerate docs/admin-*.png from the real admin.
screenshots: $(STAMP) chromium
	UPDATE_SCREENSHOTS=1 $(BIN)/pytest tests/browser -k screenshots

# Every tier runs in pytest-xdist workers. Many tests wait (on Stripe's pace, retries' backoff,
# subprocesses), so more workers than the 2 cores measured fastest here (README, "Tests").
# Tests that share one expensive module fixture run in one worker (xdist_group, loadgroup).
# Each tier lists its 25 slowest tests, so where the time goes shows in every run.
WORKERS ?= 4
PYTEST_PARALLEL := -n $(WORKERS) --dist loadgroup --durations=25

test-sqlite: $(STAMP) chromium
	@echo "=== pytest tier 1: SQLite, Celery eager ==="
	$(BIN)/pytest $(PYTEST_PARALLEL)

# The edit-run loop: the unit and integration tests on SQLite, no lint, no subprocess, no
# browser, no PostgreSQL (well under a minute). `make test` is the whole, honest suite.
test-fast: $(STAMP)
	$(BIN)/pytest tests/unit tests/integration -n $(WORKERS) -q

# The real tier. REQUIRE_POSTGRES=1 (set by .ci/run) turns "not reachable" into a failure.
test-postgres: $(STAMP) chromium
	@if $(BIN)/python scripts/postgres_available.py; then \
	  echo "=== pytest tier 2: PostgreSQL at 127.0.0.1:5432/test ==="; \
	  DJANGO_SETTINGS_MODULE=tests.support.settings_postgres $(BIN)/pytest -m "not standalone" $(PYTEST_PARALLEL); \
	elif [ -n "$$REQUIRE_POSTGRES" ]; then \
	  echo "!!! PostgreSQL is required (REQUIRE_POSTGRES is set) but does not answer at 127.0.0.1:5432"; \
	  exit 1; \
	else \
	  echo ""; \
	  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	  echo "!!! SKIPPED: the PostgreSQL tier. Nothing answers at 127.0.0.1:5432 (db test). !!!"; \
	  echo "!!! Only SQLite was tested. Start PostgreSQL and run make test again.        !!!"; \
	  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	fi

# The SQLite tier again on the oldest and the newest supported Python x Django pair, each in
# its own venv (.venv-py310-dj42, ...; Pythons from PATH or pyenv), and each in a project time
# zone that is not UTC (TEST_TIME_ZONE, read by tests/support/settings.py): users' projects
# rarely run on UTC. tox.ini has the whole matrix.
MATRIX ?= 3.10:4.2:America/Chicago 3.13:6.0:Asia/Kolkata
test-matrix: chromium
	@for entry in $(MATRIX); do \
	  set -- $$(echo $$entry | tr ':' ' '); \
	  echo "=== TIME_ZONE $${3:-UTC} ==="; \
	  TEST_TIME_ZONE=$${3:-UTC} bash scripts/test_matrix.sh $$1 $$2 $(PYTEST_PARALLEL) || exit 1; \
	done

test: lint test-sqlite test-postgres test-matrix

# SERVE=0 seeds, pulls, prints the summary and exits (what CI can run).
demo: $(STAMP)
	VENV=$(VENV) SERVE=$(SERVE) bash scripts/demo.sh

# While `make demo` runs: rename a customer in its local Stripe; the webhook brings it back.
demo-remote-edit: $(STAMP)
	cd example_project && STRIPE_API_KEY=sk_test_local STRIPE_API_BASE=http://127.0.0.1:12111 \
	  $(abspath $(BIN))/python manage.py demo_remote_edit "$(EMAIL)" --name "$(NAME)"

bench: $(STAMP)
	$(BIN)/python benchmarks/emulator_bench.py

# Full pull of 1,000 and 10,000 customers into SQLite and PostgreSQL, ours and dj-stripe's.
bench-pull: $(STAMP)
	$(BIN)/python benchmarks/pull.py

# The same at Stripe's pace: 300 ms a request, 25 requests/s; parallel streams, Celery workers.
bench-pull-latency: $(STAMP)
	$(BIN)/python benchmarks/pull.py --latency-ms 300

# 50 connected accounts x 200 customers, pulled with --all-accounts --parallel 16 at Stripe's pace.
bench-accounts: $(STAMP)
	$(BIN)/python benchmarks/accounts.py

# What is cheap to rebuild: build output, caches, the demo's database. The venvs stay.
clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache example_project/db.sqlite3

# Everything `make` made, the venvs included.
distclean: clean
	rm -rf $(VENV) .venv-py* .venv-djstripe .tox
