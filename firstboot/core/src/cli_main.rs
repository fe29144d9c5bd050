//! What both binaries do around their command: logging to stderr, one `error:` line with the
//! error chain and a non-zero exit on failure. Every field of a log line and the error line
//! pass through [`crate::redact::escape`]: a path or value with a newline cannot forge a line.

use tracing_subscriber::field::MakeExt as _;
use tracing_subscriber::fmt::format::Writer;

use crate::redact::{escape, without_tokens};

/// What both binaries' exit statuses mean (their `--help` ends with it; the README repeats it).
/// 2 is clap's convention for a command line it cannot parse, which `main` keeps.
pub const EXIT_STATUS_HELP: &str = "Exit status: 0 success; 1 the command failed (an input it \
    read or a flag value it checked was refused, or a step failed: one `error:` line says what); \
    2 the command line is malformed (unknown command or flag, missing flag, a flag value of the \
    wrong form).";

/// Sets up logging, runs `command` and turns its result into the process exit code (see
/// [`EXIT_STATUS_HELP`]).
pub fn run(command: impl FnOnce() -> anyhow::Result<()>) -> std::process::ExitCode {
    init_logging();
    match command() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", error_line(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// `error: ` and the error chain on one line: bootstrap tokens, URL credentials and queries
/// removed (the last net under the messages' own care), control characters escaped.
pub fn error_line(err: &anyhow::Error) -> String {
    let text = crate::url::redact_in(&format!("{err:#}"));
    format!("error: {}", escape(&without_tokens(&text)))
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
        .fmt_fields(log_fields())
        .init();
}

/// How a log line shows its message and fields: `message key=value …`, each escaped.
pub fn log_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    tracing_subscriber::fmt::format::debug_fn(
        |w: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
            let text = format!("{value:?}");
            match field.name() {
                "message" => write!(w, "{}", escape(&text)),
                name => write!(w, "{name}={}", escape(&text)),
            }
        },
    )
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A log sink for one test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_cannot_be_forged() {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_target(false)
            .without_time()
            .fmt_fields(log_fields())
            .finish();
        let path = "/etc/x\n ERROR forged: root login enabled";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(path, count = 2, "wrote {path}");
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(r#"wrote /etc/x\n ERROR forged"#) && text.contains("count=2"),
            "{text}"
        );
    }

    #[test]
    fn the_error_line_is_one_line() {
        let err = anyhow::anyhow!("/srv/a\nb: no such file").context("reading\r\nthe recipe");
        assert_eq!(
            error_line(&err),
            r"error: reading\r\nthe recipe: /srv/a\nb: no such file"
        );
    }
}
