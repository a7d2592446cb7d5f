#!/usr/bin/env bash
# Benchmark of the REST API's key check (a command, not a test; README has the results):
# builds release (Keyward and the bare axum yardstick of bench/bare), starts Keyward on a
# fresh SQLite database with its default log level, creates an app and a key through the
# panel's own endpoints, and drives wrk (installed from apt if missing) from another
# process. Every comparison is measured in alternation in one run (A, B, A, B, …; medians),
# so the shared machine's drift hits both sides alike:
#
# - GET /api/v1/whoami with the key against the bare axum handler, and against
#   GET /healthz;
# - whoami with 1,000 and with 1,000,000 keys in the database (two servers);
# - whoami alone and while another address floods it with 200 connections of bad keys:
#   a revoked key, distinct made-up (checksum-valid, unknown) keys, and malformed ones;
#   the bytes the server logs during the floods, per 60 s of flood;
# - the server's peak memory (VmHWM) after 50 concurrent correct sign-ins (from 50
#   addresses, through a trusted proxy's X-Forwarded-For);
# - GET / (the overview page) p95 for a user holding 10,000 keys.
#
# Targets (issue 13): whoami ≥ 0.80 × bare axum's requests/s; whoami/healthz ≥ 0.95;
# p99 with 1M keys ≤ 1.2 × p99 with 1k keys; under each flood ≥ 0.80 of alone; ≤ 1 MB of
# log per 60 s of flood; peak memory ≤ 150 MB; overview p95 ≤ 5 ms.
# scripts/callgrind.sh counts instructions per request (whoami ≤ 2 × bare).
# Environment: KEYWARD_BENCH_SECONDS (default 5 per run), KEYWARD_BENCH_ROUNDS (5),
# KEYWARD_BENCH_CONNECTIONS (32).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
secs="${KEYWARD_BENCH_SECONDS:-5}"
conns="${KEYWARD_BENCH_CONNECTIONS:-32}"
port="${KEYWARD_BENCH_PORT:-3931}"

bench_tools wrk sqlite3 curl
bench_build
bench_prepare "$port"
# wrk and curl connect from 127.0.0.1: as a trusted proxy, its X-Forwarded-For names the
# client (the floods and the sign-ins below come "from" other addresses).
export KEYWARD_TRUSTED_PROXIES=127.0.0.1/32
unset KEYWARD_LOG
target/release/keyward serve >"$work/server.log" 2>&1 &
pid=$!
pid_big=""
bare_base="http://127.0.0.1:$((port + 2))"
pid_bare=""
trap 'kill $pid $pid_big $pid_bare 2>/dev/null || true; wait $pid $pid_big $pid_bare 2>/dev/null || true; rm -rf "$work"' EXIT
bench_wait "$base"
bench_key
# The bare handler answers with Keyward's own whoami body: both send the same body
# (Keyward adds its security headers).
bare_body=$(curl -fsS --retry 5 --retry-all-errors -H "Authorization: Bearer $key" "$base/api/v1/whoami")
[ -n "$bare_body" ] || { echo "bench: whoami answered an empty body" >&2; exit 1; }
BARE_BODY="$bare_body" BARE_LISTEN="127.0.0.1:$((port + 2))" target/release/bench-bare >"$work/bare.log" 2>&1 &
pid_bare=$!
for _ in $(seq 1 50); do curl -fs -o /dev/null -H "Authorization: Bearer x" "$bare_base/api/v1/whoami" && break; sleep 0.1; done

# wrk prints "Requests/sec: N" and, with --latency, a "99% X" line (X in us/ms/s).
run() { # url [header]
  if [ $# -gt 1 ]; then wrk -t2 -c"$conns" -d"${secs}s" --latency -H "$2" "$1"; else wrk -t2 -c"$conns" -d"${secs}s" --latency "$1"; fi
}
rps() { awk '/^Requests\/sec:/ {print $2}'; }
p99_ms() { awk '$1=="99%" { v=$2; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } print v }'; }

whoami() { run "${1:-$base}/api/v1/whoami" "Authorization: Bearer $key"; }
check() { # [base]: whoami with the key answers 200 (within 10 s of start-up)
  local out
  for _ in $(seq 1 20); do
    out=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $key" "${1:-$base}/api/v1/whoami") || true
    [ "${out##* }" = 200 ] && return 0
    sleep 0.5
  done
  echo "bench: whoami with the key failed: $out" >&2
  tail -n 5 "$work"/server*.log >&2 || true
  exit 1
}
check

# 50 concurrent correct sign-ins, each from its own address; then the process's peak
# resident memory.
echo "bench: 50 concurrent sign-ins" >&2
signin_ok=$(python3 - "$base" "$(head -1 "$work/pw")" <<'PY'
import sys, threading, urllib.parse, urllib.request
base, pw = sys.argv[1], sys.argv[2]
ok = []
def one(i):
    data = urllib.parse.urlencode({"email": "bench@example.com", "password": pw}).encode()
    req = urllib.request.Request(base + "/fn/auth/login", data=data, headers={"X-Forwarded-For": f"198.18.{i // 250}.{i % 250 + 1}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            ok.append(r.status == 200)
    except Exception:
        ok.append(False)
threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
for t in threads: t.start()
for t in threads: t.join()
print(sum(ok))
PY
)
peak_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")

fill_keys() { # total rows wanted in api_keys [database, default $db]
  # Every tenth key expires within two weeks (the overview lists those). Their expiry
  # reminders count as sent: the mail job would otherwise write one mail per key while
  # the key check is measured.
  local now; now=$(date +%s)
  sqlite3 "${2:-$db}" >/dev/null <<SQL
pragma busy_timeout = 10000;
with recursive n(i) as (select (select count(*) from api_keys) union all select i + 1 from n where i + 1 < $1)
insert into api_keys (key_id, kind, app_id, environment, owner_id, name, role_id, secret_hash, last4, networks, created_at, updated_at, expires_at, reminded_7d_at, reminded_1d_at)
select 'key_bench' || printf('%011d', i), 'rest', $app, 'live', 1, 'filler', 3, lower(hex(randomblob(32))), 'xxxx', '', i, i,
  case when i % 10 = 0 then $now + 86400 * (1 + i % 13) end, i, i from n
where i >= (select count(*) from api_keys);
SQL
}

# The machine is shared and noisy: runs alternate (healthz, whoami, healthz, …) and each
# figure is the median of $rounds runs, so drift hits both sides alike.
rounds="${KEYWARD_BENCH_ROUNDS:-5}"
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
settle() { for d in "$@"; do sqlite3 "$d" "pragma wal_checkpoint(TRUNCATE);" >/dev/null; done; sync; sleep 2; }

echo "bench: bare axum, healthz and whoami alternating, $rounds × ${secs}s each, $conns connections, wrk -t2" >&2
br=""; hr=""; hp=""; wr=""; wp=""
for _ in $(seq 1 "$rounds"); do
  out=$(run "$bare_base/api/v1/whoami" "Authorization: Bearer $key"); br="$br$(echo "$out" | rps)\n"
  out=$(run "$base/healthz"); hr="$hr$(echo "$out" | rps)\n"; hp="$hp$(echo "$out" | p99_ms)\n"
  out=$(whoami); wr="$wr$(echo "$out" | rps)\n"; wp="$wp$(echo "$out" | p99_ms)\n"
done
b_rps=$(printf "$br" | median)
h_rps=$(printf "$hr" | median); h_p99=$(printf "$hp" | median)
w_rps=$(printf "$wr" | median); w_p99=$(printf "$wp" | median)

# Floods of bad keys from another address (200 connections) while the valid key is
# measured; alternating with the valid key alone. Three kinds: a revoked key, distinct
# made-up keys (checksum-valid, so they pass the format check), and malformed ones.
bad=$(curl -fs -b "$jar" --data "name=flood&app_id=$app&environment=live&role_id=3&expiry=never&networks=" "$base/fn/keys/create" \
  | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["key"]["key_id"], v["secret"])')
bad_id=${bad%% *}; bad_secret=${bad#* }
curl -fs -o /dev/null -X DELETE -H "Authorization: Bearer $key" "$base/api/v1/keys/$bad_id"
check
python3 - "$work/unknown" "$bad_secret" <<'PY'
import random, sys, zlib
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
def checksum(text):
    n, out = zlib.crc32(text.encode()), ""
    for _ in range(6):
        out = B62[n % 62] + out; n //= 62
    return out
with open(sys.argv[1] + ".keys", "w") as f:
    for _ in range(50000):
        head = "kw_live_" + "".join(random.choice(B62) for _ in range(32))
        f.write(head + checksum(head) + "\n")
with open(sys.argv[1] + ".lua", "w") as f:
    f.write("""
local keys = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do keys[#keys + 1] = line end
  i = math.random(#keys)
end
function request()
  i = i % #keys + 1
  return wrk.format("GET", "/api/v1/whoami", {["Authorization"] = "Bearer " .. keys[i], ["X-Forwarded-For"] = "203.0.113.67"})
end
""")
PY
flood() { # kind
  local args=(-t1 -c200 -d"$((secs + 2))s")
  case $1 in
    revoked) wrk "${args[@]}" -H "Authorization: Bearer $bad_secret" -H "X-Forwarded-For: 203.0.113.66" "$base/api/v1/whoami" ;;
    unknown) wrk "${args[@]}" -s "$work/unknown.lua" "$base" -- "$work/unknown.keys" ;;
    malformed) wrk "${args[@]}" -H "Authorization: Bearer not-a-key" -H "X-Forwarded-For: 203.0.113.68" "$base/api/v1/whoami" ;;
  esac
}
echo "bench: whoami alone and under floods of bad keys from another address" >&2
ar=""; declare -A fr=([revoked]="" [unknown]="" [malformed]="")
log_bytes=0; flood_secs=0
for _ in $(seq 1 "$rounds"); do
  for kind in revoked unknown malformed; do
    out=$(whoami); ar="$ar$(echo "$out" | rps)\n"
    before=$(stat -c %s "$work/server.log")
    flood "$kind" >/dev/null &
    fl=$!
    sleep 1
    out=$(whoami); fr[$kind]="${fr[$kind]}$(echo "$out" | rps)\n"
    wait $fl || true
    log_bytes=$(( log_bytes + $(stat -c %s "$work/server.log") - before ))
    flood_secs=$(( flood_secs + secs + 2 ))
  done
done
alone_rps=$(printf "$ar" | median)
revoked_rps=$(printf "${fr[revoked]}" | median)
unknown_rps=$(printf "${fr[unknown]}" | median)
malformed_rps=$(printf "${fr[malformed]}" | median)
check

# 1,000 keys here; a copy of this database grows to 1,000,000 keys and gets a second
# server. The two are then measured in alternation (1k, 1M, 1k, …), like healthz and
# whoami above, so drift and background I/O hit both alike.
fill_keys 1000
check
echo "bench: inserting 1,000,000 keys into a copy" >&2
big="$work/big.db"
sqlite3 "$db" ".backup '$big'"
# The copy's sealed data needs the same development master key (kept beside each database).
cp "$db.master-key" "$big.master-key"
fill_keys 1000000 "$big"
big_base="http://127.0.0.1:$((port + 1))"
KEYWARD_DATABASE_URL="sqlite://$big" KEYWARD_LISTEN="127.0.0.1:$((port + 1))" \
  target/release/keyward serve >"$work/server-big.log" 2>&1 &
pid_big=$!
for _ in $(seq 1 100); do curl -fs "$big_base/healthz" >/dev/null && break; sleep 0.1; done
check "$big_base"
settle "$db" "$big"
kr=""; kp=""; mr=""; mp=""
for _ in $(seq 1 "$rounds"); do
  out=$(whoami "$base"); kr="$kr$(echo "$out" | rps)\n"; kp="$kp$(echo "$out" | p99_ms)\n"
  out=$(whoami "$big_base"); mr="$mr$(echo "$out" | rps)\n"; mp="$mp$(echo "$out" | p99_ms)\n"
done
w1k_rps=$(printf "$kr" | median); w1k_p99=$(printf "$kp" | median)
w1m_rps=$(printf "$mr" | median); w1m_p99=$(printf "$mp" | median)

# The overview page for a user holding 10,000 keys (a tenth expiring within two weeks):
# 300 sequential loads with the session cookie; p50 and p95.
kill "$pid_big" 2>/dev/null || true; wait "$pid_big" 2>/dev/null || true; pid_big=""
fill_keys 10000
settle "$db"
cookie=$(awk '$6 ~ /keyward_session$/ {print $6 "=" $7}' "$jar")
overview=$(python3 - "$base" "$cookie" <<'PY'
import http.client, sys, time, urllib.parse
base, cookie = sys.argv[1], sys.argv[2]
u = urllib.parse.urlsplit(base)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
times = []
for i in range(330):
    t = time.perf_counter()
    c.request("GET", "/", headers={"Cookie": cookie})
    r = c.getresponse()
    body = r.read()
    if r.status != 200 or b"You hold more than 1000 active API keys" not in body:
        sys.exit(f"bench: the overview answered {r.status} without the key count")
    if i >= 30:
        times.append((time.perf_counter() - t) * 1000)
times.sort()
print(f"{times[len(times) // 2]:.2f} {times[int(len(times) * 0.95)]:.2f}")
PY
)
ov_p50=${overview% *}; ov_p95=${overview#* }

python3 - "$b_rps" "$h_rps" "$h_p99" "$w_rps" "$w_p99" "$w1k_rps" "$w1k_p99" "$w1m_rps" "$w1m_p99" \
  "$alone_rps" "$revoked_rps" "$unknown_rps" "$malformed_rps" "$log_bytes" "$flood_secs" \
  "$peak_kb" "$signin_ok" "$ov_p50" "$ov_p95" <<'PY'
import sys
(b_rps, h_rps, h_p99, w_rps, w_p99, k_rps, k_p99, m_rps, m_p99, alone, revoked, unknown,
 malformed, log_bytes, flood_secs, peak_kb, signin_ok, ov_p50, ov_p95) = map(float, sys.argv[1:])
verdict = lambda ok: "met" if ok else "NOT met"
print("| run | requests/s | p99 |")
print("|---|---:|---:|")
print(f"| bare axum handler (bench/bare) | {b_rps:,.0f} | |")
print(f"| GET /healthz | {h_rps:,.0f} | {h_p99:.2f} ms |")
print(f"| GET /api/v1/whoami (2 keys) | {w_rps:,.0f} | {w_p99:.2f} ms |")
print(f"| GET /api/v1/whoami (1,000 keys) | {k_rps:,.0f} | {k_p99:.2f} ms |")
print(f"| GET /api/v1/whoami (1,000,000 keys) | {m_rps:,.0f} | {m_p99:.2f} ms |")
print()
print("| figure | value | target |")
print("|---|---:|---|")
r = w_rps / b_rps
print(f"| whoami / bare axum handler | {r:.2f} | >= 0.80: {verdict(r >= 0.80)} |")
r = w_rps / h_rps
print(f"| whoami / healthz | {r:.2f} | >= 0.95: {verdict(r >= 0.95)} |")
g = m_p99 / k_p99 if k_p99 else float("nan")
print(f"| p99 1M keys / 1k keys | {g:.2f} | <= 1.20: {verdict(g <= 1.20)} |")
for name, v in (("a revoked key", revoked), ("distinct unknown keys", unknown), ("malformed keys", malformed)):
    f = v / alone
    print(f"| whoami under a 200-connection flood of {name} from another address / alone | {f:.2f} ({v:,.0f} / {alone:,.0f}) | >= 0.80: {verdict(f >= 0.80)} |")
per_min = log_bytes / flood_secs * 60 / 1e6
print(f"| log written per 60 s of flood | {per_min:.3f} MB ({log_bytes:,.0f} bytes in {flood_secs:.0f} s) | <= 1 MB: {verdict(per_min <= 1)} |")
mb = peak_kb / 1024
print(f"| peak memory after 50 concurrent sign-ins | {mb:.0f} MB ({signin_ok:.0f} of 50 signed in) | <= 150 MB: {verdict(mb <= 150 and signin_ok == 50)} |")
print(f"| GET / with 10,000 keys of the user, p95 (p50) | {ov_p95:.2f} ms ({ov_p50:.2f} ms) | <= 5 ms: {verdict(ov_p95 <= 5)} |")
PY
