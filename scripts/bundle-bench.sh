#!/usr/bin/env bash
# The bundle benchmark: what a cold visit to the panel downloads and how soon the page
# is interactive, measured in Debian's Chromium on loopback against the build in
# target/ (run scripts/build.sh first) on a fresh SQLite database with 24 keys.
# Prints, per page (/login, /, /keys): bytes transferred (as on the wire, every request
# of the cold load) and the time from navigation to hydration (median of 5 cold loads),
# each against its target with a verdict; then Lighthouse's mobile performance score of
# each page (npm's lighthouse, pinned, in target/tools/lighthouse; its simulated slow 4G
# and 4x slower CPU) against its target; exits non-zero when one is missed.
# BENCH_MARKS=1 also prints each load's timeline: when the HTML arrived, the first paint,
# and when each bundle file was asked for and came.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test >/dev/null
. scripts/fresh-server.sh
port="${BUNDLE_BENCH_PORT:-3951}"
fresh_server "$port" ada@example.com "Ada Lovelace"
echo "bundle files (target/site/pkg):" >&2
ls -l target/site/pkg | awk 'NR>1 {printf "  %9d  %s\n", $5, $9}' >&2
status=0
(cd end2end && BENCH_URL="http://127.0.0.1:$port" BENCH_PASSWORD="$FRESH_PASSWORD" node bundle-bench.mjs) || status=1

lighthouse=12.8.2
lh_dir=target/tools/lighthouse
if [ "$(node -p "require('./$lh_dir/node_modules/lighthouse/package.json').version" 2>/dev/null)" != "$lighthouse" ]; then
  echo "bundle-bench: npm install lighthouse@$lighthouse" >&2
  npm install --prefix "$lh_dir" --no-save --no-audit --no-fund --loglevel=error "lighthouse@$lighthouse" >/dev/null
fi
base="http://127.0.0.1:$port"
jar="$fresh_work/lh-cookies"
curl -fs -c "$jar" -o /dev/null --data-urlencode "email=ada@example.com" --data-urlencode "password=$FRESH_PASSWORD" "$base/fn/auth/login"
cookie=$(awk '$6 ~ /keyward_session$/ {print $6 "=" $7}' "$jar")
echo
echo "| page | Lighthouse performance (mobile), median of 3 | LCP | TBT | target |"
echo "|---|---:|---:|---:|---|"
for path in /login / /keys; do
  headers='{}'; [ "$path" = /login ] || headers="{\"Cookie\": \"$cookie\"}"
  scores=""
  for run in 1 2 3; do
    out="$fresh_work/lh-$run.json"
    CHROME_PATH=/usr/bin/chromium "$lh_dir/node_modules/.bin/lighthouse" "$base$path" --quiet \
      --only-categories=performance --output=json --output-path="$out" --extra-headers="$headers" \
      --chrome-flags="--headless=new --no-sandbox --disable-gpu" >/dev/null 2>&1 || true
    scores="$scores$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); a=r["audits"]; print(round(r["categories"]["performance"]["score"]*100), round(a["largest-contentful-paint"]["numericValue"]), round(a["total-blocking-time"]["numericValue"]))' "$out" 2>/dev/null || echo "0 0 0")\n"
  done
  read -r score lcp tbt < <(printf "$scores" | sort -n | sed -n 2p)
  verdict="met"; [ "$score" -ge 95 ] || { verdict="NOT met"; status=1; }
  echo "| \`$path\` | $score | ${lcp} ms | ${tbt} ms | >= 95: $verdict |"
done
exit $status
