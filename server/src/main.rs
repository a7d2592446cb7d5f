//! `keyward`: the server and its command-line tools.

mod cli;
mod http;
mod jobs;
mod rest;
mod serve;
mod setup;

use clap::Parser;
use std::process::ExitCode;
use tracing_subscriber::field::MakeExt as _;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYWARD_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_sessions=warn")
            }),
        )
        // `name=value` fields as by default, written without the styling pass the
        // default formatter makes even with colours off: every request's span formats
        // its fields when it opens (about 600 instructions of a key check went there).
        .fmt_fields(
            tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
                if field.name() == "message" {
                    write!(w, "{value:?}")
                } else {
                    write!(w, "{field}={value:?}")
                }
            })
            .delimited(" "),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyward: {e}");
            ExitCode::FAILURE
        }
    }
}
