//! The steps of the boot-time run, in order: fetch the user-data, configure the node from it
//! (files, users, units; bootcmd first), preflight (with fixes), then the user-data's commands
//! (runcmd and scripts: with Cluster API bootstrap data this is `kubeadm init|join`).

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;

use super::status::Status;
use super::{Context, Step};
use crate::apply::{apply, Options as ApplyOptions, Root};
use crate::datasource::http::{Http, HttpConfig};
use crate::datasource::{choose_and_fetch, save, Env};
use crate::node::preflight::{self, checks, fix, Host, Role, Table};
use crate::plan::{Node, Phase, Plan};
use crate::userdata::detect::Inputs;
use crate::userdata::remote::HttpFetcher;

/// The steps, in order.
pub fn all() -> [&'static dyn Step; 4] {
    [&Fetch, &Configure, &Preflight, &Commands]
}

/// A status carrying the machine identity (product_uuid, MACs).
pub fn identity(sys_root: &Path) -> Status {
    let (product_uuid, macs) = checks::machine_identity(sys_root);
    Status {
        product_uuid,
        macs,
        ..Status::default()
    }
}

/// Finds the datasource and saves user-data and metadata under /var/lib/kiln/fetched.
pub struct Fetch;

impl Step for Fetch {
    fn name(&self) -> &'static str {
        "fetch"
    }

    fn run(&self, ctx: &mut Context) -> anyhow::Result<()> {
        let env = Env {
            sys_root: ctx.options.sys_root.clone(),
            http: http(ctx),
            metadata_url: ctx.options.metadata_url.clone(),
        };
        let fetched = choose_and_fetch(&env, ctx.options.datasource.as_deref())?;
        save(&ctx.paths.fetched(), &fetched)
    }
}

/// Compiles the saved user-data and applies files, users and units; bootcmd runs first.
pub struct Configure;

impl Step for Configure {
    fn name(&self) -> &'static str {
        "configure"
    }

    fn run(&self, ctx: &mut Context) -> anyhow::Result<()> {
        let plan = compile(ctx)?;
        let root = Root::new(&ctx.options.root)?;
        let mut only_boot = plan.clone();
        only_boot.commands.retain(|c| c.phase == Phase::Boot);
        let options = ApplyOptions {
            run_commands: true,
            redact: ctx.redact.clone(),
        };
        apply(&only_boot, &root, &options).context("applying user-data")?;
        Ok(())
    }
}

/// kubeadm's checks, natively; repairs forwarding and kernel modules first.
pub struct Preflight;

impl Step for Preflight {
    fn name(&self) -> &'static str {
        "preflight"
    }

    fn run(&self, ctx: &mut Context) -> anyhow::Result<()> {
        let role = role(&compile(ctx)?);
        let host = Host {
            root: ctx.options.sys_root.clone(),
            cri_socket: None,
        };
        let found = preflight::run(&host, role);
        for done in fix::apply(&host, &found)? {
            tracing::info!("{done}");
        }
        let found = preflight::run(&host, role);
        let failed: Vec<&str> = found
            .iter()
            .filter(|c| c.failed())
            .map(|c| c.name.as_str())
            .collect();
        if !failed.is_empty() {
            anyhow::bail!("preflight failed: {}\n{}", failed.join(", "), Table(&found));
        }
        Ok(())
    }
}

/// runcmd and user-data scripts, in order.
pub struct Commands;

impl Step for Commands {
    fn name(&self) -> &'static str {
        "commands"
    }

    fn run(&self, ctx: &mut Context) -> anyhow::Result<()> {
        let mut plan = compile(ctx)?;
        plan.commands.retain(|c| c.phase != Phase::Boot);
        // Files, users and units were applied by `configure`.
        plan.nodes.clear();
        plan.units.clear();
        plan.users.clear();
        plan.groups.clear();
        plan.hostname = None;
        let root = Root::new(&ctx.options.root)?;
        let options = ApplyOptions {
            run_commands: true,
            redact: ctx.redact.clone(),
        };
        apply(&plan, &root, &options).context("running user-data commands")?;
        Ok(())
    }
}

/// Compiles the saved user-data (again: it is cheap, and the plan holds secrets that are never
/// written to disk), registering the secrets it carries with the redactor.
fn compile(ctx: &mut Context) -> anyhow::Result<Plan> {
    let dir = ctx.paths.fetched();
    let user_data = match std::fs::read(dir.join("user-data")) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).context("reading the fetched user-data"),
    };
    ctx.redact
        .add_tokens_in(&String::from_utf8_lossy(&user_data));
    let metadata: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("metadata.json")).context("reading metadata.json")?,
    )?;
    let root = Root::new(&ctx.options.root)?;
    let root_has = |p: &str| {
        root.resolve(Path::new(p), "probe")
            .is_ok_and(|h| h.exists())
    };
    let fetcher = HttpFetcher::new(http(ctx));
    let inputs = Inputs {
        metadata: &metadata,
        fetcher: &fetcher,
        root_has: &root_has,
    };
    let plan = crate::userdata::compile(&user_data, &inputs).context("user-data rejected")?;
    ctx.redact.add_from_plan(&plan);
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }
    Ok(plan)
}

/// Control plane if the user-data carries a kubeadm init config (Cluster API's
/// /run/kubeadm/kubeadm.yaml), else worker.
fn role(plan: &Plan) -> Role {
    let init = plan
        .nodes
        .iter()
        .any(|n| matches!(n, Node::File(f) if f.path == Path::new("/run/kubeadm/kubeadm.yaml")));
    if init {
        Role::ControlPlane
    } else {
        Role::Worker
    }
}

fn http(ctx: &Context) -> Http {
    Http::new(HttpConfig {
        deadline: Instant::now() + ctx.options.timeout,
        request_timeout: std::time::Duration::from_secs(10),
        max_body: 16 << 20,
    })
}
