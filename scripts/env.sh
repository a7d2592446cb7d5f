# Sourced by the scripts: picks the toolchain for each half of the build.
# The server half always builds with the default cargo into target/; the wasm half with
# rustup when it has the wasm32 target, else with Debian's rustc-web into target/front
# (two compilers never share a target directory: each would rebuild the other's output).
export PATH="$HOME/.cargo/bin:$PATH"
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  KW_WASM_TOOLCHAIN=rustup
  kw_wasm_cargo() { cargo "$@"; }
  kw_wasm_clippy() { cargo clippy "$@"; }
else
  KW_WASM_TOOLCHAIN=debian
  # The linker: rustup's own lld (as recent as its rustc) when there is one; Debian's
  # lld 14 links the bundle too, but its relocation records (which the build's
  # wasm-split step reads) name data segments it did not write.
  kw_wasm_ld="$(rustc --print sysroot 2>/dev/null)/lib/rustlib/$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')/bin/rust-lld"
  [ -x "$kw_wasm_ld" ] || kw_wasm_ld=wasm-ld
  export KW_WASM_LD="$kw_wasm_ld"
  kw_wasm_cargo() {
    env RUSTC=/usr/bin/rustc CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$KW_WASM_LD" \
      CARGO_TARGET_DIR="$PWD/target/front" /usr/bin/cargo "$@"
  }
  # Debian's clippy (package rust-web-clippy) matches its rustc; PATH puts it first so
  # that /usr/bin/cargo finds /usr/bin/cargo-clippy rather than rustup's.
  kw_wasm_clippy() {
    env PATH="/usr/bin:$PATH" CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$KW_WASM_LD" \
      CARGO_TARGET_DIR="$PWD/target/front" /usr/bin/cargo clippy "$@"
  }
fi
export KW_WASM_TOOLCHAIN
