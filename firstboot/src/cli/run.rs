//! `kiln-firstboot run` and `kiln-firstboot status`: the boot-time run and its report.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use kiln_firstboot::redact::Redactor;
use kiln_firstboot::run::state::Paths;
use kiln_firstboot::run::status::Status;
use kiln_firstboot::run::{execute, steps, Context, Options};

use super::limits::LimitArgs;

/// Provisions the node once, unattended: fetch user-data from the datasource, configure the node
/// from it (files, users, units; bootcmd first), run the preflight checks (fixing ip_forward and
/// kernel modules), prepare containerd (config, restart, CRI readiness, baked images), run
/// `kubeadm init|join` from kiln's node config (/etc/kiln/node.toml; joins
/// wait for the control plane and are retried with `kubeadm reset -f`), then the user-data's
/// commands (runcmd, scripts: with Cluster API bootstrap data, `kubeadm init|join`). Completed steps are recorded in /var/lib/kiln/state.json, so a
/// run after a crash resumes at the first unfinished step; /var/lib/kiln/status.json says what
/// happened. Prints one result line; exits non-zero on failure.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The node's root directory.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Where /proc, /sys and /dev are read (tests use a fake tree).
    #[arg(long, value_name = "DIR", default_value = "/")]
    sys_root: PathBuf,
    /// Use this datasource instead of searching (see `kiln-firstboot fetch --help`).
    #[arg(long, value_name = "NAME")]
    datasource: Option<String>,
    /// Replaces http://169.254.169.254 (tests, proxies).
    #[arg(long, value_name = "URL")]
    metadata_url: Option<String>,
    /// Seconds for fetching user-data and remote resources, retries included.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    timeout: u64,
    /// The kubeadm binary to run.
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/kubeadm")]
    kubeadm: PathBuf,
    /// Seconds a joining node waits for its control plane (TCP, then /readyz).
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    join_timeout: u64,
    /// containerd's socket.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/run/containerd/containerd.sock"
    )]
    containerd_address: PathBuf,
    #[command(flatten)]
    limits: LimitArgs,
}

impl RunArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let paths = Paths::new(&self.root);
        let mut ctx = Context {
            options: Options {
                root: self.root,
                sys_root: self.sys_root,
                datasource: self.datasource,
                metadata_url: self.metadata_url,
                timeout: Duration::from_secs(self.timeout),
                kubeadm: self.kubeadm,
                join_timeout: Duration::from_secs(self.join_timeout),
                containerd_address: self.containerd_address,
                limits: self.limits.limits(),
            },
            paths,
            redact: Redactor::default(),
            plan: None,
            early_import: None,
        };
        ctx.early_import = steps::early_import(&ctx)?;
        match execute(&steps::all(), &mut ctx) {
            Ok(status) => {
                println!(
                    "kiln-firstboot: node provisioned ({} steps)",
                    status.steps.len()
                );
                Ok(())
            }
            Err(err) => {
                println!("kiln-firstboot: FAILED: {err}");
                Err(err)
            }
        }
    }
}

/// Prints /var/lib/kiln/status.json: each step's outcome and duration, the result, the failed
/// step and why, product_uuid and MACs.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The node's root directory.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
}

impl StatusArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let status = Status::load(&Paths::new(&self.root).status())?;
        println!("result: {}", status.result);
        if let (Some(step), Some(error)) = (&status.failed_step, &status.error) {
            println!("failed step: {step}: {error}");
        }
        for s in &status.steps {
            println!("  {:<12} {:<8} {:.3}s", s.name, s.outcome, s.seconds);
        }
        println!(
            "product_uuid: {}",
            status.product_uuid.as_deref().unwrap_or("unknown")
        );
        println!("MACs: {}", status.macs.join(" "));
        Ok(())
    }
}
