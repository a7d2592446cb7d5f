#!/usr/bin/env bash
# Benchmark of the REST API's key check (a command, not a test; README has the results):
# builds release, starts Keyward on a fresh SQLite database, creates an app and a key
# through the panel's own endpoints, and drives wrk (installed from apt if missing) from
# another process against GET /api/v1/whoami with the key and GET /healthz in the same
# run; prints requests/s and p99 of each and the ratio whoami/healthz; then the whoami
# figures with 1,000 and with 1,000,000 keys in the database (two servers, measured in
# alternation).
#
# Then: the server's peak memory (VmHWM) after 50 concurrent correct sign-ins (from 50
# addresses, through a trusted proxy's X-Forwarded-For), and whoami's requests/s while
# another address floods a revoked key with 200 connections, against whoami alone
# (alternating).
#
# Targets: whoami/healthz ≥ 0.90; p99 with 1M keys ≤ 1.2 × p99 with 1k keys; peak memory
# after 50 concurrent sign-ins ≤ 150 MB; whoami under a flood of bad keys from another
# address ≥ 0.80 of whoami alone.
# Environment: KEYWARD_BENCH_SECONDS (default 5 per run), KEYWARD_BENCH_ROUNDS (5),
# KEYWARD_BENCH_CONNECTIONS (32).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${KEYWARD_BENCH_SECONDS:-5}"
conns="${KEYWARD_BENCH_CONNECTIONS:-32}"
port="${KEYWARD_BENCH_PORT:-3931}"

if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (apt)" >&2
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y -q wrk >/dev/null
fi
if ! command -v sqlite3 >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y -q sqlite3 >/dev/null
fi

echo "bench: building release" >&2
cargo build --release --locked -p keyward --features app/ssr -q

work="$(mktemp -d)"
db="$work/bench.db"
export KEYWARD_DATABASE_URL="sqlite://$db" KEYWARD_LISTEN="127.0.0.1:$port" KEYWARD_LOG=warn
# wrk and curl connect from 127.0.0.1: as a trusted proxy, its X-Forwarded-For names the
# client (the flood and the sign-ins below come "from" other addresses).
export KEYWARD_TRUSTED_PROXIES=127.0.0.1/32
base="http://127.0.0.1:$port"
printf 'benchmark-password-%s\n' "$RANDOM$RANDOM" > "$work/pw"
target/release/keyward admin create --email bench@example.com --password-file "$work/pw" >/dev/null
target/release/keyward serve >"$work/server.log" 2>&1 &
pid=$!
pid_big=""
trap 'kill $pid $pid_big 2>/dev/null || true; wait $pid $pid_big 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.1; done

# Sign in, make an app and a key, through the panel's server functions.
jar="$work/cookies"
curl -fs -c "$jar" -o /dev/null --data-urlencode "email=bench@example.com" --data-urlencode "password=$(head -1 "$work/pw")" "$base/fn/auth/login"
app=$(curl -fs -b "$jar" --data "name=Bench&networks=" "$base/fn/apps/create")
key=$(curl -fs -b "$jar" --data "name=bench&app_id=$app&environment=live&role_id=3&expiry=never&networks=" "$base/fn/keys/create" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')

# wrk prints "Requests/sec: N" and, with --latency, a "99% X" line (X in us/ms/s).
run() { # url [header]
  if [ $# -gt 1 ]; then wrk -t2 -c"$conns" -d"${secs}s" --latency -H "$2" "$1"; else wrk -t2 -c"$conns" -d"${secs}s" --latency "$1"; fi
}
rps() { awk '/^Requests\/sec:/ {print $2}'; }
p99_ms() { awk '$1=="99%" { v=$2; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } print v }'; }

whoami() { run "${1:-$base}/api/v1/whoami" "Authorization: Bearer $key"; }
check() { curl -fs -H "Authorization: Bearer $key" "${1:-$base}/api/v1/whoami" >/dev/null || { echo "bench: whoami with the key failed" >&2; exit 1; }; }
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
  sqlite3 "${2:-$db}" >/dev/null <<SQL
pragma busy_timeout = 10000;
with recursive n(i) as (select (select count(*) from api_keys) union all select i + 1 from n where i + 1 < $1)
insert into api_keys (key_id, kind, app_id, environment, owner_id, name, role_id, secret_hash, last4, networks, created_at, updated_at)
select 'key_bench' || printf('%011d', i), 'rest', $app, 'live', 1, 'filler', 3, lower(hex(randomblob(32))), 'xxxx', '', 0, 0 from n
where i >= (select count(*) from api_keys);
SQL
}

# The machine is shared and noisy: runs alternate (healthz, whoami, healthz, …) and each
# figure is the median of $rounds runs, so drift hits both sides alike.
rounds="${KEYWARD_BENCH_ROUNDS:-5}"
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
settle() { for d in "$@"; do sqlite3 "$d" "pragma wal_checkpoint(TRUNCATE);" >/dev/null; done; sync; sleep 2; }

echo "bench: healthz and whoami alternating, $rounds × ${secs}s each, $conns connections, wrk -t2" >&2
hr=""; hp=""; wr=""; wp=""
for _ in $(seq 1 "$rounds"); do
  out=$(run "$base/healthz"); hr="$hr$(echo "$out" | rps)\n"; hp="$hp$(echo "$out" | p99_ms)\n"
  out=$(whoami); wr="$wr$(echo "$out" | rps)\n"; wp="$wp$(echo "$out" | p99_ms)\n"
done
h_rps=$(printf "$hr" | median); h_p99=$(printf "$hp" | median)
w_rps=$(printf "$wr" | median); w_p99=$(printf "$wp" | median)

# A revoked key flooded from another address (200 connections) while the valid key is
# measured; alternating with the valid key alone.
bad=$(curl -fs -b "$jar" --data "name=flood&app_id=$app&environment=live&role_id=3&expiry=never&networks=" "$base/fn/keys/create" \
  | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["key"]["key_id"], v["secret"])')
bad_id=${bad%% *}; bad_secret=${bad#* }
curl -fs -o /dev/null -X DELETE -H "Authorization: Bearer $key" "$base/api/v1/keys/$bad_id"
check
echo "bench: whoami alone and under a flood of a revoked key from another address" >&2
ar=""; fr=""
for _ in $(seq 1 "$rounds"); do
  out=$(whoami); ar="$ar$(echo "$out" | rps)\n"
  wrk -t1 -c200 -d"$((secs + 2))s" -H "Authorization: Bearer $bad_secret" -H "X-Forwarded-For: 203.0.113.66" "$base/api/v1/whoami" >/dev/null &
  flood=$!
  sleep 1
  out=$(whoami); fr="$fr$(echo "$out" | rps)\n"
  wait $flood || true
done
alone_rps=$(printf "$ar" | median); flooded_rps=$(printf "$fr" | median)
check

# 1,000 keys here; a copy of this database grows to 1,000,000 keys and gets a second
# server. The two are then measured in alternation (1k, 1M, 1k, …), like healthz and
# whoami above, so drift and background I/O hit both alike.
fill_keys 1000
check
echo "bench: inserting 1,000,000 keys into a copy" >&2
big="$work/big.db"
sqlite3 "$db" ".backup '$big'"
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

python3 - "$h_rps" "$h_p99" "$w_rps" "$w_p99" "$w1k_rps" "$w1k_p99" "$w1m_rps" "$w1m_p99" "$alone_rps" "$flooded_rps" "$peak_kb" "$signin_ok" <<'PY'
import sys
h_rps, h_p99, w_rps, w_p99, k_rps, k_p99, m_rps, m_p99, alone, flooded, peak_kb, signin_ok = map(float, sys.argv[1:])
print(f"| run | requests/s | p99 |")
print(f"|---|---:|---:|")
print(f"| GET /healthz | {h_rps:,.0f} | {h_p99:.2f} ms |")
print(f"| GET /api/v1/whoami (2 keys) | {w_rps:,.0f} | {w_p99:.2f} ms |")
print(f"| GET /api/v1/whoami (1,000 keys) | {k_rps:,.0f} | {k_p99:.2f} ms |")
print(f"| GET /api/v1/whoami (1,000,000 keys) | {m_rps:,.0f} | {m_p99:.2f} ms |")
ratio = w_rps / h_rps
growth = m_p99 / k_p99 if k_p99 else float("nan")
print(f"\nwhoami/healthz requests/s ratio: {ratio:.2f} (target >= 0.90: {'met' if ratio >= 0.90 else 'NOT met'})")
print(f"p99 1M keys / 1k keys: {growth:.2f} (target <= 1.20: {'met' if growth <= 1.20 else 'NOT met'})")
flood = flooded / alone
print(f"whoami under a flood of a revoked key from another address / alone: {flood:.2f} ({flooded:,.0f} / {alone:,.0f} requests/s; target >= 0.80: {'met' if flood >= 0.80 else 'NOT met'})")
peak_mb = peak_kb / 1024
print(f"peak memory after 50 concurrent sign-ins ({signin_ok:.0f} of 50 signed in): {peak_mb:.0f} MB (target <= 150 MB: {'met' if peak_mb <= 150 and signin_ok == 50 else 'NOT met'})")
PY
