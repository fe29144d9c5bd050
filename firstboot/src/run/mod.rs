//! The boot-time run: a fixed list of named steps, each recorded in the state file when it
//! completes, so a crash or reboot resumes at the first unfinished step; `status.json` tells
//! what happened, and the one result line goes to the console.
//!
//! - [`steps`]: fetch, configure, preflight, runtime, network, kubeadm, post-init, commands.
//! - [`state`]: completed steps and the run's paths.
//! - [`status`]: the run report, status.json.

pub mod state;
pub mod status;
pub mod steps;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::redact::Redactor;
use state::{Paths, State};
use status::{Status, StepRecord};

/// How the run is set up (the defaults are a real node; tests point the roots elsewhere).
#[derive(Debug, Clone)]
pub struct Options {
    /// The node's root directory.
    pub root: PathBuf,
    /// Where /proc, /sys and /dev are read.
    pub sys_root: PathBuf,
    /// A fixed datasource instead of the search.
    pub datasource: Option<String>,
    /// Replaces the metadata service address (tests).
    pub metadata_url: Option<String>,
    /// Total time for fetching user-data and remote resources.
    pub timeout: Duration,
    /// The kubeadm binary (baked into the image; a stand-in in tests).
    pub kubeadm: PathBuf,
    /// How long a joining node waits for its control plane to come up.
    pub join_timeout: Duration,
    /// containerd's socket (on the host).
    pub containerd_address: PathBuf,
    /// The user-data budgets of the run.
    pub limits: crate::userdata::Limits,
}

/// What steps share while the run goes on.
pub struct Context {
    /// The run's options.
    pub options: Options,
    /// The run's files.
    pub paths: Paths,
    /// Secrets found so far, kept out of logs and status.
    pub redact: Redactor,
    /// The user-data plan, compiled once per run by the first step that needs it (so remote
    /// resources are fetched once) and kept in memory only: it holds secrets.
    pub plan: Option<std::sync::Arc<crate::plan::Plan>>,
    /// Image imports started before the steps (see [`steps::early_import`]); the runtime step
    /// waits for them.
    pub early_import: Option<crate::node::store::Early>,
}

/// One step of the run.
pub trait Step {
    /// Its name in state.json and status.json.
    fn name(&self) -> &'static str;
    /// Does the work; must be safe to run again after a crash inside it.
    fn run(&self, ctx: &mut Context) -> anyhow::Result<()>;
}

/// Runs `steps` in order, skipping those an earlier run completed. Returns the final status
/// (also saved); an error means a step failed and the status says which and why.
pub fn execute(steps: &[&dyn Step], ctx: &mut Context) -> anyhow::Result<Status> {
    let mut state = State::load(&ctx.paths.state())?;
    let mut status = Status {
        result: "running".into(),
        ..steps::identity(&ctx.options.sys_root)
    };
    status.save(&ctx.paths.status())?;
    for step in steps {
        let name = step.name();
        if state.done(name) {
            status.steps.push(record(name, "skipped", Duration::ZERO));
            continue;
        }
        let start = Instant::now();
        tracing::info!(step = name, "starting");
        if let Err(err) = step.run(ctx) {
            let message = ctx.redact.clean(&format!("{err:#}"));
            status.steps.push(record(name, "failed", start.elapsed()));
            status.result = "failed".into();
            status.failed_step = Some(name.into());
            status.error = Some(message.clone());
            status.peak_rss_kib = status::peak_rss_kib();
            status.save(&ctx.paths.status())?;
            anyhow::bail!("step {name} failed: {message}");
        }
        state.complete(name, &ctx.paths.state())?;
        status.steps.push(record(name, "done", start.elapsed()));
        status.save(&ctx.paths.status())?;
    }
    status.result = "success".into();
    status.peak_rss_kib = status::peak_rss_kib();
    status.save(&ctx.paths.status())?;
    kiln_core::fsutil::write_atomic(&ctx.paths.done(), b"", 0o644)?;
    Ok(status)
}

fn record(name: &str, outcome: &str, took: Duration) -> StepRecord {
    StepRecord {
        name: name.into(),
        outcome: outcome.into(),
        seconds: (took.as_secs_f64() * 1000.0).round() / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Counting<'a> {
        name: &'static str,
        runs: &'a Cell<u32>,
        fail_first: u32,
    }

    impl Step for Counting<'_> {
        fn name(&self) -> &'static str {
            self.name
        }
        fn run(&self, ctx: &mut Context) -> anyhow::Result<()> {
            self.runs.set(self.runs.get() + 1);
            ctx.redact.add("abcdef.0123456789abcdef");
            if self.runs.get() <= self.fail_first {
                anyhow::bail!("token abcdef.0123456789abcdef rejected");
            }
            Ok(())
        }
    }

    fn context(dir: &std::path::Path) -> Context {
        Context {
            options: Options {
                root: dir.to_owned(),
                sys_root: dir.to_owned(),
                datasource: None,
                metadata_url: None,
                timeout: Duration::from_secs(1),
                kubeadm: "/usr/bin/kubeadm".into(),
                join_timeout: Duration::from_secs(1),
                containerd_address: dir.join("containerd.sock"),
                limits: Default::default(),
            },
            paths: Paths::new(dir),
            redact: Redactor::default(),
            plan: None,
            early_import: None,
        }
    }

    #[test]
    fn a_failed_run_resumes_at_the_failed_step_and_never_saves_secrets() {
        let tmp = tempfile::tempdir().unwrap();
        let (a_runs, b_runs) = (Cell::new(0), Cell::new(0));
        let a = Counting {
            name: "a",
            runs: &a_runs,
            fail_first: 0,
        };
        let b = Counting {
            name: "b",
            runs: &b_runs,
            fail_first: 1,
        };
        let mut ctx = context(tmp.path());
        let err = execute(&[&a, &b], &mut ctx).unwrap_err().to_string();
        assert!(
            err.contains("step b failed") && !err.contains("0123456789abcdef"),
            "{err}"
        );
        let status = std::fs::read_to_string(ctx.paths.status()).unwrap();
        assert!(
            status.contains("\"failed_step\": \"b\"") && !status.contains("0123456789abcdef"),
            "{status}"
        );
        let status = execute(&[&a, &b], &mut ctx).unwrap();
        assert_eq!((a_runs.get(), b_runs.get()), (1, 2));
        assert_eq!(status.result, "success");
        assert_eq!(status.steps[0].outcome, "skipped");
    }
}
