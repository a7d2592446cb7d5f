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

echo "build: wasm-split (host tool)" >&2
cargo build --locked -p wasm-split
echo "build: browser bundle ($wasm_profile, $KW_WASM_TOOLCHAIN toolchain)" >&2
# (.cargo/config.toml builds both halves with Leptos's `erase_components`, and links
# the wasm with its relocations for the split below.)
kw_wasm_cargo build --locked -p frontend --lib --target wasm32-unknown-unknown --profile "$wasm_profile"
if [ "$KW_WASM_TOOLCHAIN" = rustup ]; then wasm_dir=target; else wasm_dir=target/front; fi

site=target/site
rm -rf "$site.tmp" && mkdir -p "$site.tmp/pkg"
pkg="$site.tmp/pkg/bundle"
# Cut at the lazy routes: a main module (the shell, the router, what every page shares)
# and chunks each page loads on demand, with their loader and the manifest of which
# chunks each route needs.
target/debug/wasm-split "$wasm_dir/wasm32-unknown-unknown/$wasm_out/frontend.wasm" "$pkg"
# The main module keeps the exports the chunks link against.
wasm-bindgen --target web --no-typescript --keep-lld-exports --out-dir "$pkg" --out-name keyward "$pkg/keyward.wasm"
mv "$pkg/keyward_bg.wasm" "$pkg/keyward.wasm"
if [ "$wasm_profile" != dev ]; then
  # Optimised for size, without the name section (function names for stack traces:
  # half the file) or any other custom section; every file, two at a time. (binaryen
  # from npm runs in node.)
  printf '%s\0' "$pkg"/*.wasm | xargs -0 -P 2 -I{} target/tools/node_modules/.bin/wasm-opt -Oz --strip-debug --strip-producers \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals --enable-multivalue \
    --enable-reference-types {} -o {}
fi
cp style/main.css "$pkg/keyward.css"
# Content-addressed: the bundle's folder is named by a hash of its files
# (`pkg/keyward-<hash>/`), and the server serves everything in it as immutable (cached
# for a year), so a new build is fetched at once and an unchanged one never again. The
# files inside keep fixed names, which the loader and the chunks refer to.
hash="$(cd "$pkg" && ls | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)"
# Precompressed beside each file (served as they are when the browser accepts them).
for f in "$pkg"/*.js "$pkg"/*.wasm "$pkg"/*.css; do
  gzip -9 -n -k "$f"
  brotli -q 11 -k "$f"
done
# The static error pages link the unhashed stylesheet (served with revalidation).
cp "$pkg/keyward.css" "$site.tmp/pkg/keyward.css"
gzip -9 -n -k "$site.tmp/pkg/keyward.css"; brotli -q 11 -k "$site.tmp/pkg/keyward.css"
mv "$pkg" "$site.tmp/pkg/keyward-$hash"
cp -r public/. "$site.tmp/"
rm -rf "$site" && mv "$site.tmp" "$site"
echo "build: done (server target/$out/keyward, site $site, bundle keyward-$hash)" >&2
