//! `kiln-firstboot apply`: apply user-data to a root directory, all or nothing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use kiln_firstboot::apply::{apply, Commands, Options, Root};
use kiln_firstboot::datasource::http::{Http, HttpConfig};
use kiln_firstboot::plan::Plan;
use kiln_firstboot::userdata::remote::HttpFetcher;
use kiln_firstboot::userdata::Inputs;

use super::limits::LimitArgs;

/// Reads user-data (Ignition 3.x, #cloud-config, jinja templates, MIME multipart, gzip, scripts),
/// compiles it into a plan, checks the plan against the root, and only then writes: files
/// atomically with their modes and owners, users and groups with the root's own useradd and
/// groupadd, systemd units and presets. Commands (bootcmd, runcmd, scripts) are recorded but not
/// run unless --run-commands is given. Unsupported cloud-config keys are warnings; unsupported
/// Ignition sections are errors.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Directory to apply to (`/` on a node).
    #[arg(long, value_name = "DIR")]
    root: PathBuf,
    /// The user-data file; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    user_data: PathBuf,
    /// Instance metadata JSON (as `kiln-firstboot fetch` writes it) for jinja templates.
    #[arg(long, value_name = "FILE")]
    metadata: Option<PathBuf>,
    /// Print the plan (paths, modes, sizes, names; never contents) and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also run bootcmd, runcmd and user-data scripts (chrooted into --root unless it is /).
    #[arg(long)]
    run_commands: bool,
    /// Total seconds for fetching remote (http/https) resources, retries included.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    timeout: u64,
    #[command(flatten)]
    limits: LimitArgs,
}

impl ApplyArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let user_data = read_input(&self.user_data)?;
        let metadata = read_metadata(self.metadata.as_deref())?;
        let root = Root::new(&self.root)?;
        let plan = self.compile(&user_data, &metadata, &root)?;
        for warning in &plan.warnings {
            tracing::warn!("{warning}");
        }
        if self.dry_run {
            print!("{plan}");
            return Ok(());
        }
        apply(&plan, &root, &self.options(&user_data, &plan))
            .with_context(|| format!("applying user-data to {}", self.root.display()))?;
        tracing::info!(
            root = %self.root.display(),
            nodes = plan.nodes.len(),
            units = plan.units.len(),
            users = plan.users.len(),
            commands = plan.commands.len(),
            "applied user-data"
        );
        Ok(())
    }

    /// The plan for `user_data`, remote resources fetched within --timeout and templates
    /// rendered with `metadata`; nothing is written yet.
    fn compile(
        &self,
        user_data: &[u8],
        metadata: &serde_json::Value,
        root: &Root,
    ) -> anyhow::Result<Plan> {
        let root_has = |p: &str| root.has(Path::new(p));
        let fetcher = HttpFetcher::new(Http::new(HttpConfig {
            deadline: Instant::now() + Duration::from_secs(self.timeout),
            request_timeout: Duration::from_secs(10),
            max_body: kiln_firstboot::userdata::resource::MAX_RESOURCE_BYTES,
        }));
        let inputs = Inputs {
            metadata,
            fetcher: &fetcher,
            root_has: &root_has,
            limits: self.limits.limits(),
        };
        kiln_firstboot::userdata::compile(user_data, &inputs).with_context(|| {
            format!(
                "{}: user-data rejected, nothing was written",
                self.user_data.display()
            )
        })
    }

    /// Whether commands run, and the secrets (tokens in the user-data and the plan) that
    /// their output must not show.
    fn options(&self, user_data: &[u8], plan: &Plan) -> Options {
        let mut redact = kiln_firstboot::redact::Redactor::default();
        redact.add_tokens_in(&String::from_utf8_lossy(user_data));
        redact.add_from_plan(plan);
        Options {
            commands: if self.run_commands {
                Commands::All
            } else {
                Commands::None
            },
            redact,
        }
    }
}

/// The instance metadata JSON at `path`, or an empty object without one.
fn read_metadata(path: Option<&Path>) -> anyhow::Result<serde_json::Value> {
    let Some(path) = path else {
        return Ok(serde_json::json!({}));
    };
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text)
        .with_context(|| format!("{}: invalid metadata JSON", path.display()))
}

fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading user-data from stdin")?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}
