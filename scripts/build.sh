#!/usr/bin/env bash
# Builds Keyward: the server binary and the browser bundle (wasm + JS + CSS) in
# target/site, without cargo-leptos.
#   scripts/build.sh            debug build
#   scripts/build.sh --release  optimised build (wasm-opt from npm's binaryen when present)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh

profile=dev; wasm_profile=dev; out=debug; wasm_out=debug
if [ "${1:-}" = "--release" ]; then
  profile=release; wasm_profile=wasm-release; out=release; wasm_out=wasm-release
fi

echo "build: server ($profile)" >&2
cargo build --locked -p keyward --profile "$profile"

echo "build: browser bundle ($wasm_profile, $KW_WASM_TOOLCHAIN toolchain)" >&2
kw_wasm_cargo build --locked -p frontend --lib --target wasm32-unknown-unknown --profile "$wasm_profile"
if [ "$KW_WASM_TOOLCHAIN" = rustup ]; then wasm_dir=target; else wasm_dir=target/front; fi

site=target/site
rm -rf "$site.tmp" && mkdir -p "$site.tmp/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$site.tmp/pkg" --out-name keyward \
  "$wasm_dir/wasm32-unknown-unknown/$wasm_out/frontend.wasm"
mv "$site.tmp/pkg/keyward_bg.wasm" "$site.tmp/pkg/keyward.wasm"
if [ "$profile" = release ] && command -v wasm-opt >/dev/null; then
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int "$site.tmp/pkg/keyward.wasm" -o "$site.tmp/pkg/keyward.wasm"
fi
cp style/main.css "$site.tmp/pkg/keyward.css"
cp -r public/. "$site.tmp/"
rm -rf "$site" && mv "$site.tmp" "$site"
echo "build: done (server target/$out/keyward, site $site)" >&2
