#!/usr/bin/env bash
# Contract fuzzing: schemathesis (pinned, in target/contract-venv) generates requests
# from the binary's own /api/v1/openapi.json, with a fixed seed so a run can be
# repeated, and checks every answer against the document: no 5xx, only documented
# status codes, content types, headers and response schemas. Runs the built binary on
# a fresh SQLite database with an Owner's REST key. Expects scripts/build.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/contract-venv
if [ ! -x "$venv/bin/st" ]; then
  echo "contract: installing schemathesis 4.32.5 into $venv (once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
work="$(mktemp -d)"
port="${KEYWARD_CONTRACT_PORT:-3933}"
export KEYWARD_DATABASE_URL="sqlite://$work/contract.db" KEYWARD_LISTEN="127.0.0.1:$port"
export KEYWARD_OUTBOX_DIR="$work/outbox"
password="contract-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
printf '%s\n' "$password" > "$work/password"
target/debug/keyward admin create --email owner@example.com --password-file "$work/password" >/dev/null
LEPTOS_SITE_ROOT=target/site target/debug/keyward serve >"$work/server.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  if target/debug/keyward healthcheck >/dev/null 2>&1; then break; fi
  sleep 0.1
done
base="http://127.0.0.1:$port"
# An app and an Owner-role key, made through the panel's own server functions.
key="$("$venv/bin/python" - "$base" "$password" <<'PY'
import sys, requests
base, password = sys.argv[1], sys.argv[2]
s = requests.Session()
h = {"origin": base}
r = s.post(base + "/fn/auth/login", data={"email": "owner@example.com", "password": password}, headers=h, allow_redirects=False)
r.raise_for_status()
app = s.post(base + "/fn/apps/create", data={"name": "Contract", "networks": ""}, headers=h)
app.raise_for_status()
k = s.post(base + "/fn/keys/create", headers=h, data={
    "name": "contract", "app_id": app.json(), "environment": "live", "role_id": "1", "expiry": "never"})
k.raise_for_status()
print(k.json()["secret"])
PY
)"
status=0
# (From the scratch folder: schemathesis keeps a cache in its working directory.)
root="$PWD"
(cd "$work" && "$root/$venv/bin/st" run "$base/api/v1/openapi.json" --url "$base" \
  -H "Authorization: Bearer $key" --seed 1 -n 100 --no-color \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance) \
  || status=$?
if [ "$status" != 0 ]; then
  echo "--- server log ---" >&2; tail -50 "$work/server.log" >&2
fi
exit "$status"
