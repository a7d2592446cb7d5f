#!/usr/bin/env bash
# The bundle benchmark: what a cold visit to the panel downloads and how soon the page
# is interactive, measured in Debian's Chromium on loopback against the build in
# target/ (run scripts/build.sh first) on a fresh SQLite database with 24 keys.
# Prints, per page (/login, /, /keys): bytes transferred (as on the wire, every request
# of the cold load) and the time from navigation to hydration (median of 5 cold loads),
# each against its target with a verdict; exits non-zero when one is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test >/dev/null
. scripts/fresh-server.sh
port="${BUNDLE_BENCH_PORT:-3951}"
fresh_server "$port" ada@example.com "Ada Lovelace"
echo "bundle files (target/site/pkg):" >&2
ls -l target/site/pkg | awk 'NR>1 {printf "  %9d  %s\n", $5, $9}' >&2
(cd end2end && BENCH_URL="http://127.0.0.1:$port" BENCH_PASSWORD="$FRESH_PASSWORD" node bundle-bench.mjs)
