#!/usr/bin/env bash
# Remakes the README's screenshots (docs/screenshots) of a panel with some data, in
# Debian's Chromium. Expects scripts/build.sh and the end2end npm packages
# (scripts/setup.sh --test).
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
port="${SHOTS_PORT:-3941}"
export KEYWARD_DATABASE_URL="sqlite://$work/shots.db" KEYWARD_LISTEN="127.0.0.1:$port"
export KEYWARD_OUTBOX_DIR="$work/outbox"
export SHOTS_PASSWORD="shots-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
printf '%s\n' "$SHOTS_PASSWORD" > "$work/password"
target/debug/keyward admin create --email ada@example.com --name "Ada Lovelace" --password-file "$work/password" >/dev/null
LEPTOS_SITE_ROOT=target/site target/debug/keyward serve >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  if target/debug/keyward healthcheck >/dev/null 2>&1; then break; fi
  sleep 0.1
done
(cd end2end && SHOTS_URL="http://127.0.0.1:$port" node screenshots.mjs)
echo "screenshots: written to docs/screenshots" >&2
