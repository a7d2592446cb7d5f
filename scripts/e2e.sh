#!/usr/bin/env bash
# Starts the built binary on a fresh SQLite database with an Owner created by
# `keyward admin create`, runs the Playwright tests against it in Debian's Chromium,
# and stops it. Expects scripts/build.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
port="${KEYWARD_E2E_PORT:-3917}"
export KEYWARD_DATABASE_URL="sqlite://$work/e2e.db" KEYWARD_LISTEN="127.0.0.1:$port"
export KEYWARD_E2E_URL="http://127.0.0.1:$port" KEYWARD_E2E_EMAIL="owner@example.com"
export KEYWARD_E2E_PASSWORD="e2e-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
printf '%s\n' "$KEYWARD_E2E_PASSWORD" > "$work/password"
target/debug/keyward admin create --email "$KEYWARD_E2E_EMAIL" --name "Olive Owner" --password-file "$work/password" >/dev/null
LEPTOS_SITE_ROOT=target/site target/debug/keyward serve >"$work/server.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  if target/debug/keyward healthcheck >/dev/null 2>&1; then break; fi
  sleep 0.1
done
status=0
(cd end2end && npx playwright test) || status=$?
if [ "$status" != 0 ]; then echo "--- server log ---" >&2; tail -50 "$work/server.log" >&2; fi
exit "$status"
