//! The steps of the boot-time run, in order: fetch the user-data, configure the node from it
//! (files, users, units; bootcmd first), preflight (with fixes), then the user-data's commands
//! (runcmd and scripts: with Cluster API bootstrap data this is `kubeadm init|join`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::status::Status;
use super::{Context, Step};
use crate::apply::{self, apply, run_commands, Options as ApplyOptions, Root};
use crate::datasource::http::{Http, HttpConfig};
use crate::datasource::{choose_and_fetch, save, Env};
use crate::node::join_service;
use crate::node::kubeadm::{self, Invocation};
use crate::node::kubeadm_config;
use crate::node::kubeadm_config::MAX_FILE;
use crate::node::kubeadm_config::{resolve, Files, Rendered, CAPI_INIT_PATH, CAPI_JOIN_PATH};
use crate::node::preflight::{self, checks, fix, Host, Role, Table};
use crate::node::{cluster, containerd, endpoint, images, store};
use crate::plan::{Phase, Plan};
use crate::userdata::remote::HttpFetcher;
use crate::userdata::Inputs;
use kiln_core::inroot::{InRoot, Last};
use kiln_core::nodeconfig::{NodeConfig, Role as NodeRole, NODE_CONFIG_PATH};

/// Where the rendered kubeadm config is written on the node.
const KUBEADM_CONFIG: &str = "/etc/kiln/kubeadm.yaml";
/// The Cluster API success sentinel, written by kiln too.
const SENTINEL: &str = "/run/cluster-api/bootstrap-success.complete";
/// The admin kubeconfig `kubeadm init` writes.
const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
/// How long post-init waits for the node to be Ready.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the run waits for containerd to come up (its socket, its CRI plugin).
const CONTAINERD_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times a join is tried (with `kubeadm reset -f` in between).
const JOIN_ATTEMPTS: u32 = 5;

/// The steps, in order.
pub fn all() -> [&'static dyn Step; 8] {
    [
        &Fetch, &Configure, &Preflight, &Runtime, &Network, &Kubeadm, &PostInit, &Commands,
    ]
}

/// Whether the run provisions the machine it runs on (root `/`), not a scratch root.
fn on_node(ctx: &Context) -> bool {
    ctx.options.root == Path::new("/")
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
        let env = datasource_env(ctx);
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
        let plan = plan(ctx)?;
        // A bad node config (missing role, join without token or CA pin, bad CIDRs, a field
        // the baked kubeadm does not know) must stop the run before anything on the node changes.
        target(ctx, &plan).context("checking the node config")?;
        let root = Root::new(&ctx.options.root)?;
        let options = ApplyOptions {
            commands: apply::Commands::Boot,
            redact: ctx.redact.clone(),
        };
        apply(&plan, &root, &options).context("applying user-data")?;
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
        let plan = plan(ctx)?;
        let role = role(target(ctx, &plan)?.as_ref());
        let host = Host {
            root: ctx.options.sys_root.clone(),
            cri_socket: None,
        };
        if on_node(ctx) && has_containerd(&ctx.options.root) {
            // kiln-firstboot is not ordered after containerd: the CRI check needs its socket.
            containerd::wait_socket(&ctx.options.containerd_address, CONTAINERD_TIMEOUT)?;
        }
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

/// containerd for kubelet, where the image has it: kiln's config (systemd cgroups, kubeadm's pause
/// image) unless the user-data brings its own, a restart under systemd only when its config
/// changed (a disk image carries it from the build), CRI readiness, then the image store checked
/// against the baked manifest and completed from the baked archives.
pub struct Runtime;

impl Step for Runtime {
    fn name(&self) -> &'static str {
        "runtime"
    }

    fn run(&self, ctx: &mut Context) -> anyhow::Result<()> {
        let root = ctx.options.root.clone();
        if !has_containerd(&root) {
            tracing::info!("no containerd in the image: runtime left as it is");
            return Ok(());
        }
        // Before containerd may restart below (an import under way would be cut off).
        let early = ctx.early_import.take().and_then(store::Early::finish);
        let plan = plan(ctx)?;
        let own_config = plan
            .nodes
            .iter()
            .any(|n| n.path() == Path::new(containerd::CONFIG_PATH));
        let (sandbox_image, config_changed) = if own_config {
            let text = read_in(&root, containerd::CONFIG_PATH, MAX_FILE)
                .ok()
                .flatten();
            let image =
                text.and_then(|b| containerd::sandbox_image_of(&String::from_utf8_lossy(&b)));
            (image, true)
        } else {
            let pause = sandbox_image(ctx, &plan)?;
            let changed = write_containerd_config(&root, &pause)?;
            (Some(pause), changed)
        };
        let dropin = root.join(containerd::SERVICE_DROPIN_PATH.trim_start_matches('/'));
        let dropin_changed = write_if_changed(&dropin, containerd::SERVICE_DROPIN)?;
        let restarted = config_changed || dropin_changed;
        if restarted {
            restart_containerd(&root, dropin_changed)?;
        } else {
            tracing::info!("containerd's config is as baked: containerd not restarted");
        }
        let mut early = early.unwrap_or_default();
        if restarted || early.stored.is_none() {
            // The early check answered before the restart, or did not answer.
            early.stored = None;
            containerd::wait_ready(&ctx.options.containerd_address, CONTAINERD_TIMEOUT)?;
        }
        load_images(ctx, sandbox_image.as_deref(), early)
    }
}

/// Starts checking containerd's store and importing the baked images it lacks, in the
/// background, when this run will reach the runtime step (see [`store::Early`]): overlaps the
/// check (a disk image's pre-filled store) or the imports (a sysext or PXE node) with fetch,
/// configure and preflight.
pub fn early_import(ctx: &Context) -> anyhow::Result<Option<store::Early>> {
    let state = super::state::State::load(&ctx.paths.state())?;
    if state.done(Runtime.name()) || !has_containerd(&ctx.options.root) {
        return Ok(None);
    }
    Ok(Some(store::Early::start(
        images::image_dir(&ctx.options.root),
        ctx.options.containerd_address.clone(),
        CONTAINERD_TIMEOUT,
    )))
}

/// The baked images in containerd's store: checked against the manifest's digests and completed
/// ([`store::ensure`]; `early`: what [`store::Early`] checked and imported), or, for an image
/// without a manifest, every archive imported.
fn load_images(
    ctx: &Context,
    sandbox_image: Option<&str>,
    early: store::Checked,
) -> anyhow::Result<()> {
    let dir = images::image_dir(&ctx.options.root);
    let address = &ctx.options.containerd_address;
    match store::baked(&dir)? {
        Some(baked) if !baked.is_empty() => {
            let ensured = store::ensure(&dir, address, &baked, sandbox_image, early)?;
            tracing::info!(
                verified = ensured.verified,
                imported = ensured.imported.len(),
                "container runtime ready"
            );
        }
        _ => {
            let imported = images::import_all(&dir, address, sandbox_image)?;
            tracing::info!(archives = imported.len(), "container runtime ready");
        }
    }
    Ok(())
}

/// Whether the image has a containerd to configure.
fn has_containerd(root: &Path) -> bool {
    [
        "usr/bin/containerd",
        "usr/local/bin/containerd",
        "opt/bin/containerd",
    ]
    .iter()
    .any(|p| root.join(p).exists())
}

/// containerd's sandbox image: the image's own pause image first (kiln build baked it for its
/// kubeadm), then the node's kubeadm (or kiln's table) for the kubeadm the node config targets;
/// in the repository the kubeadm config asks for (`imageRepository`), as kubeadm expects it.
fn sandbox_image(ctx: &Context, plan: &Plan) -> anyhow::Result<String> {
    let baked = images::baked_sandbox_image(&ctx.options.root);
    let target = target(ctx, plan)?;
    let repository = target
        .as_ref()
        .and_then(|t| kubeadm_config::image_repository(t.yaml.expose()));
    let pause = match (baked, target) {
        (Some(baked), _) => baked,
        (None, Some(t)) => containerd::kubeadm_pause_image(&ctx.options.kubeadm, &t.kubeadm)
            .with_context(|| {
                format!(
                    "choosing containerd's sandbox image for kubeadm {} (or ship your own {} in \
                     the user-data)",
                    t.kubeadm,
                    containerd::CONFIG_PATH
                )
            })?,
        (None, None) => "registry.k8s.io/pause:3.10".into(),
    };
    Ok(match repository {
        Some(repository) => in_repository(&pause, &repository),
        None => pause,
    })
}

/// `image`'s last path element and tag in `repository` (kubeadm names the pause image
/// `<imageRepository>/pause:<tag>`).
fn in_repository(image: &str, repository: &str) -> String {
    let tail = image.rsplit('/').next().unwrap_or(image);
    format!("{}/{tail}", repository.trim_end_matches('/'))
}

/// kiln's containerd config with `pause` as sandbox image, written only when it differs from
/// the one in place (a disk image carries it from the build); the image's CNI plugins seeded
/// into the writable plugin directory it names. Whether the config changed.
fn write_containerd_config(root: &Path, pause: &str) -> anyhow::Result<bool> {
    let copied = containerd::seed_cni_bin_dir(root)?;
    if copied > 0 {
        tracing::info!(
            plugins = copied,
            dir = containerd::CNI_BIN_DIR,
            "seeded CNI plugins"
        );
    }
    let text = containerd::render(&containerd::Settings::for_node(pause));
    let path = root.join(containerd::CONFIG_PATH.trim_start_matches('/'));
    let changed = write_if_changed(&path, &text)?;
    if changed {
        tracing::info!(sandbox_image = %pause, "wrote containerd config");
    }
    Ok(changed)
}

/// Writes `text` to `path` (0644, atomically) unless it holds exactly that; whether it wrote.
fn write_if_changed(path: &Path, text: &str) -> anyhow::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(false);
    }
    kiln_core::fsutil::write_atomic(path, text.as_bytes(), 0o644)?;
    Ok(true)
}

/// On a running node (root `/` under systemd): restart containerd so it reads its new config
/// (`daemon-reload` first when its drop-in changed).
fn restart_containerd(root: &Path, reload: bool) -> anyhow::Result<()> {
    if root != Path::new("/") || !Path::new("/run/systemd/system").exists() {
        return Ok(());
    }
    let reload: &[&[&str]] = if reload { &[&["daemon-reload"]] } else { &[] };
    for args in reload.iter().chain([&["restart", "containerd"][..]].iter()) {
        let mut cmd = std::process::Command::new("systemctl");
        cmd.args(*args);
        kiln_core::command::Run::new(&mut cmd, format!("systemctl {}", args.join(" "))).run()?;
    }
    Ok(())
}

/// The network before kubeadm and the user-data's commands: kiln-firstboot.service is not
/// ordered after network-online.target, so that the steps before this one run while the network
/// comes up; waits for it here (at once when a remote datasource already did).
pub struct Network;

impl Step for Network {
    fn name(&self) -> &'static str {
        "network"
    }

    fn run(&self, ctx: &mut Context) -> anyhow::Result<()> {
        if on_node(ctx) {
            crate::datasource::online::wait();
        }
        Ok(())
    }
}

/// `kubeadm init|join` from kiln's node config: the rendered config is written 0600, a joining
/// node waits for its control plane, kubeadm runs with bounded retries (joins), and the Cluster
/// API sentinel is written. Cluster API data runs kubeadm itself from runcmd (`commands`).
pub struct Kubeadm;

impl Step for Kubeadm {
    fn name(&self) -> &'static str {
        "kubeadm"
    }

    fn run(&self, ctx: &mut Context) -> anyhow::Result<()> {
        let plan = plan(ctx)?;
        let Some(rendered) = target(ctx, &plan)? else {
            tracing::info!("no node config in the user-data: kubeadm is not run");
            return Ok(());
        };
        let Some(node) = &rendered.node else {
            if rendered.converted {
                write_converted(ctx, &rendered)?;
            }
            tracing::info!(origin = %rendered.origin.display(), "Cluster API data: its runcmd runs kubeadm");
            return Ok(());
        };
        for warning in &rendered.warnings {
            tracing::warn!("{warning}");
        }
        let (node, config) = write_kubeadm_config(ctx, node, &rendered)?;
        let node = &node;
        if node.role.joins() {
            let endpoint = node
                .control_plane_endpoint
                .as_deref()
                .context("control_plane_endpoint: a joining node needs it")?;
            endpoint::wait_ready(
                &with_port(endpoint),
                Instant::now() + ctx.options.join_timeout,
            )?;
        }
        let mut args = vec![
            if node.role.joins() { "join" } else { "init" }.to_owned(),
            "--config".into(),
            config.display().to_string(),
        ];
        if node.role == NodeRole::Init && node.certificate_key.is_some() {
            args.push("--upload-certs".into());
        }
        let invocation = Invocation {
            kubeadm: ctx.options.kubeadm.clone(),
            args,
            attempts: if node.role.joins() { JOIN_ATTEMPTS } else { 1 },
            backoff: Duration::from_secs(5),
        };
        kubeadm::run(&invocation, &ctx.redact)?;
        Ok(())
    }
}

/// Writes kubeadm's config for `node` (0600; its tokens and certificate key registered with
/// the redactor first): the rendered one, or rendered again with the join service's answer.
/// The node as completed, and the config's path.
fn write_kubeadm_config(
    ctx: &mut Context,
    node: &NodeConfig,
    rendered: &Rendered,
) -> anyhow::Result<(NodeConfig, std::path::PathBuf)> {
    let (node, yaml) = match &node.join_service {
        Some(service) => {
            let node = with_service_answer(ctx, node.clone(), service)?;
            let yaml = kubeadm_config::render_node(&node, &rendered.kubeadm)?;
            (node, yaml)
        }
        None => (node.clone(), rendered.yaml.clone()),
    };
    let yaml = yaml.expose();
    ctx.redact.add_tokens_in(yaml);
    ctx.redact.add_certificate_keys_in(yaml);
    let config = ctx
        .options
        .root
        .join(KUBEADM_CONFIG.trim_start_matches('/'));
    kiln_core::fsutil::write_atomic(&config, yaml.as_bytes(), 0o600)?;
    Ok((node, config))
}

/// `node` completed with the join service's answer: its short-lived token (registered with the
/// redactor at once), the control plane endpoint unless the config names one, and the labels and
/// taints of the service's rule. The identity comes from the platform the fetch step found.
fn with_service_answer(
    ctx: &mut Context,
    mut node: NodeConfig,
    service: &str,
) -> anyhow::Result<NodeConfig> {
    let metadata: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ctx.paths.fetched().join("metadata.json"))
            .context("reading metadata.json")?,
    )?;
    let platform = metadata["platform"].as_str().unwrap_or_default().to_owned();
    let env = datasource_env(ctx);
    let audience = service.trim_end_matches('/');
    let prove = |nonce: Option<&str>| {
        crate::datasource::identity(&platform, &env, audience, nonce).with_context(|| {
            format!("join_service: getting this instance's signed identity from {platform}")
        })
    };
    let prover = join_service::Prover {
        nonce: crate::datasource::identity_needs_nonce(&platform),
        prove: &prove,
    };
    let saved = ctx.paths.join_answer();
    let answer = match join_service::saved(&saved, time::OffsetDateTime::now_utc()) {
        Some(answer) => answer,
        None => {
            let deadline = Instant::now() + ctx.options.join_timeout;
            let answer = join_service::request(service, &node.ca_cert_hashes, &prover, deadline)?;
            kiln_core::fsutil::write_atomic(
                &saved,
                serde_json::to_string(&answer)?.as_bytes(),
                0o600,
            )?;
            answer
        }
    };
    ctx.redact.add(answer.token.expose());
    let token = kiln_core::token::BootstrapToken::parse(answer.token.expose())
        .context("join service answered a malformed token")?;
    tracing::info!(service, token_id = token.id(), expires = %answer.expires, "join service issued a token");
    node.token = Some(token);
    node.control_plane_endpoint
        .get_or_insert(answer.control_plane_endpoint);
    for (k, v) in answer.labels {
        node.labels.entry(k).or_insert(v);
    }
    node.taints.extend(answer.taints);
    Ok(node)
}

/// Cluster API data converted from v1beta3 (kubeadm >= 1.37 no longer reads it) replaces the
/// file its runcmd gives kubeadm, 0600 like kiln's own kubeadm config.
fn write_converted(ctx: &mut Context, rendered: &Rendered) -> anyhow::Result<()> {
    let yaml = rendered.yaml.expose();
    ctx.redact.add_tokens_in(yaml);
    ctx.redact.add_certificate_keys_in(yaml);
    let origin = &rendered.origin;
    let path = ctx
        .options
        .root
        .join(origin.strip_prefix("/").unwrap_or(origin));
    kiln_core::fsutil::write_atomic(&path, yaml.as_bytes(), 0o600)
        .with_context(|| format!("writing the v1beta4 conversion of {}", origin.display()))?;
    tracing::warn!(
        path = %origin.display(),
        kubeadm = %rendered.kubeadm,
        "rewrote Cluster API data in kubeadm.k8s.io/v1beta4 for kubeadm"
    );
    Ok(())
}

/// After `kubeadm init` from a node config: the admin kubeconfig copied where configured, the CNI
/// manifest applied through the API server (admin.conf) and a bounded wait for the node to be
/// Ready; then, for every node config, the Cluster API success sentinel.
pub struct PostInit;

impl Step for PostInit {
    fn name(&self) -> &'static str {
        "post-init"
    }

    fn run(&self, ctx: &mut Context) -> anyhow::Result<()> {
        let plan = plan(ctx)?;
        let Some(node) = target(ctx, &plan)?.and_then(|t| t.node) else {
            return Ok(());
        };
        if let (NodeRole::Init, Some(dest)) = (node.role, &node.admin_kubeconfig) {
            let bytes = read_in(&ctx.options.root, ADMIN_CONF, MAX_FILE)
                .with_context(|| format!("admin_kubeconfig: reading {ADMIN_CONF}"))?
                .with_context(|| {
                    format!("admin_kubeconfig: {ADMIN_CONF} missing: kubeadm init did not write it")
                })?;
            let path = ctx
                .options
                .root
                .join(dest.strip_prefix("/").unwrap_or(dest));
            kiln_core::fsutil::write_atomic(&path, &bytes, 0o600)?;
            tracing::info!(path = %dest.display(), "wrote the admin kubeconfig");
        }
        if let (NodeRole::Init, Some(manifest)) = (node.role, &node.cni_manifest) {
            let text = read_manifest(ctx, manifest)?;
            let kubeconfig = ctx.options.root.join(ADMIN_CONF.trim_start_matches('/'));
            anyhow::ensure!(
                kubeconfig.exists(),
                "{ADMIN_CONF} is missing: kubeadm init did not write it, cannot apply cni_manifest"
            );
            let name = node_name(ctx, node.node_name.as_deref());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let client = cluster::client_from_kubeconfig(&kubeconfig).await?;
                let applied = cluster::apply_manifest(&client, &text).await?;
                tracing::info!(objects = applied, "applied the CNI manifest");
                cluster::wait_ready(&client, &name, Duration::from_secs(5), READY_TIMEOUT).await
            })?;
        }
        let sentinel = ctx.options.root.join(SENTINEL.trim_start_matches('/'));
        kiln_core::fsutil::write_atomic(&sentinel, b"success\n", 0o644)?;
        Ok(())
    }
}

/// The largest CNI manifest read from the root.
const MAX_MANIFEST: u64 = 16 << 20;

/// The node file `path` read inside `root` (kiln-core's [`InRoot`]: links stay in the root,
/// only a regular file of at most `max` bytes), `None` if it is missing.
fn read_in(root: &Path, path: &str, max: u64) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(InRoot::open(root)?.read(Path::new(path), Last::Follow, max)?)
}

/// The CNI manifest from a path inside the root or an http(s) URL.
fn read_manifest(ctx: &Context, manifest: &str) -> anyhow::Result<String> {
    use crate::userdata::resource::Fetcher;
    let bytes = if manifest.starts_with("http://") || manifest.starts_with("https://") {
        HttpFetcher::new(http(ctx)).fetch(manifest, "cni_manifest")?
    } else {
        read_in(&ctx.options.root, manifest, MAX_MANIFEST)
            .with_context(|| format!("cni_manifest: reading {manifest}"))?
            .with_context(|| format!("cni_manifest: {manifest} is missing"))?
    };
    String::from_utf8(bytes).context("cni_manifest: not UTF-8 text")
}

/// The node's name as kubeadm registers it: the configured one, else the lower-cased host name.
fn node_name(ctx: &Context, configured: Option<&str>) -> String {
    configured.map(str::to_owned).unwrap_or_else(|| {
        read_in(&ctx.options.sys_root, "/proc/sys/kernel/hostname", MAX_FILE)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).trim().to_lowercase())
            .unwrap_or_default()
    })
}

/// `host:port`, adding the API server's default port 6443 when the endpoint has none.
fn with_port(endpoint: &str) -> String {
    let has_port = match endpoint.rsplit_once(':') {
        Some((host, port)) => {
            !host.ends_with(':')
                && port.parse::<u16>().is_ok()
                && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    if has_port {
        endpoint.to_owned()
    } else {
        format!("{endpoint}:6443")
    }
}

/// runcmd and user-data scripts, in order.
pub struct Commands;

impl Step for Commands {
    fn name(&self) -> &'static str {
        "commands"
    }

    fn run(&self, ctx: &mut Context) -> anyhow::Result<()> {
        let plan = plan(ctx)?;
        // Files, users and units were applied by `configure`, bootcmd before them.
        let root = Root::new(&ctx.options.root)?;
        run_commands(&plan, &root, &[Phase::Run, Phase::Script], &ctx.redact)
            .context("running user-data commands")?;
        Ok(())
    }
}

/// The run's user-data plan: compiled on first use and kept in the run's context (in memory
/// only: it holds secrets that are never written to disk).
fn plan(ctx: &mut Context) -> anyhow::Result<std::sync::Arc<Plan>> {
    if let Some(plan) = &ctx.plan {
        return Ok(plan.clone());
    }
    let plan = std::sync::Arc::new(compile(ctx)?);
    ctx.plan = Some(plan.clone());
    Ok(plan)
}

/// Compiles the saved user-data, registering the secrets it carries with the redactor.
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
    let root_has = |p: &str| root.has(Path::new(p));
    let fetcher = HttpFetcher::new(http(ctx));
    let inputs = Inputs {
        metadata: &metadata,
        fetcher: &fetcher,
        root_has: &root_has,
        limits: ctx.options.limits,
    };
    let plan = crate::userdata::compile(&user_data, &inputs).context("user-data rejected")?;
    ctx.redact.add_from_plan(&plan);
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }
    Ok(plan)
}

/// The node's kubeadm config (kiln node config or Cluster API data), if the user-data or the
/// root has one.
fn target(ctx: &Context, plan: &Plan) -> anyhow::Result<Option<Rendered>> {
    let files = Files {
        plan: Some(plan),
        root: &ctx.options.root,
    };
    let present = [NODE_CONFIG_PATH, CAPI_INIT_PATH, CAPI_JOIN_PATH]
        .iter()
        .map(|p| files.read_text(Path::new(p)))
        .collect::<anyhow::Result<Vec<_>>>()?
        .iter()
        .any(Option::is_some);
    if !present {
        return Ok(None);
    }
    Ok(Some(resolve(&files, None, None)?))
}

/// Control plane for init and control-plane joins, else worker.
fn role(target: Option<&Rendered>) -> Role {
    match target.map(|t| t.role) {
        Some(NodeRole::Init | NodeRole::ControlPlane) => Role::ControlPlane,
        _ => Role::Worker,
    }
}

/// What the datasources need: the sysfs root, the HTTP client, the metadata URL override and
/// whether to wait for the network first (on a node only).
fn datasource_env(ctx: &Context) -> Env {
    Env {
        sys_root: ctx.options.sys_root.clone(),
        http: http(ctx),
        metadata_url: ctx.options.metadata_url.clone(),
        wait_online: on_node(ctx),
    }
}

fn http(ctx: &Context) -> Http {
    Http::new(HttpConfig {
        deadline: Instant::now() + ctx.options.timeout,
        request_timeout: std::time::Duration::from_secs(10),
        max_body: 16 << 20,
    })
}

#[cfg(test)]
mod tests;
