//! Running kubeadm: output to the journal with secrets redacted; a failed `join` is cleaned up
//! with `kubeadm reset -f` and retried a bounded number of times with backoff and jitter
//! (control planes and their load balancers change under autoscaling groups).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use kiln_core::retry::{self, Attempt, Policy};

use crate::process::run_logged;
use crate::redact::Redactor;

/// One kubeadm invocation and its retry policy.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The kubeadm binary (baked into the image).
    pub kubeadm: PathBuf,
    /// Its arguments, e.g. `["join", "--config", "/etc/kiln/kubeadm.yaml"]`.
    pub args: Vec<String>,
    /// How many times to try in all (at least 1).
    pub attempts: u32,
    /// First pause between attempts; doubles each time.
    pub backoff: Duration,
}

/// Runs `inv`, resetting and retrying on failure; the error names the last exit status and the
/// last lines kubeadm wrote to stderr (redacted).
pub fn run(inv: &Invocation, redact: &Redactor) -> anyhow::Result<()> {
    let policy = Policy::attempts(inv.attempts, inv.backoff);
    let attempts = policy.attempts.unwrap_or(1);
    let result = policy.run(
        |attempt| {
            if attempt > 1 {
                reset(inv, redact);
            }
            let mut cmd = Command::new(&inv.kubeadm);
            cmd.args(&inv.args);
            tracing::info!(
                attempt,
                attempts,
                subcommand = inv.args.first().map(String::as_str),
                "running kubeadm"
            );
            let done = run_logged(cmd, "kubeadm", redact).map_err(|e| {
                Attempt::Fail(anyhow::anyhow!("cannot run {}: {e}", inv.kubeadm.display()))
            })?;
            if done.status.success() {
                return Ok(());
            }
            Err(Attempt::Retry(format!(
                "kubeadm exited with {}: {}",
                done.status,
                done.detail()
            )))
        },
        |reason, _| tracing::warn!("{reason}; resetting and retrying"),
    );
    result.map_err(|e| match e {
        retry::Error::Final(err) => err,
        retry::Error::GaveUp { attempts, last } => {
            anyhow::anyhow!("{last} (attempt {attempts} of {attempts})")
        }
    })
}

/// `kubeadm reset -f`, so the next attempt starts clean; its failure is logged, not fatal.
fn reset(inv: &Invocation, redact: &Redactor) {
    let mut cmd = Command::new(&inv.kubeadm);
    cmd.args(["reset", "-f"]);
    match run_logged(cmd, "kubeadm reset", redact) {
        Ok(done) if done.status.success() => {}
        Ok(done) => tracing::warn!("kubeadm reset -f exited with {}", done.status),
        Err(e) => tracing::warn!("kubeadm reset -f: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in kubeadm (a shell script, not the real kubeadm) that records its arguments
    /// and fails its first `fail` non-reset invocations.
    fn standin(dir: &std::path::Path, fail: u32) -> PathBuf {
        let script = format!(
            "#!/bin/sh\necho \"$@\" >> {log}\n[ \"$1\" = reset ] && exit 0\nn=$(cat {count} 2>/dev/null || echo 0)\necho $((n+1)) > {count}\n[ $n -lt {fail} ] && {{ echo \"error: connection refused abcdef.0123456789abcdef\" >&2; exit 1; }}\nexit 0\n",
            log = dir.join("calls").display(),
            count = dir.join("count").display(),
        );
        let path = dir.join("kubeadm");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn invocation(kubeadm: PathBuf, attempts: u32) -> Invocation {
        Invocation {
            kubeadm,
            args: vec!["join".into(), "--config".into(), "/x.yaml".into()],
            attempts,
            backoff: Duration::from_millis(10),
        }
    }

    #[test]
    fn join_is_reset_and_retried_until_it_succeeds() {
        let tmp = tempfile::tempdir().unwrap();
        let inv = invocation(standin(tmp.path(), 2), 3);
        run(&inv, &Redactor::default()).unwrap();
        let calls = std::fs::read_to_string(tmp.path().join("calls")).unwrap();
        assert_eq!(calls, "join --config /x.yaml\nreset -f\njoin --config /x.yaml\nreset -f\njoin --config /x.yaml\n");
    }

    #[test]
    fn retries_are_bounded_and_the_error_is_redacted() {
        let tmp = tempfile::tempdir().unwrap();
        let inv = invocation(standin(tmp.path(), 5), 2);
        let mut redact = Redactor::default();
        redact.add("abcdef.0123456789abcdef");
        let err = run(&inv, &redact).unwrap_err().to_string();
        assert!(
            err.contains("attempt 2 of 2") && err.contains("connection refused <redacted>"),
            "{err}"
        );
    }
}
