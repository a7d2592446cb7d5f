#!/usr/bin/env bash
# Remakes the README's screenshots (docs/screenshots) of a panel with some data, in
# Debian's Chromium. Expects scripts/build.sh and the end2end npm packages
# (scripts/setup.sh --test).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/fresh-server.sh
port="${SHOTS_PORT:-3941}"
fresh_server "$port" ada@example.com "Ada Lovelace"
(cd end2end && SHOTS_URL="http://127.0.0.1:$port" SHOTS_PASSWORD="$FRESH_PASSWORD" node screenshots.mjs)
echo "screenshots: written to docs/screenshots" >&2
