//! `wasm-split INPUT.wasm OUT_DIR`: the step between cargo and wasm-bindgen that cuts the
//! browser bundle into a main module and one chunk per lazy route (plus chunks of code
//! several routes share), so a page downloads the shell and its own code only.
//!
//! Writes into `OUT_DIR`: `keyward.wasm` (the main module, for wasm-bindgen, which then
//! writes `keyward.js` beside it), the chunks (`*.wasm`), their loader
//! `__wasm_split.js`, and `manifest.json`: for each lazy function's name, the chunks it
//! needs, which the server names in `<link rel="preload">` on the pages that use it.
//! The input must be linked with `--emit-relocs` (`.cargo/config.toml`).
//!
//! It is `wasm_split_cli_support`'s own command-line tool, less its options, plus the
//! manifest, which that tool does not write.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, out_dir, shared) = match args.as_slice() {
        [input, out_dir] => (input, out_dir, SHARED_IN_MAIN_FROM),
        [input, out_dir, n] if n.parse::<usize>().is_ok_and(|n| n >= 2) => {
            (input, out_dir, n.parse().unwrap_or(SHARED_IN_MAIN_FROM))
        }
        _ => {
            eprintln!("usage: wasm-split INPUT.wasm OUT_DIR [SHARED_IN_MAIN_FROM, at least 2]");
            return ExitCode::from(2);
        }
    };
    match split(Path::new(input), Path::new(out_dir), shared) {
        Ok(chunks) => {
            eprintln!("wasm-split: {chunks} chunks");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wasm-split: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Code that at least this many pages need goes into the main module: measured on the
/// panel's 18 pages (`scripts/bundle-bench.sh`), see README's "The browser bundle".
const SHARED_IN_MAIN_FROM: usize = 2;

fn split(
    input: &Path,
    out_dir: &Path,
    shared_in_main_from: usize,
) -> Result<usize, Box<dyn std::error::Error>> {
    let wasm = std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
    std::fs::create_dir_all(out_dir)?;
    let main_out = out_dir.join("keyward.wasm");
    let mut opts = wasm_split_cli_support::Options::new(&wasm);
    opts.output_dir = out_dir;
    opts.main_out_path = &main_out;
    opts.main_module = "./keyward.js";
    opts.link_name = "./__wasm_split.js";
    opts.shared_in_main_from = shared_in_main_from;
    let out = wasm_split_cli_support::transform(opts).map_err(|e| format!("{e:#}"))?;
    // Sorted, so the same input always writes the same file (the bundle's name is a hash
    // of its files).
    let manifest: std::collections::BTreeMap<_, _> = out.prefetch_map.into_iter().collect();
    std::fs::write(
        out_dir.join("manifest.json"),
        serde_json::to_string(&manifest)?,
    )?;
    Ok(out.split_modules.len())
}
