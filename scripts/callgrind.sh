#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind (repeatable whatever else the
# machine is doing): Keyward's GET /api/v1/whoami with a valid key and GET /healthz,
# against the bare axum handler of bench/bare. Each server runs under callgrind; after
# a warm-up the counters are zeroed, N requests are sent on one keep-alive connection,
# and the counters are dumped: instructions / N is the figure.
#
# Target (issue 13): whoami ≤ 2 × the bare handler's instructions per request.
# Environment: KEYWARD_CALLGRIND_REQUESTS (default 5000); KEYWARD_CALLGRIND_KEEP=DIR keeps
# the dumps there (callgrind.NAME, for callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
n="${KEYWARD_CALLGRIND_REQUESTS:-5000}"
port="${KEYWARD_BENCH_PORT:-3941}"
bench_tools valgrind curl
bench_build
bench_prepare "$port"
# The measured servers run with the default log level, as deployed.
KEYWARD_LOG=warn target/release/keyward serve >"$work/setup.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
bench_wait "$base"
bench_key
# The bare handler answers with Keyward's own whoami body: both send the same bytes.
body=$(curl -fsS --retry 5 --retry-all-errors -H "Authorization: Bearer $key" "$base/api/v1/whoami")
[ -n "$body" ] || { echo "callgrind: whoami answered an empty body" >&2; exit 1; }
kill "$pid"; wait "$pid" 2>/dev/null || true

# requests URL HEADER COUNT: COUNT GETs on one connection; fails unless every one is 200.
requests() {
  python3 - "$@" <<'PY'
import http.client, sys, urllib.parse
url, header, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlsplit(url)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
headers = {}
if header:
    k, v = header.split(": ", 1)
    headers[k] = v
for _ in range(count):
    c.request("GET", u.path, headers=headers)
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"callgrind: {url} answered {r.status}")
PY
}

# count NAME URL HEADER -- COMMAND…: instructions per request of COMMAND's server.
count() {
  local name=$1 url=$2 header=$3; shift 4
  local out="$work/callgrind.$name"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >"$work/$name.log" 2>&1 &
  local vpid=$!
  for _ in $(seq 1 600); do
    curl -fs -o /dev/null ${header:+-H "$header"} "$url" && break; sleep 0.2
  done
  requests "$url" "$header" 500
  callgrind_control -z "$vpid" >/dev/null 2>&1
  requests "$url" "$header" "$n"
  callgrind_control -d "$vpid" >/dev/null 2>&1
  kill "$vpid"; wait "$vpid" 2>/dev/null || true
  # The dump made by -d is the numbered file (the counters since -z); its summary line
  # is the instruction total.
  local dump
  dump=$(ls "$out".* | sort -V | head -1)
  [ -z "${KEYWARD_CALLGRIND_KEEP:-}" ] || cp "$dump" "$KEYWARD_CALLGRIND_KEEP/callgrind.$name"
  awk -v n="$n" '/^summary:|^totals:/ { printf "%.0f\n", $2 / n; exit }' "$dump"
}

echo "bench: callgrind, $n requests each (this takes a few minutes)" >&2
bare=$(BARE_BODY="$body" BARE_LISTEN="127.0.0.1:$((port + 1))" count bare "http://127.0.0.1:$((port + 1))/api/v1/whoami" "Authorization: Bearer x" -- target/release/bench-bare)
health=$(count healthz "$base/healthz" "" -- target/release/keyward serve)
who=$(count whoami "$base/api/v1/whoami" "Authorization: Bearer $key" -- target/release/keyward serve)

python3 - "$bare" "$health" "$who" <<'PY'
import sys
bare, health, who = map(float, sys.argv[1:])
print("| GET | instructions per request | × bare axum |")
print("|---|---:|---:|")
print(f"| bare axum handler (bench/bare) | {bare:,.0f} | 1.00 |")
print(f"| Keyward /healthz | {health:,.0f} | {health / bare:.2f} |")
print(f"| Keyward /api/v1/whoami | {who:,.0f} | {who / bare:.2f} |")
r = who / bare
print(f"\nwhoami instructions / bare axum handler's: {r:.2f} (target <= 2.00: {'met' if r <= 2.0 else 'NOT met'})")
PY
