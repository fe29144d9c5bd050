//! What both binaries do around their command: logging to stderr, one `error:` line with the
//! error chain and a non-zero exit on failure.

/// Sets up logging, runs `command` and turns its result into the process exit code.
pub fn run(command: impl FnOnce() -> anyhow::Result<()>) -> std::process::ExitCode {
    init_logging();
    match command() {
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
