//! The `switchboard` daemon binary: command line, configuration, wiring and shutdown.
//! Everything with behaviour lives in `switchboard-core` and the connector crates; this
//! binary only chooses and connects them.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod body_deadline;
mod channels;
mod cli;
mod commands;
mod http_server;
mod logging;
mod serve;

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // reqwest and sqlx use rustls; pick the ring provider once for the whole process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr is a closed pipe.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
