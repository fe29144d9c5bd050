//! Running external programs (kubeadm, user-data commands): their output goes to the log line
//! by line with known secrets redacted, and a failure carries the last lines of its stderr.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use crate::redact::Redactor;

/// How many stderr lines a failure keeps for its error message.
const TAIL_LINES: usize = 5;

/// The result of a finished program.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// The last lines it wrote to stderr, redacted.
    pub stderr_tail: Vec<String>,
}

/// Runs `command` to completion, logging its stdout and stderr (redacted) under `origin`.
pub fn run_logged(
    mut command: Command,
    origin: &str,
    redact: &Redactor,
) -> std::io::Result<Finished> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let (stderr, stderr_origin, stderr_redact, stderr_tail) = (
        child.stderr.take(),
        origin.to_owned(),
        redact.clone(),
        tail.clone(),
    );
    let reader = std::thread::spawn(move || {
        log_lines(stderr, &stderr_origin, &stderr_redact, Some(&stderr_tail))
    });
    log_lines(child.stdout.take(), origin, redact, None);
    let _ = reader.join();
    let status = child.wait()?;
    let stderr_tail = tail
        .lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default();
    Ok(Finished {
        status,
        stderr_tail,
    })
}

fn log_lines(
    stream: Option<impl Read>,
    origin: &str,
    redact: &Redactor,
    tail: Option<&Mutex<VecDeque<String>>>,
) {
    let Some(stream) = stream else { return };
    for line in BufReader::new(stream).lines().map_while(|l| l.ok()) {
        let clean = redact.clean(&line);
        tracing::info!(origin, "{clean}");
        if let Some(Ok(mut t)) = tail.map(|t| t.lock()) {
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(clean);
        }
    }
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
        assert_eq!(
            done.stderr_tail,
            ["err3", "err4", "err5", "err6", "<redacted>"]
        );
    }
}
