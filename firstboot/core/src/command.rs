//! Running a program whose output kiln reads (e.g. `kubeadm config images list`): bounded in
//! time and in output, its stderr's last lines kept for the error, the whole process group
//! killed when it overruns. The one place for capturing a tool's answer; programs whose output
//! only goes to the log use the node agent's `process::run_logged`.

use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Error;

/// How much a captured program may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time before the program's process group is killed.
    pub timeout: Duration,
    /// Bytes of stdout kept; more is an error (the program is killed).
    pub max_stdout: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(60),
            max_stdout: 1 << 20,
        }
    }
}

/// What a program that ran to completion printed.
#[derive(Debug)]
pub struct Captured {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stdout (at most [`Limits::max_stdout`] bytes).
    pub stdout: Vec<u8>,
    /// The last bytes it wrote to stderr, as text.
    pub stderr_tail: String,
}

/// How many bytes of stderr an error keeps.
const STDERR_TAIL: usize = 2048;

/// Runs `command` (stdin closed) and returns what it printed, or an error naming `what` when it
/// cannot start, overruns `limits.timeout` or prints more than `limits.max_stdout`. A non-zero
/// exit is not an error here: see [`Captured::check`].
pub fn capture(mut command: Command, what: &str, limits: Limits) -> Result<Captured, Error> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| Error::invalid(format!("{what}: cannot run it: {e}")))?;
    let stdout = read_in_background(child.stdout.take(), limits.max_stdout + 1);
    let stderr = read_in_background(child.stderr.take(), usize::MAX);
    let status = wait_until(&mut child, Instant::now() + limits.timeout);
    let (stdout, stderr) = (join(stdout), join(stderr));
    let stderr_tail = tail(&stderr);
    let Some(status) = status else {
        return Err(Error::invalid(format!(
            "{what}: gave no answer within {:?} and was stopped{}",
            limits.timeout,
            quoted(&stderr_tail)
        )));
    };
    if stdout.len() > limits.max_stdout {
        return Err(Error::invalid(format!(
            "{what}: printed more than {} bytes; that is not the answer kiln asked for",
            limits.max_stdout
        )));
    }
    Ok(Captured {
        status,
        stdout,
        stderr_tail,
    })
}

impl Captured {
    /// `self` if the program exited with 0, else an error naming `what`, its exit status and
    /// the end of its stderr.
    pub fn check(self, what: &str) -> Result<Captured, Error> {
        if self.status.success() {
            return Ok(self);
        }
        Err(Error::invalid(format!(
            "{what}: failed ({}){}",
            self.status,
            quoted(&self.stderr_tail)
        )))
    }
}

/// `: "TEXT"` for a non-empty text, else nothing.
fn quoted(text: &str) -> String {
    match text.trim() {
        "" => String::new(),
        t => format!(": {t:?}"),
    }
}

/// Reads `stream` to its end on a thread, keeping at most `keep` bytes (the rest is drained
/// and dropped, so the program never blocks on a full pipe).
fn read_in_background(
    stream: Option<impl Read + Send + 'static>,
    keep: usize,
) -> Option<JoinHandle<Vec<u8>>> {
    let mut stream = stream?;
    Some(std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = keep.saturating_sub(kept.len()).min(n);
            kept.extend_from_slice(&buf[..room]);
            if keep == usize::MAX && kept.len() > 4 * STDERR_TAIL {
                kept.drain(..kept.len() - STDERR_TAIL);
            }
        }
        kept
    }))
}

fn join(handle: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// The child's status, or `None` after killing its process group at `deadline`.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let group = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The last [`STDERR_TAIL`] bytes of `bytes` as text, starting at a line boundary if one is
/// near.
fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&bytes[start..]).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn captures_stdout_and_stderr() {
        let done = capture(sh("echo out; echo err >&2"), "t", Limits::default()).unwrap();
        assert!(done.status.success());
        assert_eq!(done.stdout, b"out\n");
        assert_eq!(done.stderr_tail, "err");
    }

    #[test]
    fn failure_names_the_program_and_its_stderr() {
        let done = capture(sh("echo boom >&2; exit 3"), "tool", Limits::default()).unwrap();
        let err = done.check("tool").unwrap_err().to_string();
        assert!(
            err.starts_with("tool: failed (exit status: 3): \"boom\""),
            "{err}"
        );
    }

    #[test]
    fn a_hang_is_stopped_with_its_children() {
        let limits = Limits {
            timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let started = Instant::now();
        let err = capture(sh("sleep 30 & sleep 30"), "slow", limits).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            err.to_string()
                .contains("slow: gave no answer within 300ms"),
            "{err}"
        );
    }

    #[test]
    fn too_much_output_is_refused() {
        let limits = Limits {
            max_stdout: 1000,
            ..Limits::default()
        };
        let err = capture(sh("head -c 100000 /dev/zero"), "chatty", limits).unwrap_err();
        assert!(err.to_string().contains("more than 1000 bytes"), "{err}");
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let err = capture(Command::new("/nonexistent/x"), "x", Limits::default()).unwrap_err();
        assert!(err.to_string().starts_with("x: cannot run it"), "{err}");
    }
}
