#!/usr/bin/env bash
# Provisions what building and testing Keyward needs, once; safe to run again (each step
# checks first and does nothing when its piece is already there).
#
#   scripts/setup.sh          toolchain for the build: a wasm32 std and the wasm-bindgen CLI
#   scripts/setup.sh --test   also Chromium and the Playwright packages for end-to-end tests
#
# Where rustup's toolchain already has the wasm32-unknown-unknown target, the wasm half is
# built with it and nothing is installed. Where it does not (and cannot download one, as on
# the machines this project is developed on), Debian's rustc-web toolchain is installed and
# its wasm32 std is built once from the shipped sources (see shared/toolchain.md).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    sudo_cmd apt-get update -qq
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive sudo_cmd apt-get install -y -qq "$@" >/dev/null
}
sudo_cmd() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# 1. A wasm32 std.
if [ "$KW_WASM_TOOLCHAIN" = rustup ]; then
  log "rustup has wasm32-unknown-unknown: using it"
else
  if [ ! -x /usr/bin/rustc ] || [ ! -x /usr/bin/cargo ] || ! command -v wasm-ld >/dev/null || [ ! -d /usr/lib/rustlib/src/rust/library ]; then
    apt_install rustc-web cargo-web rust-web-src lld
  fi
  sysroot_lib="$(/usr/bin/rustc --print sysroot)/lib/rustlib/wasm32-unknown-unknown/lib"
  if ! ls "$sysroot_lib"/libstd-*.rlib >/dev/null 2>&1; then
    log "building the wasm32 std for $(/usr/bin/rustc --version) (once, about a minute)"
    tmp="$(mktemp -d)"
    mkdir -p "$tmp/src"
    printf '[package]\nname = "kw_wasm_std"\nversion = "0.0.0"\nedition = "2021"\n[lib]\ncrate-type = ["rlib"]\n' >"$tmp/Cargo.toml"
    : >"$tmp/src/lib.rs"
    (cd "$tmp" && env -u RUSTFLAGS RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS=-Cembed-bitcode=yes \
      /usr/bin/cargo build -q --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort)
    mkdir -p "$sysroot_lib"
    find "$tmp/target/wasm32-unknown-unknown/release/deps" -name 'lib*.rlib' ! -name 'libkw_wasm_std-*' -exec cp {} "$sysroot_lib/" \;
    rm -rf "$tmp"
  fi
fi

# 2. For the optimised, precompressed bundle: brotli (Debian), and binaryen's wasm-opt
# from npm at a pinned version into target/tools (Debian's binaryen 108 is too old: its
# output fails in the browser on the tables wasm-bindgen writes).
command -v brotli >/dev/null || apt_install brotli
command -v npm >/dev/null || apt_install nodejs npm
binaryen=132.0.0
if [ "$(node -p "require('./target/tools/node_modules/binaryen/package.json').version" 2>/dev/null)" != "$binaryen" ]; then
  log "npm install binaryen@$binaryen (wasm-opt)"
  npm install --prefix target/tools --no-save --no-audit --no-fund --loglevel=error "binaryen@$binaryen" >/dev/null
fi

# 3. The wasm-bindgen CLI, at exactly the version in Cargo.lock.
want_wb="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)"
have_wb="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have_wb" != "$want_wb" ]; then
  log "installing wasm-bindgen-cli $want_wb (about 3 minutes)"
  cargo install -q wasm-bindgen-cli --version "$want_wb" --no-default-features
fi

# 4. For tests: Chromium from Debian and Playwright from npm (never its own browser download).
if [ "$want_test" = 1 ]; then
  if [ "$KW_WASM_TOOLCHAIN" = debian ] && [ ! -x /usr/bin/clippy-driver ]; then apt_install rust-web-clippy; fi
  [ -x /usr/bin/chromium ] || apt_install chromium
  if [ ! -d end2end/node_modules/@playwright/test ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
    log "npm ci (end2end)"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
log "ready"
