//! The one way kiln runs a program (mkfs, ctr, systemctl, kubeadm, user-data commands, shadow
//! tools): argv, optional stdin bytes, optional redaction of known secrets, optional timeout
//! (the whole process group killed when it overruns), stdout captured and bounded or logged
//! line by line as it comes, and the end of stderr in the error. Also [`which`], the one PATH
//! lookup for host tools.

use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// What a program that ran to completion printed.
#[derive(Debug)]
pub struct Captured {
    /// Its exit status.
    pub status: ExitStatus,
    /// What it wrote to stdout (bounded; empty when its lines were logged instead).
    pub stdout: Vec<u8>,
    /// The last bytes it wrote to stderr, as text (redacted).
    pub stderr_tail: String,
    /// The first bytes it wrote to stderr, as text (redacted).
    pub stderr_head: String,
    /// The end of its stdout, as text (redacted): what an error quotes when stderr is empty.
    stdout_tail: String,
    /// Which stderr lines [`Captured::check`] quotes.
    detail: Detail,
}

/// Which of a failed program's stderr lines its error quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// The last N non-empty lines (most tools end with the reason).
    Last(usize),
    /// The first N non-empty lines (tools that print their usage after the reason).
    First(usize),
}

/// Which stream a logged line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The program's stdout.
    Stdout,
    /// The program's stderr.
    Stderr,
}

/// Receives each line a program prints, as it prints it (see [`Run::log_lines`]).
pub type OnLine<'a> = dyn Fn(Stream, &str) + Sync + 'a;
/// Removes known secrets from a text (see [`Run::redact`]).
pub type Redact<'a> = dyn Fn(&str) -> String + Sync + 'a;

/// How many bytes of stderr (at its start and at its end) are kept for the error.
const STDERR_KEPT: usize = 2048;
/// Bytes of stdout kept when no limit was asked for (the rest is drained, dropped and logged).
const STDOUT_KEPT: usize = 1 << 20;
/// Longest line handed on or kept; longer lines come in pieces (bounded memory).
const MAX_LINE: usize = 8 << 10;

/// A program to run. `Run::new(&mut cmd, "making the ESP").run()?` runs it quietly and fails
/// with its exit status and the end of its stderr.
pub struct Run<'a> {
    command: &'a mut Command,
    what: String,
    stdin: Option<&'a [u8]>,
    redact: Option<&'a Redact<'a>>,
    on_line: Option<&'a OnLine<'a>>,
    timeout: Option<Duration>,
    max_stdout: Option<usize>,
    detail: Detail,
}

impl<'a> Run<'a> {
    /// `command`, named `what` in errors (e.g. "mkfs.vfat" or "making the ESP").
    pub fn new(command: &'a mut Command, what: impl Into<String>) -> Self {
        Run {
            command,
            what: what.into(),
            stdin: None,
            redact: None,
            on_line: None,
            timeout: None,
            max_stdout: None,
            detail: Detail::Last(15),
        }
    }

    /// Feeds `bytes` to the program's stdin (else stdin is closed).
    pub fn stdin(mut self, bytes: &'a [u8]) -> Self {
        self.stdin = Some(bytes);
        self
    }

    /// Passes every line logged and the stderr kept for the error through `redact`.
    pub fn redact(mut self, redact: &'a Redact<'a>) -> Self {
        self.redact = Some(redact);
        self
    }

    /// Hands every line of stdout and stderr (redacted) to `on_line` as it comes; stdout is
    /// then not captured.
    pub fn log_lines(mut self, on_line: &'a OnLine<'a>) -> Self {
        self.on_line = Some(on_line);
        self
    }

    /// Kills the program's process group after `timeout`, which is then an error.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Fails (killing the program) when it prints more than `bytes` to stdout.
    pub fn max_stdout(mut self, bytes: usize) -> Self {
        self.max_stdout = Some(bytes);
        self
    }

    /// Which stderr lines the error quotes (default: the last 15).
    pub fn detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }

    /// Runs the program and fails unless it exits with 0 (see [`Captured::check`]).
    pub fn run(self) -> Result<Captured, Error> {
        let what = self.what.clone();
        self.output()?.check(&what)
    }

    /// Runs the program to completion; an error when it cannot start, overruns its timeout or
    /// prints more than its stdout limit. A non-zero exit is not an error here.
    pub fn output(mut self) -> Result<Captured, Error> {
        let mut child = self.spawn()?;
        let redact = |text: &str| match self.redact {
            Some(r) => r(text),
            None => text.to_owned(),
        };
        let (status, (stdout, overflow), (stderr_head, stderr_tail)) =
            self.collect(&mut child, &redact);
        let what = &self.what;
        let status = status.map_err(|e| Error::invalid(format!("{what}: waiting for it: {e}")))?;
        let Some(status) = status else {
            return Err(Error::invalid(format!(
                "{what}: gave no answer within {:?} and was stopped{}",
                self.timeout.unwrap_or_default(),
                quoted(&stderr_tail)
            )));
        };
        if let Some(max) = self.max_stdout.filter(|_| overflow) {
            return Err(Error::invalid(format!(
                "{what}: printed more than {max} bytes and was stopped; that is not the answer \
                 kiln asked for"
            )));
        }
        if overflow {
            tracing::warn!("{what}: printed more than {STDOUT_KEPT} bytes; the rest was dropped");
        }
        Ok(Captured {
            status,
            stdout_tail: redact(&text_tail(&stdout)),
            stdout,
            stderr_tail,
            stderr_head,
            detail: self.detail,
        })
    }

    /// Starts the program with piped stdout and stderr (and stdin when there are bytes to feed),
    /// in its own process group when it has a timeout.
    fn spawn(&mut self) -> Result<Child, Error> {
        let stdin = match self.stdin {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        };
        self.command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.timeout.is_some() {
            self.command.process_group(0);
        }
        let what = &self.what;
        self.command
            .spawn()
            .map_err(|e| Error::invalid(format!("{what}: cannot run it: {e}")))
    }

    /// Feeds stdin, reads stdout and stderr (logging lines as they come if asked) and waits for
    /// the program (killing it at the timeout, or when it prints past its stdout limit): its
    /// status (`None` when killed at the timeout), its stdout with whether it overflowed, and the
    /// head and tail of its stderr (redacted).
    fn collect(&self, child: &mut Child, redact: &(dyn Fn(&str) -> String + Sync)) -> Collected {
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (pid, grouped) = (child.id(), self.timeout.is_some());
        let stop = move || kill(pid, grouped);
        let limit = self.max_stdout.map(|m| (m, &stop as &(dyn Fn() + Sync)));
        let on_line = self.on_line;
        std::thread::scope(|s| {
            if let (Some(mut pipe), Some(bytes)) = (stdin, self.stdin) {
                // A program that stops reading early closes the pipe: not an error here.
                s.spawn(move || {
                    let _ = pipe.write_all(bytes);
                });
            }
            let stderr = s.spawn(|| drain(stderr, Stream::Stderr, on_line, redact));
            let stdout = s.spawn(|| match on_line {
                Some(_) => {
                    drain(stdout, Stream::Stdout, on_line, redact);
                    (Vec::new(), false)
                }
                None => keep_head(stdout, limit),
            });
            let status = wait_until(child, self.timeout.map(|t| Instant::now() + t));
            (
                status,
                stdout.join().unwrap_or_default(),
                stderr.join().unwrap_or_default(),
            )
        })
    }
}

/// What [`Run::collect`] gathered: the wait's outcome (`None` when killed at the timeout),
/// stdout with whether it overflowed, and the head and tail of stderr.
type Collected = (
    std::io::Result<Option<ExitStatus>>,
    (Vec<u8>, bool),
    (String, String),
);

/// Kills the program `pid` (its whole process group when it has one of its own).
fn kill(pid: u32, grouped: bool) {
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    let signal = nix::sys::signal::Signal::SIGKILL;
    let _ = match grouped {
        true => nix::sys::signal::killpg(pid, signal),
        false => nix::sys::signal::kill(pid, signal),
    };
}

impl Captured {
    /// `self` if the program exited with 0, else an error naming `what`, its exit status and
    /// the end of its stderr (else of its stdout).
    pub fn check(self, what: &str) -> Result<Captured, Error> {
        if self.status.success() {
            return Ok(self);
        }
        Err(Error::invalid(format!(
            "{what}: failed ({}){}",
            self.status,
            quoted(&self.detail())
        )))
    }

    /// The lines of stderr (else stdout) an error quotes, joined with ` | `.
    pub fn detail(&self) -> String {
        let (text, detail) = match self.detail {
            Detail::First(n) if !self.stderr_head.trim().is_empty() => {
                (&self.stderr_head, Detail::First(n))
            }
            Detail::Last(n) if !self.stderr_tail.trim().is_empty() => {
                (&self.stderr_tail, Detail::Last(n))
            }
            d => (&self.stdout_tail, d),
        };
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
            .collect();
        match detail {
            Detail::First(n) => lines[..n.min(lines.len())].join(" | "),
            Detail::Last(n) => lines[lines.len().saturating_sub(n)..].join(" | "),
        }
    }
}

/// The full path of `program` on `$PATH`, else in the sbin and bin directories (tools such as
/// mkfs live in /usr/sbin, which a user's PATH may lack).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// [`which`]`(program)`, or an error naming the Debian package that provides it.
pub fn find_tool(program: &str, package: &str) -> anyhow::Result<PathBuf> {
    which(program).ok_or_else(|| anyhow::anyhow!("{program} not found; install {package}"))
}

/// `: "TEXT"` for a non-empty text, else nothing.
fn quoted(text: &str) -> String {
    match text.trim() {
        "" => String::new(),
        t => format!(": {t:?}"),
    }
}

/// Reads `stream` to its end keeping its first bytes: with `limit = (max, stop)`, past `max`
/// bytes `stop` is called (it kills the program) and reading ends; without, [`STDOUT_KEPT`]
/// bytes are kept and the rest drained (so the program never blocks on a full pipe). Returns
/// the bytes and whether there were more.
fn keep_head(
    stream: Option<impl Read>,
    limit: Option<(usize, &(dyn Fn() + Sync))>,
) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let Some(mut stream) = stream else {
        return (kept, false);
    };
    let keep = limit.map_or(STDOUT_KEPT, |(max, _)| max);
    let mut overflow = false;
    let mut buf = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        let room = keep.saturating_sub(kept.len()).min(n);
        kept.extend_from_slice(&buf[..room]);
        overflow |= room < n;
        if let (true, Some((_, stop))) = (overflow, limit) {
            stop();
            break;
        }
    }
    (kept, overflow)
}

/// The last [`STDERR_KEPT`] bytes of `bytes` as text, from a line boundary.
fn text_tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(STDERR_KEPT);
    let text = String::from_utf8_lossy(&bytes[start..]);
    match (start > 0, text.split_once('\n')) {
        (true, Some((_, rest))) => rest.to_owned(),
        _ => text.into_owned(),
    }
}

/// Hands each line of `reader` (without its line end) to `f`; a line longer than [`MAX_LINE`]
/// comes in pieces, so memory stays bounded whatever the program prints.
fn for_each_line(reader: impl Read, mut f: impl FnMut(&[u8])) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) if !buf.is_empty() => buf,
            _ => break,
        };
        let room = MAX_LINE - line.len();
        let newline = buf[..buf.len().min(room)].iter().position(|&b| b == b'\n');
        let take = newline.map_or(buf.len().min(room), |i| i + 1);
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if newline.is_some() || line.len() == MAX_LINE {
            f(trim_line_end(&line));
            line.clear();
        }
    }
    if !line.is_empty() {
        f(trim_line_end(&line));
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| b != b'\n' && b != b'\r')
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// The first and the last lines of a stream, redacted line by line, about [`STDERR_KEPT`] bytes
/// each (so a cut never splits a secret the redaction knows).
#[derive(Default)]
struct Kept {
    head: String,
    tail: std::collections::VecDeque<String>,
    tail_bytes: usize,
}

impl Kept {
    fn push(&mut self, line: String) {
        if self.head.len() < STDERR_KEPT {
            self.head.push_str(&line);
            self.head.push('\n');
        }
        self.tail_bytes += line.len() + 1;
        self.tail.push_back(line);
        while self.tail_bytes > STDERR_KEPT && self.tail.len() > 1 {
            let dropped = self.tail.pop_front().unwrap_or_default();
            self.tail_bytes -= dropped.len() + 1;
        }
    }

    fn finish(self) -> (String, String) {
        let tail: Vec<String> = self.tail.into();
        (self.head, tail.join("\n").trim().to_owned())
    }
}

/// Reads `stream` to its end, handing each line (redacted) to `on_line` if there is one;
/// returns the head and the tail of what it printed (redacted, whole lines).
fn drain(
    stream: Option<impl Read>,
    which: Stream,
    on_line: Option<&OnLine<'_>>,
    redact: &dyn Fn(&str) -> String,
) -> (String, String) {
    let Some(stream) = stream else {
        return Default::default();
    };
    let mut kept = Kept::default();
    for_each_line(stream, |bytes| {
        let line = redact(&String::from_utf8_lossy(bytes));
        if let Some(on_line) = on_line {
            on_line(which, &line);
        }
        kept.push(line);
    });
    kept.finish()
}

/// The child's status, or `None` after killing its process group at `deadline`.
fn wait_until(child: &mut Child, deadline: Option<Instant>) -> std::io::Result<Option<ExitStatus>> {
    let Some(deadline) = deadline else {
        return child.wait().map(Some);
    };
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            kill(child.id(), true);
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_is_one_clear_error() {
        let err = find_tool("mksquashfs-does-not-exist", "squashfs-tools").unwrap_err();
        assert_eq!(
            err.to_string(),
            "mksquashfs-does-not-exist not found; install squashfs-tools"
        );
    }

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn captures_stdout_and_stderr() {
        let done = Run::new(&mut sh("echo out; echo err >&2"), "t")
            .output()
            .unwrap();
        assert!(done.status.success());
        assert_eq!(done.stdout, b"out\n");
        assert_eq!(done.stderr_tail, "err");
    }

    #[test]
    fn failure_names_the_program_and_its_stderr() {
        let done = Run::new(&mut sh("echo boom >&2; exit 3"), "tool")
            .output()
            .unwrap();
        let err = done.check("tool").unwrap_err().to_string();
        assert!(
            err.starts_with("tool: failed (exit status: 3): \"boom\""),
            "{err}"
        );
    }

    #[test]
    fn a_hang_is_stopped_with_its_children() {
        let started = Instant::now();
        let err = Run::new(&mut sh("sleep 30 & sleep 30"), "slow")
            .timeout(Duration::from_millis(300))
            .output()
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            err.to_string()
                .contains("slow: gave no answer within 300ms"),
            "{err}"
        );
    }

    #[test]
    fn too_much_output_is_refused() {
        let err = Run::new(&mut sh("head -c 100000 /dev/zero"), "chatty")
            .max_stdout(1000)
            .output()
            .unwrap_err();
        assert!(err.to_string().contains("more than 1000 bytes"), "{err}");
    }

    #[test]
    fn an_endless_stdout_is_stopped_at_its_limit_without_a_timeout() {
        let started = Instant::now();
        let err = Run::new(&mut sh("yes"), "endless")
            .max_stdout(1000)
            .output()
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            err.to_string()
                .contains("more than 1000 bytes and was stopped"),
            "{err}"
        );
    }

    #[test]
    fn a_secret_is_never_cut_by_the_kept_tail() {
        // Long stderr: the kept tail starts somewhere in the middle of the output, and the
        // secret sits on every line; redaction per line means no fragment survives.
        let secret = "abcdef.0123456789abcdef";
        let script = format!(
            "i=0; while [ $i -lt 400 ]; do echo \"line $i {secret}\" >&2; i=$((i+1)); done; exit 1"
        );
        let redact = |t: &str| t.replace(secret, "<redacted>");
        let done = Run::new(&mut sh(&script), "t")
            .redact(&redact)
            .detail(Detail::Last(200))
            .output()
            .unwrap();
        for text in [&done.stderr_tail, &done.stderr_head, &done.detail()] {
            assert!(
                !text.contains("0123456789") && !text.contains("abcdef."),
                "{text}"
            );
        }
        assert!(done.stderr_tail.ends_with("line 399 <redacted>"));
    }

    #[test]
    fn overlong_lines_come_in_pieces() {
        let mut pieces = Vec::new();
        for_each_line(&vec![b'x'; MAX_LINE * 2 + 5][..], |l| pieces.push(l.len()));
        assert_eq!(pieces, [MAX_LINE, MAX_LINE, 5]);
        let mut lines = Vec::new();
        for_each_line(&b"a\r\nb\n\nc"[..], |l| lines.push(l.to_vec()));
        assert_eq!(
            lines,
            [b"a".to_vec(), b"b".to_vec(), b"".to_vec(), b"c".to_vec()]
        );
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let err = Run::new(&mut Command::new("/nonexistent/x"), "x")
            .output()
            .unwrap_err();
        assert!(err.to_string().starts_with("x: cannot run it"), "{err}");
    }

    #[test]
    fn stdin_is_fed() {
        let mut cmd = sh("cat");
        let done = Run::new(&mut cmd, "cat").stdin(b"hello").run().unwrap();
        assert_eq!(done.stdout, b"hello");
    }

    #[test]
    fn logged_lines_and_the_error_are_redacted() {
        let hide = |t: &str| t.replace("abcdef.0123456789abcdef", "<redacted>");
        let seen = std::sync::Mutex::new(Vec::new());
        let log = |s: Stream, l: &str| seen.lock().unwrap().push((s, l.to_owned()));
        let mut cmd = sh("echo out; for i in 1 2 3 4 5 6; do echo err$i >&2; done; echo abcdef.0123456789abcdef >&2; exit 3");
        let err = Run::new(&mut cmd, "kubeadm")
            .redact(&hide)
            .log_lines(&log)
            .detail(Detail::Last(5))
            .run()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "kubeadm: failed (exit status: 3): \"err3 | err4 | err5 | err6 | <redacted>\""
        );
        let seen = seen.into_inner().unwrap();
        assert!(seen.contains(&(Stream::Stdout, "out".into())), "{seen:?}");
        assert!(
            seen.contains(&(Stream::Stderr, "<redacted>".into())),
            "{seen:?}"
        );
    }

    #[test]
    fn first_lines_when_usage_follows_the_reason() {
        let mut cmd =
            sh("echo 'bad option' >&2; for i in 1 2 3; do echo usage$i >&2; done; exit 1");
        let err = Run::new(&mut cmd, "mkfs")
            .detail(Detail::First(2))
            .run()
            .unwrap_err();
        assert!(
            err.to_string().ends_with("\"bad option | usage1\""),
            "{err}"
        );
    }

    #[test]
    fn stdout_is_the_detail_when_stderr_is_silent() {
        let mut cmd = sh("echo only-stdout; exit 1");
        let err = Run::new(&mut cmd, "t").run().unwrap_err();
        assert!(err.to_string().ends_with("\"only-stdout\""), "{err}");
    }

    #[test]
    fn which_finds_sh_and_not_nonsense() {
        assert!(which("sh").is_some_and(|p| p.is_absolute()));
        assert!(which("kiln-no-such-tool").is_none());
    }
}
