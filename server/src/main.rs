//! `keyward`: the server and its command-line tools.

mod cli;
mod http;
mod jobs;
mod logging;
mod rest;
mod serve;
mod setup;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    logging::init();
    match cli::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyward: {e}");
            ExitCode::FAILURE
        }
    }
}
