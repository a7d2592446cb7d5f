# Shared by scripts/bench.sh and scripts/callgrind.sh (sourced, not run): tools from apt,
# the release build, and a Keyward on a fresh SQLite database with an app and a key made
# through the panel's own endpoints.

# apt packages the benchmarks need, installed when missing.
bench_tools() { # command…
  local missing=()
  for c in "$@"; do command -v "$c" >/dev/null || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "bench: installing ${missing[*]} (apt)" >&2
  local sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y -q "${missing[@]}" >/dev/null
}

# Release builds of Keyward and of the bare axum yardstick (bench/bare), in one cargo run.
bench_build() {
  echo "bench: building release" >&2
  cargo build --release --locked -p keyward -p bench-bare --features app/ssr -q
}

# Sets work, db, base, jar, app, key; leaves no server running. $1: port.
bench_prepare() {
  work="$(mktemp -d)"
  db="$work/bench.db"
  base="http://127.0.0.1:$1"
  export KEYWARD_DATABASE_URL="sqlite://$db" KEYWARD_LISTEN="127.0.0.1:$1"
  printf 'benchmark-password-%s\n' "$RANDOM$RANDOM" > "$work/pw"
  target/release/keyward admin create --email bench@example.com --password-file "$work/pw" >/dev/null
}

# Waits until $1/healthz answers (at most $2 seconds, default 10).
bench_wait() {
  local tries=$(( ${2:-10} * 10 ))
  for _ in $(seq 1 "$tries"); do curl -fs "$1/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "bench: $1 did not start" >&2; return 1
}

# Signs in and makes an app and a REST key through the panel's server functions: sets
# jar, app, key.
bench_key() {
  jar="$work/cookies"
  curl -fs -c "$jar" -o /dev/null --data-urlencode "email=bench@example.com" --data-urlencode "password=$(head -1 "$work/pw")" "$base/fn/auth/login"
  app=$(curl -fs -b "$jar" --data "name=Bench&networks=" "$base/fn/apps/create")
  key=$(curl -fs -b "$jar" --data "name=bench&app_id=$app&environment=live&role_id=3&expiry=never&networks=" "$base/fn/keys/create" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
}
