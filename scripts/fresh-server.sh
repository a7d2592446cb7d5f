# Sourced by scripts that drive a browser against a throwaway panel: starts the built
# server (target/debug/keyward, site target/site) at 127.0.0.1:$1 on a fresh SQLite
# database in a temporary folder, with an Owner $2 (email) named $3 whose password is in
# $FRESH_PASSWORD; stops it and removes the folder on exit. Outgoing mail goes to the
# development outbox in that folder.
fresh_server() {
  local port="$1" email="$2" name="$3"
  fresh_work="$(mktemp -d)"
  export KEYWARD_DATABASE_URL="sqlite://$fresh_work/keyward.db" KEYWARD_LISTEN="127.0.0.1:$port"
  export KEYWARD_OUTBOX_DIR="$fresh_work/outbox"
  FRESH_PASSWORD="fresh-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
  printf '%s\n' "$FRESH_PASSWORD" > "$fresh_work/password"
  target/debug/keyward admin create --email "$email" --name "$name" --password-file "$fresh_work/password" >/dev/null
  LEPTOS_SITE_ROOT=target/site target/debug/keyward serve >"$fresh_work/server.log" 2>&1 &
  fresh_pid=$!
  trap 'kill $fresh_pid 2>/dev/null || true; wait $fresh_pid 2>/dev/null || true; rm -rf "$fresh_work"' EXIT
  for _ in $(seq 1 100); do
    if target/debug/keyward healthcheck >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "the server did not start:" >&2; cat "$fresh_work/server.log" >&2; return 1
}
