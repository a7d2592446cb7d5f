//! `keyward`: the server and its command-line tools.

mod cli;
mod http;
mod jobs;
mod logging;
mod rest;
mod scan;
mod serve;
mod setup;

use clap::Parser;
use std::process::ExitCode;

/// Stack of each runtime thread. Server-side rendering walks a page's view tree
/// recursively, and an unoptimised build keeps every frame of it at full size: a table of
/// keys overflowed tokio's default 2 MiB (which aborts the whole process). Only what is
/// touched is ever committed, so the margin costs no memory.
const THREAD_STACK: usize = 16 * 1024 * 1024;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match logging::LogFormat::from_env() {
        Ok(format) => logging::init(format),
        Err(e) => {
            eprintln!("keyward: {e}");
            return ExitCode::from(2);
        }
    }
    // A panic is a bug: written to the log like any other error (in its format, with
    // where it happened and, inside a request, its id), not only to standard error in
    // Rust's own form. When the log leaves errors out, Rust's own hook writes it.
    let rust_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !tracing::enabled!(tracing::Level::ERROR) {
            return rust_hook(info);
        }
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|m| (*m).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        // Only when RUST_BACKTRACE asks for one, as Rust's hook does.
        let trace = std::backtrace::Backtrace::capture();
        if trace.status() == std::backtrace::BacktraceStatus::Captured {
            tracing::error!(%location, %message, %thread, backtrace = %trace, "panic");
        } else {
            tracing::error!(%location, %message, %thread, "panic");
        }
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK)
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(cli::run(args)),
        Err(e) => {
            eprintln!("keyward: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyward: {e}");
            ExitCode::FAILURE
        }
    }
}
