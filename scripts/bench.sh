#!/usr/bin/env bash
# Benchmark of the REST API's key check (a command, not a test; README has the results):
# builds release, starts Keyward on a fresh SQLite database, creates an app and a key
# through the panel's own endpoints, and drives wrk (installed from apt if missing) from
# another process against GET /api/v1/whoami with the key and GET /healthz in the same
# run; prints requests/s and p99 of each and the ratio whoami/healthz; then the whoami
# figures with 1,000 and with 1,000,000 keys in the database (two servers, measured in
# alternation).
#
# Targets: whoami/healthz ≥ 0.90; p99 with 1M keys ≤ 1.2 × p99 with 1k keys.
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

python3 - "$h_rps" "$h_p99" "$w_rps" "$w_p99" "$w1k_rps" "$w1k_p99" "$w1m_rps" "$w1m_p99" <<'PY'
import sys
h_rps, h_p99, w_rps, w_p99, k_rps, k_p99, m_rps, m_p99 = map(float, sys.argv[1:])
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
PY
