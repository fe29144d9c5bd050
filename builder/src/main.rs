//! `kiln`: the operator's tool. Parses the command line, sets up logging, runs one command and
//! reports its error chain with a non-zero exit.

mod cli;
mod output;

use clap::Parser;

fn main() -> std::process::ExitCode {
    init_logging();
    let cli = cli::Cli::parse();
    match cli.run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr without timestamps (journald and CI logs add their own); stdout carries
/// only the data a command prints. `RUST_LOG` sets the level (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
}
