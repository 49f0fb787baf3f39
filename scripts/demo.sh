#!/usr/bin/env bash
# `make demo`: start a local Stripe on 127.0.0.1 when no STRIPE_API_KEY is set and seed it with
# varied customers, migrate the example project's SQLite database (emptied first when the local
# Stripe is new, as it is on every run), pull every customer into it, create the admin user,
# and run the example project on http://127.0.0.1:8000.
# SERVE=0 stops after the pull and its summary (exit 0), for CI. Every run can be repeated.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VENV:-.venv}
case "$VENV" in /*) PY="$VENV/bin/python" ;; *) PY="$ROOT/$VENV/bin/python" ;; esac
DEMO_PORT=${DEMO_PORT:-8000}
STRIPE_PORT=${STRIPE_PORT:-12111}
EMULATOR_PID=""

# Stop the emulator and wait for it: a script that ended first would leave it an orphan, still
# stopping after the prompt is back, and then a zombie until the machine's init reaps it.
# (The emulator exits within 5 s of SIGTERM, whatever it was doing.)
cleanup() {
  if [ -n "$EMULATOR_PID" ]; then
    kill "$EMULATOR_PID" 2>/dev/null || true
    wait "$EMULATOR_PID" 2>/dev/null || true
    EMULATOR_PID=""
  fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

if [ -z "${STRIPE_API_KEY:-}" ]; then
  echo "No STRIPE_API_KEY set: starting the local Stripe emulator on 127.0.0.1:$STRIPE_PORT"
  # The emulator also delivers signed webhooks to the demo (once it is serving).
  export STRIPE_WEBHOOK_SECRET=whsec_demo_local_only
  "$PY" -m django_stripe_customers.testing --port "$STRIPE_PORT" \
    --webhook "http://127.0.0.1:$DEMO_PORT/stripe/webhook/" --secret "$STRIPE_WEBHOOK_SECRET" &
  EMULATOR_PID=$!
  export STRIPE_API_KEY=sk_test_local
  export STRIPE_API_BASE="http://127.0.0.1:$STRIPE_PORT"
  for _ in $(seq 1 50); do
    if "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', $STRIPE_PORT), 0.2)" 2>/dev/null; then
      break
    fi
    sleep 0.2
  done
else
  echo "STRIPE_API_KEY is set: the demo talks to ${STRIPE_API_BASE:-https://api.stripe.com}"
fi

cd example_project
"$PY" manage.py migrate --noinput
if [ -n "$EMULATOR_PID" ]; then
  # The emulator keeps nothing between runs: it starts empty, so the mirror starts empty too
  # (rows from an earlier run point at customers that no longer exist anywhere).
  echo "A new local Stripe: emptying the demo's database (${DEMO_DB:-example_project/db.sqlite3})"
  "$PY" manage.py flush --noinput
  "$PY" manage.py demo_seed
  "$PY" manage.py stripe_customers pull
  # Show deletion detection: delete one upstream, and let the next full pull flag it.
  "$PY" manage.py demo_seed --delete-one
fi
"$PY" manage.py stripe_customers pull
"$PY" manage.py stripe_customers status
if ! "$PY" manage.py shell -c "from django.contrib.auth.models import User; raise SystemExit(0 if User.objects.filter(username='admin').exists() else 1)"; then
  DJANGO_SUPERUSER_PASSWORD=admin "$PY" manage.py createsuperuser --noinput --username admin --email admin@example.com
fi
echo "Demo superuser: admin / admin"
if [ "${SERVE:-1}" = "0" ]; then
  exit 0
fi
echo "Demo admin: http://127.0.0.1:$DEMO_PORT/admin/login/?next=/admin/stripe_customers/customer/  (admin / admin)"
echo "Example page: http://127.0.0.1:$DEMO_PORT/"
if [ -n "$EMULATOR_PID" ]; then
  echo "Make a change in the local Stripe and watch it arrive by webhook:"
  echo "  make demo-remote-edit EMAIL=customer3@example.com NAME='Renamed in Stripe'"
fi
"$PY" manage.py runserver "127.0.0.1:$DEMO_PORT" --noreload
