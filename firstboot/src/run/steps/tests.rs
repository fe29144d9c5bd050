//! Each step against a scratch root (no systemd, no containerd, no network): what it does with
//! the user-data it is given, and that it changes nothing when there is nothing to do.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::redact::Redactor;
use crate::run::state::Paths;
use crate::run::{Context, Options};

/// A run context for a scratch root whose fetched user-data is `user_data`.
fn context(root: &Path, user_data: &str) -> Context {
    let paths = Paths::new(root);
    let fetched = paths.fetched();
    std::fs::create_dir_all(&fetched).unwrap();
    std::fs::write(fetched.join("user-data"), user_data).unwrap();
    std::fs::write(fetched.join("metadata.json"), "{}").unwrap();
    Context {
        options: Options {
            root: root.to_owned(),
            sys_root: root.to_owned(),
            datasource: None,
            metadata_url: None,
            timeout: Duration::from_secs(1),
            kubeadm: root.join("no-kubeadm"),
            join_timeout: Duration::from_secs(1),
            containerd_address: root.join("containerd.sock"),
            limits: Default::default(),
        },
        paths,
        redact: Redactor::default(),
        plan: None,
        early_import: None,
    }
}

const WRITES_A_FILE: &str = "#cloud-config\nwrite_files:\n- path: /etc/motd\n  content: hello\n";

#[test]
fn the_plan_is_compiled_once_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = context(dir.path(), WRITES_A_FILE);
    let first = plan(&mut ctx).unwrap();
    std::fs::remove_file(ctx.paths.fetched().join("user-data")).unwrap();
    let second = plan(&mut ctx).unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(first.nodes.len(), 1);
}

#[test]
fn fetch_saves_the_nocloud_seed() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("var/lib/cloud/seed/nocloud");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(seed.join("meta-data"), "instance-id: i-1\n").unwrap();
    std::fs::write(seed.join("user-data"), WRITES_A_FILE).unwrap();
    let mut ctx = context(dir.path(), "");
    ctx.options.datasource = Some("nocloud".into());
    Fetch.run(&mut ctx).unwrap();
    let saved = std::fs::read_to_string(ctx.paths.fetched().join("user-data")).unwrap();
    assert_eq!(saved, WRITES_A_FILE);
}

#[test]
fn configure_writes_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = context(dir.path(), WRITES_A_FILE);
    Configure.run(&mut ctx).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/motd")).unwrap(),
        "hello"
    );
}

#[test]
fn configure_refuses_a_bad_node_config_before_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let user_data = format!(
        "{WRITES_A_FILE}- path: /etc/kiln/node.toml\n  content: |\n    role = \"nonsense\"\n"
    );
    let mut ctx = context(dir.path(), &user_data);
    let err = format!("{:#}", Configure.run(&mut ctx).unwrap_err());
    assert!(err.contains("checking the node config"), "{err}");
    assert!(!dir.path().join("etc/motd").exists());
}

#[test]
fn runtime_leaves_an_image_without_containerd_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = context(dir.path(), WRITES_A_FILE);
    Runtime.run(&mut ctx).unwrap();
    assert!(!dir.path().join("etc/containerd").exists());
}

#[test]
fn kubeadm_and_post_init_do_nothing_without_a_node_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = context(dir.path(), WRITES_A_FILE);
    Kubeadm.run(&mut ctx).unwrap();
    PostInit.run(&mut ctx).unwrap();
    assert!(!dir.path().join("etc/kiln/kubeadm.yaml").exists());
    assert!(!dir.path().join(SENTINEL.trim_start_matches('/')).exists());
}

#[test]
fn commands_with_none_to_run_succeed_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = context(dir.path(), WRITES_A_FILE);
    Commands.run(&mut ctx).unwrap();
    assert!(
        !dir.path().join("etc/motd").exists(),
        "files are configure's"
    );
}

#[test]
fn ports_are_added_to_endpoints_without_one() {
    assert_eq!(with_port("cp.example"), "cp.example:6443");
    assert_eq!(with_port("10.0.0.1:7443"), "10.0.0.1:7443");
    assert_eq!(with_port("[fd00::1]"), "[fd00::1]:6443");
    assert_eq!(with_port("[fd00::1]:443"), "[fd00::1]:443");
}

#[test]
fn the_pause_image_moves_to_the_kubeadm_configs_repository() {
    assert_eq!(
        in_repository("registry.k8s.io/pause:3.10", "mirror.example/k8s/"),
        "mirror.example/k8s/pause:3.10"
    );
    let yaml = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nimageRepository: mirror.example/k8s\n";
    assert_eq!(
        kubeadm_config::image_repository(yaml).as_deref(),
        Some("mirror.example/k8s")
    );
    assert_eq!(
        kubeadm_config::image_repository("kind: JoinConfiguration\n"),
        None
    );
}

#[test]
fn an_unchanged_file_is_not_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etc/containerd/config.toml");
    assert!(write_if_changed(&path, "a").unwrap());
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert!(!write_if_changed(&path, "a").unwrap());
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
    assert!(write_if_changed(&path, "b").unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "b");
}
