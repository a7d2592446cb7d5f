#!/usr/bin/env bash
# Starts a real SMTP catcher (end2end/smtp-catcher.mjs) and the built binary on a fresh
# SQLite database with an Owner created by `keyward admin create`, sending mail to the
# catcher; runs the Playwright tests against it in Debian's Chromium; stops both.
# Expects scripts/build.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
port="${KEYWARD_E2E_PORT:-3917}"
export KEYWARD_E2E_SMTP_PORT="${KEYWARD_E2E_SMTP_PORT:-3925}" KEYWARD_E2E_MAIL_API_PORT="${KEYWARD_E2E_MAIL_API_PORT:-3926}"
export KEYWARD_DATABASE_URL="sqlite://$work/e2e.db" KEYWARD_LISTEN="127.0.0.1:$port"
export KEYWARD_SMTP_URL="smtp://127.0.0.1:$KEYWARD_E2E_SMTP_PORT" KEYWARD_MAIL_FROM="keyward@example.com"
export KEYWARD_E2E_URL="http://127.0.0.1:$port" KEYWARD_E2E_EMAIL="owner@example.com"
export KEYWARD_E2E_MAIL_API="http://127.0.0.1:$KEYWARD_E2E_MAIL_API_PORT"
export KEYWARD_E2E_PASSWORD="e2e-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
printf '%s\n' "$KEYWARD_E2E_PASSWORD" > "$work/password"
target/debug/keyward admin create --email "$KEYWARD_E2E_EMAIL" --name "Olive Owner" --password-file "$work/password" >/dev/null
node end2end/smtp-catcher.mjs >"$work/catcher.log" 2>&1 &
catcher=$!
LEPTOS_SITE_ROOT=target/site target/debug/keyward serve >"$work/server.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" "$catcher" 2>/dev/null || true
  wait "$pid" "$catcher" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  if target/debug/keyward healthcheck >/dev/null 2>&1 && grep -q smtp-catcher "$work/catcher.log"; then break; fi
  sleep 0.1
done
status=0
(cd end2end && npx playwright test "$@") || status=$?
if [ "$status" != 0 ]; then
  echo "--- server log ---" >&2; tail -50 "$work/server.log" >&2
  echo "--- catcher log ---" >&2; tail -20 "$work/catcher.log" >&2
fi
exit "$status"
