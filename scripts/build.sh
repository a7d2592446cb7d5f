#!/usr/bin/env bash
# Builds Keyward: the server binary and the browser bundle (wasm + JS + CSS) in
# target/site, without cargo-leptos.
#   scripts/build.sh            debug server, optimised browser bundle
#   scripts/build.sh --release  optimised server too
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh

# The browser bundle is always the optimised one (it is what users download: the debug
# build's wasm is 20 MB); KW_WASM_PROFILE=dev builds the quick debug bundle instead,
# for working on the panel.
profile=dev; out=debug
wasm_profile="${KW_WASM_PROFILE:-wasm-release}"
if [ "${1:-}" = "--release" ]; then profile=release; out=release; fi
wasm_out="$wasm_profile"; [ "$wasm_profile" = dev ] && wasm_out=debug

echo "build: server ($profile)" >&2
cargo build --locked -p keyward --profile "$profile"

echo "build: browser bundle ($wasm_profile, $KW_WASM_TOOLCHAIN toolchain)" >&2
# (.cargo/config.toml builds both halves with Leptos's `erase_components`.)
kw_wasm_cargo build --locked -p frontend --lib --target wasm32-unknown-unknown --profile "$wasm_profile"
if [ "$KW_WASM_TOOLCHAIN" = rustup ]; then wasm_dir=target; else wasm_dir=target/front; fi

site=target/site
rm -rf "$site.tmp" && mkdir -p "$site.tmp/pkg"
pkg="$site.tmp/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$pkg" --out-name keyward \
  "$wasm_dir/wasm32-unknown-unknown/$wasm_out/frontend.wasm"
mv "$pkg/keyward_bg.wasm" "$pkg/keyward.wasm"
if [ "$wasm_profile" != dev ]; then
  # Optimised for size, without the name section (function names for stack traces:
  # half the file) or any other custom section. (binaryen from npm runs in node: about
  # two minutes.)
  target/tools/node_modules/.bin/wasm-opt -Oz --strip-debug --strip-producers --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-multivalue --enable-reference-types \
    "$pkg/keyward.wasm" -o "$pkg/keyward.wasm"
fi
cp style/main.css "$pkg/keyward.css"
# Content-addressed names: the server serves `keyward-<hash>.*` as immutable (cached
# for a year), so a new build is fetched at once and an unchanged one never again.
# One hash for the three files, which always change together in a deployment.
hash="$(cat "$pkg/keyward.js" "$pkg/keyward.wasm" "$pkg/keyward.css" | sha256sum | cut -c1-16)"
for ext in js wasm css; do cp "$pkg/keyward.$ext" "$pkg/keyward-$hash.$ext"; done
# The static error pages link the unhashed stylesheet (served with revalidation);
# the unhashed script and wasm are not needed.
rm "$pkg/keyward.js" "$pkg/keyward.wasm"
# Precompressed beside each file (served as they are when the browser accepts them).
for f in "$pkg"/keyward-"$hash".* "$pkg/keyward.css"; do
  gzip -9 -n -k "$f"
  brotli -q 11 -k "$f"
done
cp -r public/. "$site.tmp/"
rm -rf "$site" && mv "$site.tmp" "$site"
echo "build: done (server target/$out/keyward, site $site, bundle keyward-$hash)" >&2
