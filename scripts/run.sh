#!/usr/bin/env bash
# Builds Keyward and runs it on its embedded default: a SQLite file (keyward.db in the
# working directory, created on first start) at http://127.0.0.1:3000.
#   scripts/run.sh            debug build (quicker to build)
#   scripts/run.sh --release  optimised build
# Any KEYWARD_* variable set in the environment (see README) is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh "$@"
out=debug; [ "${1:-}" = "--release" ] && out=release
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-$PWD/target/site}"
cat >&2 <<MSG

Keyward is starting at ${KEYWARD_PUBLIC_URL:-http://${KEYWARD_LISTEN:-127.0.0.1:3000}}
Create the first admin (an Owner) from another terminal in this folder:
    target/$out/keyward admin create --email you@example.com
(the password is read from standard input, or from --password-file FILE)

MSG
exec "target/$out/keyward" serve
