//! Running kubeadm and user-data commands: kiln-core's runner with their output going to the
//! log line by line, known secrets redacted, and the last lines of stderr kept for the error.

use std::process::Command;

use kiln_core::command::{Captured, Detail, Run, Stream};

use crate::redact::Redactor;

/// How many stderr lines a failure keeps for its error message.
const TAIL_LINES: usize = 5;

/// Runs `command` to completion, logging its stdout and stderr (redacted) under `origin`; a
/// non-zero exit is not an error here (see [`Captured::detail`] for the redacted stderr tail).
pub fn run_logged(
    mut command: Command,
    origin: &str,
    redact: &Redactor,
) -> Result<Captured, kiln_core::Error> {
    let clean = |text: &str| redact.clean(text);
    let log = |_: Stream, line: &str| tracing::info!(origin, "{line}");
    Run::new(&mut command, origin)
        .redact(&clean)
        .log_lines(&log)
        .detail(Detail::Last(TAIL_LINES))
        .output()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_keeps_a_redacted_stderr_tail() {
        let mut r = Redactor::default();
        r.add("abcdef.0123456789abcdef");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; for i in 1 2 3 4 5 6; do echo err$i >&2; done; echo abcdef.0123456789abcdef >&2; exit 3"]);
        let done = run_logged(cmd, "test", &r).unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(done.detail(), "err3 | err4 | err5 | err6 | <redacted>");
    }
}
