//! cloud-config through `kiln-firstboot apply`: Cluster API bootstrap data (jinja template,
//! write_files, runcmd), the cloud-config keys kiln implements, MIME multipart, and jinja
//! rendering compared with the real cloud-init (`cloud-init devel render`).

#[path = "firstboot/mod.rs"]
mod firstboot;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use firstboot::*;

fn apply(root: &Path, user_data: &str, extra: &[&str]) -> Out {
    let ud = root.parent().unwrap().join(format!(
        "ud-{}",
        root.file_name().unwrap().to_string_lossy()
    ));
    fs::write(&ud, user_data).unwrap();
    let mut args = vec![
        "apply",
        "--root",
        root.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
    ];
    args.extend(extra);
    firstboot(&args)
}

fn new_root(tmp: &Path, name: &str) -> std::path::PathBuf {
    let root = tmp.join(name);
    seed_root(&root);
    root
}

const CAPI_INIT: &str = r#"## template: jinja
#cloud-config
write_files:
-   path: /run/kubeadm/kubeadm.yaml
    owner: root:root
    permissions: '0640'
    content: |
      ---
      apiVersion: kubeadm.k8s.io/v1beta3
      kind: InitConfiguration
      nodeRegistration:
        name: '{{ ds.meta_data.local_hostname }}'
        kubeletExtraArgs:
          cloud-provider: external
-   path: /etc/kubernetes/pki/ca.key
    owner: root:root
    permissions: '0600'
    content: |
      -----BEGIN RSA PRIVATE KEY-----
      not-a-real-key
      -----END RSA PRIVATE KEY-----
runcmd:
  - 'kubeadm init --config /run/kubeadm/kubeadm.yaml  && echo success > /run/cluster-api/bootstrap-success.complete'
"#;

#[test]
fn cluster_api_bootstrap_data_applies_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let root = new_root(tmp.path(), "root");
    let md = tmp.path().join("metadata.json");
    fs::write(&md, r#"{"platform":"nocloud","instance_id":"i-1","local_hostname":"cp-0","meta_data":{"local-hostname":"cp-0.cluster.local"}}"#).unwrap();
    let dry = apply(
        &root,
        CAPI_INIT,
        &["--metadata", md.to_str().unwrap(), "--dry-run"],
    );
    assert!(dry.ok, "{}", dry.stderr);
    assert!(
        dry.stdout
            .contains("file      /run/kubeadm/kubeadm.yaml 0640"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("command   Run runcmd[0]"),
        "{}",
        dry.stdout
    );
    assert!(
        !dry.stdout.contains("not-a-real-key") && !dry.stdout.contains("kubeadm init"),
        "dry run printed contents"
    );
    assert!(!root.join("run").exists(), "dry run wrote files");

    let out = apply(&root, CAPI_INIT, &["--metadata", md.to_str().unwrap()]);
    assert!(out.ok, "{}", out.stderr);
    let cfg = fs::read_to_string(root.join("run/kubeadm/kubeadm.yaml")).unwrap();
    assert!(cfg.contains("name: 'cp-0.cluster.local'"), "{cfg}");
    assert_eq!(
        fs::metadata(root.join("run/kubeadm/kubeadm.yaml"))
            .unwrap()
            .mode()
            & 0o7777,
        0o640
    );
    assert_eq!(
        fs::metadata(root.join("etc/kubernetes/pki/ca.key"))
            .unwrap()
            .mode()
            & 0o7777,
        0o600
    );
    assert!(
        !root
            .join("run/cluster-api/bootstrap-success.complete")
            .exists(),
        "runcmd ran without --run-commands"
    );
    for secret in ["not-a-real-key", "kubeadm init", "cp-0.cluster.local"] {
        assert!(
            !out.stderr.contains(secret),
            "log leaked {secret:?}:\n{}",
            out.stderr
        );
    }
}

#[test]
fn cloud_config_keys_follow_cloud_init() {
    let tmp = tempfile::tempdir().unwrap();
    let root = new_root(tmp.path(), "root");
    fs::write(root.join("etc/fstab"), "# existing\n").unwrap();
    let user_data = r#"#cloud-config
hostname: worker-7
fqdn: worker-7.example.com
manage_etc_hosts: true
groups:
  - admins: [root]
  - ops
users:
  - name: core
    gecos: Core User
    groups: [sudo, ops]
    shell: /bin/sh
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3 core@laptop
  - name: svc
    uid: 2500
    no_create_home: true
    system: true
write_files:
  - path: /etc/motd
    content: aGVsbG8K
    encoding: b64
  - path: /etc/gz.txt
    content: !!binary |
      H4sIAAAAAAAAA8tIzcnJBwCGphA2BQAAAA==
    encoding: gzip
  - path: /etc/append.txt
    content: "more\n"
    append: true
  - path: /opt/app/config.ini
    owner: core:ops
    permissions: '0750'
    content: "[app]\n"
    defer: true
ntp:
  enabled: true
  ntp_client: chrony
  servers: [ntp1.example.com]
  pools: [pool.example.com]
mounts:
  - [/dev/vdb, /var/lib/containerd, ext4, "defaults,noatime"]
packages: [vim]
"#;
    fs::write(root.join("etc/append.txt"), "first\n").unwrap();
    let out = apply(&root, user_data, &[]);
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stderr.contains("`packages` is not supported"),
        "{}",
        out.stderr
    );
    let read = |p: &str| fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(read("etc/hostname"), "worker-7\n");
    assert!(read("etc/hosts").starts_with("127.0.1.1 worker-7.example.com worker-7\n"));
    assert_eq!(read("etc/motd"), "hello\n");
    assert_eq!(read("etc/gz.txt"), "hello");
    assert_eq!(read("etc/append.txt"), "first\nmore\n");
    let passwd = read("etc/passwd");
    let core = passwd
        .lines()
        .find(|l| l.starts_with("core:"))
        .expect("core created");
    assert!(core.contains(":Core User:/home/core:/bin/sh"), "{core}");
    assert!(
        passwd.lines().any(|l| l.starts_with("svc:x:2500:")),
        "{passwd}"
    );
    assert!(!root.join("home/svc").exists(), "no_create_home ignored");
    let group = read("etc/group");
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("sudo:") && l.ends_with("core")),
        "{group}"
    );
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("admins:") && l.ends_with("root")),
        "{group}"
    );
    let core_uid = core.split(':').nth(2).unwrap().parse::<u32>().unwrap();
    let keys = root.join("home/core/.ssh/authorized_keys");
    assert_eq!(
        fs::read_to_string(&keys).unwrap(),
        "ssh-ed25519 AAAAC3 core@laptop\n"
    );
    let km = fs::metadata(&keys).unwrap();
    assert_eq!((km.mode() & 0o777, km.uid()), (0o600, core_uid));
    assert_eq!(
        fs::metadata(root.join("home/core/.ssh")).unwrap().mode() & 0o777,
        0o700
    );
    let cfg = fs::metadata(root.join("opt/app/config.ini")).unwrap();
    let ops_gid: u32 = group
        .lines()
        .find(|l| l.starts_with("ops:"))
        .unwrap()
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        (cfg.mode() & 0o7777, cfg.uid(), cfg.gid()),
        (0o750, core_uid, ops_gid)
    );
    let sudoers = root.join("etc/sudoers.d/90-cloud-init-users");
    assert!(read("etc/sudoers.d/90-cloud-init-users").contains("core ALL=(ALL) NOPASSWD:ALL\n"));
    assert_eq!(fs::metadata(sudoers).unwrap().mode() & 0o777, 0o440);
    let chrony = read("etc/chrony/chrony.conf");
    assert!(
        chrony.contains("pool pool.example.com iburst\n")
            && chrony.contains("server ntp1.example.com iburst\n"),
        "{chrony}"
    );
    assert_eq!(read("etc/fstab"), "# existing\n/dev/vdb\t/var/lib/containerd\text4\tdefaults,noatime\t0\t2\tcomment=cloudconfig\n");
    assert!(root.join("var/lib/containerd").is_dir());
}

#[test]
fn commands_run_in_order_only_when_asked() {
    let busybox = Path::new("/bin/busybox");
    assert!(busybox.exists(), "apt-get install busybox-static");
    let tmp = tempfile::tempdir().unwrap();
    let root = new_root(tmp.path(), "root");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for tool in ["sh", "echo", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).unwrap();
    }
    let mime = "Content-Type: multipart/mixed; boundary=\"==B==\"\nMIME-Version: 1.0\n\n\
--==B==\nContent-Type: text/cloud-config; charset=\"us-ascii\"\nMIME-Version: 1.0\n\n\
#cloud-config\nbootcmd:\n  - echo boot >> /log\nruncmd:\n  - echo run >> /log\n  - [sh, -c, 'cat /etc/marker >> /log']\nwrite_files:\n  - {path: /etc/marker, content: \"file\\n\"}\n\
--==B==\nContent-Type: text/cloud-boothook\n\n#cloud-boothook\necho hook >> /log\n\
--==B==\nContent-Type: text/x-shellscript; charset=\"us-ascii\"\nMIME-Version: 1.0\n\n#!/bin/sh\necho script >> /log\n\
--==B==--\n";
    let out = apply(&root, mime, &[]);
    assert!(out.ok, "{}", out.stderr);
    assert!(
        !root.join("log").exists(),
        "commands ran without --run-commands"
    );
    let out = apply(&root, mime, &["--run-commands"]);
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(
        fs::read_to_string(root.join("log")).unwrap(),
        "hook\nboot\nrun\nfile\nscript\n"
    );
}

/// Builds cloud-init's instance-data.json for the same metadata kiln gets.
fn cloud_init_instance_data(md: &serde_json::Value) -> serde_json::Value {
    let mut v1 = serde_json::Map::new();
    for k in [
        "cloud_name",
        "instance_id",
        "local_hostname",
        "region",
        "availability_zone",
        "platform",
    ] {
        v1.insert(k.into(), md[k].clone());
    }
    serde_json::json!({"v1": v1, "ds": {"meta_data": md["meta_data"].clone()}})
}

#[test]
fn jinja_rendering_matches_cloud_init() {
    let tmp = tempfile::tempdir().unwrap();
    let md = serde_json::json!({
        "platform": "ec2", "cloud_name": "aws", "instance_id": "i-0abc", "local_hostname": "ip-10-0-0-5",
        "region": "eu-west-1", "availability_zone": "eu-west-1a",
        "meta_data": {"local-hostname": "ip-10-0-0-5.eu-west-1.compute.internal", "placement": {"availability-zone": "eu-west-1a"}, "tags": ["a", "b"]}
    });
    let template = "## template: jinja\n#cloud-config\nwrite_files:\n  - path: /etc/rendered\n    content: |\n      host={{ ds.meta_data.local_hostname }}\n      az={{ ds.meta_data.placement.availability_zone }} {{ v1.availability_zone }}\n      id={{ v1.instance_id }} region={{ region }}\n      {% for t in ds.meta_data.tags %}tag={{ t }}\n      {% endfor %}{% if v1.cloud_name == 'aws' %}aws=yes{% endif %}\n";
    let ud = tmp.path().join("ud");
    fs::write(&ud, template).unwrap();
    let idata = tmp.path().join("instance-data.json");
    fs::write(
        &idata,
        serde_json::to_vec(&cloud_init_instance_data(&md)).unwrap(),
    )
    .unwrap();
    let reference = std::process::Command::new("cloud-init")
        .args([
            "devel",
            "render",
            ud.to_str().unwrap(),
            "-i",
            idata.to_str().unwrap(),
        ])
        .output()
        .expect("cloud-init (apt-get install cloud-init)");
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let rendered: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&reference.stdout).unwrap();
    let expected = rendered["write_files"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();

    let root = new_root(tmp.path(), "root");
    let mdfile = tmp.path().join("metadata.json");
    fs::write(&mdfile, serde_json::to_vec(&md).unwrap()).unwrap();
    let out = firstboot(&[
        "apply",
        "--root",
        root.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "--metadata",
        mdfile.to_str().unwrap(),
    ]);
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(
        fs::read_to_string(root.join("etc/rendered")).unwrap(),
        expected
    );
    assert!(
        expected.contains("az=eu-west-1a eu-west-1a") && expected.contains("tag=b"),
        "{expected}"
    );
}

#[test]
fn two_entries_for_one_file_build_on_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let root = new_root(tmp.path(), "root");
    let ud = "#cloud-config\nwrite_files:\n  - {path: /etc/multi, content: \"one\\n\"}\n  - {path: /etc/multi, content: \"two\\n\", append: true}\n  - {path: /etc/multi, content: \"three\\n\", append: true}\n";
    let out = apply(&root, ud, &[]);
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(
        fs::read_to_string(root.join("etc/multi")).unwrap(),
        "one\ntwo\nthree\n"
    );
}

#[test]
fn passwords_are_never_emptied_or_reset() {
    let tmp = tempfile::tempdir().unwrap();
    let root = new_root(tmp.path(), "root");
    let shadow = root.join("etc/shadow");
    let original = fs::read_to_string(&shadow)
        .unwrap()
        .replace("root:*:", "root:$6$salt$hash:");
    fs::write(&shadow, &original).unwrap();
    let ud = r#"{"ignition":{"version":"3.3.0"},"passwd":{"users":[{"name":"blank","passwordHash":""},{"name":"root","sshAuthorizedKeys":["ssh-ed25519 AAAA root"]}]}}"#;
    let out = apply(&root, ud, &[]);
    assert!(out.ok, "{}", out.stderr);
    let after = fs::read_to_string(&shadow).unwrap();
    assert!(after.lines().any(|l| l.starts_with("blank:*:")), "{after}");
    assert!(
        after.lines().any(|l| l.starts_with("root:$6$salt$hash:")),
        "root's password was changed:\n{after}"
    );
}

#[test]
fn keys_are_not_written_through_a_symlinked_ssh_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = new_root(tmp.path(), "root");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::create_dir_all(root.join("home/core")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("home/core/.ssh")).unwrap();
    let ud = "#cloud-config\nusers:\n  - name: core\n    homedir: /home/core\n    no_create_home: true\n    ssh_authorized_keys: [ssh-ed25519 AAAA core]\n";
    let out = apply(&root, ud, &[]);
    assert!(!out.ok, "keys written through a symlink");
    assert!(
        out.stderr.contains("refusing to write keys through it"),
        "{}",
        out.stderr
    );
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert_eq!(fs::metadata(&outside).unwrap().uid(), 0);
}

#[test]
fn cloud_init_account_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let root = new_root(tmp.path(), "root");
    let ssh = root.join("home/ops/.ssh");
    fs::create_dir_all(&ssh).unwrap();
    fs::write(ssh.join("authorized_keys"), "ssh-ed25519 OLD kept\n").unwrap();
    let ud = "#cloud-config\nusers:\n  - name: ops\n    homedir: /home/ops\n    no_create_home: true\n    passwd: $6$salt$hash\n    groups: [newgroup]\n    favourite_colour: blue\n    ssh_authorized_keys: [ssh-ed25519 NEW added, ssh-ed25519 OLD kept]\n  - name: dev\n    passwd: $6$salt$other\n    lock_passwd: false\n";
    let out = apply(&root, ud, &[]);
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("users[0].favourite_colour is not supported"),
        "{}",
        out.stderr
    );
    let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap();
    assert!(
        shadow.lines().any(|l| l.starts_with("ops:!$6$salt$hash:")),
        "lock_passwd defaults to true:\n{shadow}"
    );
    assert!(
        shadow.lines().any(|l| l.starts_with("dev:$6$salt$other:")),
        "{shadow}"
    );
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("newgroup:") && l.ends_with("ops")),
        "{group}"
    );
    assert_eq!(
        fs::read_to_string(ssh.join("authorized_keys")).unwrap(),
        "ssh-ed25519 OLD kept\nssh-ed25519 NEW added\n"
    );
}

/// cloud-init's own part handler (`CloudConfigPartHandler`), fed the parts in order; prints the
/// merged cloud-config of each case as JSON.
const CLOUD_INIT_MERGE: &str = r#"
import json, sys
from cloudinit import handlers
from cloudinit.handlers.cloud_config import CloudConfigPartHandler

class Paths:
    def get_ipath(self, _name):
        return None

results = []
for parts in json.load(sys.stdin):
    h = CloudConfigPartHandler(Paths())
    h.handle_part(None, handlers.CONTENT_START, None, None, None, None)
    for i, (text, header) in enumerate(parts):
        headers = {"Merge-Type": header} if header else {}
        h.handle_part(None, "text/cloud-config", "part-%d" % i, text, None, headers)
    results.append(h.cloud_buf)
print(json.dumps(results))
"#;

/// Part merging (`merge_how`, `merge_type`, `Merge-Type`) compared with cloud-init's own
/// mergers on the same parts.
#[test]
fn part_merging_matches_cloud_init() {
    let base = "#cloud-config\nwrite_files: [{path: /a, content: one}]\nruncmd: [one]\nntp: {enabled: true, servers: [s1]}\nhostname: first\nfqdn: a.example\n";
    let cases: Vec<Vec<(&str, Option<&str>)>> = vec![
        vec![(base, None), ("#cloud-config\nwrite_files: [{path: /b}]\nntp: {servers: [s2]}\n", None)],
        vec![(base, None), ("#cloud-config\nmerge_how: 'list(append)+dict(recurse_array)+str()'\nwrite_files: [{path: /b}]\nruncmd: [two]\n", None)],
        vec![(base, None), ("#cloud-config\nruncmd: [two]\n", Some("list(prepend)+dict(recurse_list)"))],
        vec![(base, None), ("#cloud-config\nmerge_type: 'dict(no_replace,recurse_str)+str(append)'\nhostname: -second\nntp: {enabled: false, pools: [p]}\n", None)],
        vec![(base, None), ("#cloud-config\nmerge_how: 'dict(allow_delete,no_replace)'\nfqdn: null\nhostname: x\n", None)],
        vec![(base, None), ("#cloud-config\nmerge_how: [{name: dict, settings: [recurse_list]}, [list, append]]\nruncmd: [three]\n", None)],
        vec![(base, None), ("#cloud-config\nmerge_how: 'dict(recurse_list)+list(replace,recurse_dict)'\nwrite_files: [{content: two}, {path: /c}]\n", None)],
        vec![(base, None), ("#cloud-config\nmerge_how: 'dict(recurse_list)+list(no_replace)'\nruncmd: [x, y]\n", None)],
        vec![(base, None), ("#cloud-config\nhostname: h\n", Some("list(append)"))],
        vec![("#cloud-config\nmerge_how: 'list(append)'\nruncmd: [a]\n", None), ("#cloud-config\nruncmd: [b]\n", None)],
        vec![(base, None), ("#cloud-config\nmerge_how: 'dict(recurse_list)+list(append)'\nruncmd: [two]\n", Some("list(prepend)"))],
    ];
    let input = serde_json::to_vec(&cases).unwrap();
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", CLOUD_INIT_MERGE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&input)?;
            child.wait_with_output()
        })
        .expect("python3 with cloud-init (apt-get install cloud-init)");
    assert!(out.status.success(), "cloud-init's mergers failed");
    let reference: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for (i, (parts, expected)) in cases.iter().zip(reference).enumerate() {
        let mut merged = serde_yaml_ng::Value::Mapping(Default::default());
        for (j, (text, header)) in parts.iter().enumerate() {
            let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap();
            kiln_firstboot::userdata::merge_how::merge_part(
                &mut merged,
                doc,
                *header,
                &format!("part {j}"),
            )
            .unwrap();
        }
        let ours = serde_json::to_value(&merged).unwrap();
        assert_eq!(ours, expected, "case {i}: kiln vs cloud-init");
    }
}

/// cloud-init's own module order (Debian's /etc/cloud/cloud.cfg): `write_files` and `mounts`
/// run before `users_groups`, `write_files_deferred` after everything; kiln orders the same way.
#[test]
fn cloud_init_writes_files_before_accounts_unless_deferred() {
    let cfg = fs::read_to_string("/etc/cloud/cloud.cfg").expect("cloud-init's cloud.cfg");
    let at = |module: &str| {
        cfg.lines()
            .position(|l| l.trim().replace('-', "_") == format!("_ {module}"))
            .unwrap_or_else(|| panic!("{module} not in cloud.cfg"))
    };
    assert!(at("write_files") < at("users_groups") && at("mounts") < at("users_groups"));
    assert!(at("users_groups") < at("write_files_deferred"));

    let tmp = tempfile::tempdir().unwrap();
    let root = new_root(tmp.path(), "r");
    fs::create_dir_all(root.join("etc/skel")).unwrap();
    fs::write(root.join("etc/skel/.bashrc"), "old skeleton\n").unwrap();
    let out = apply(
        &root,
        "#cloud-config\nusers: [{name: ada}]\nwrite_files:\n\
         - {path: /etc/skel/.bashrc, content: \"new skeleton\\n\"}\n\
         - {path: /home/ada/.profile, content: mine, owner: ada, defer: true}\n",
        &[],
    );
    assert!(out.ok, "{}", out.stderr);
    // useradd copied the skeleton written before it; the deferred file is owned by ada.
    let bashrc = root.join("home/ada/.bashrc");
    assert_eq!(fs::read_to_string(&bashrc).unwrap(), "new skeleton\n");
    let profile = fs::metadata(root.join("home/ada/.profile")).unwrap();
    assert_eq!(profile.uid(), fs::metadata(&bashrc).unwrap().uid());
    assert_ne!(profile.uid(), 0);

    // Not deferred, owned by an account made later: cloud-init fails here; kiln says why first.
    let root = new_root(tmp.path(), "r2");
    let before = snapshot(&root, &[]);
    let out = apply(
        &root,
        "#cloud-config\nusers: [{name: ada}]\nwrite_files:\n- {path: /srv/x, content: x, owner: ada}\n",
        &[],
    );
    assert!(!out.ok);
    assert!(
        out.stderr.contains("write_files[0].owner") && out.stderr.contains("defer: true"),
        "{}",
        out.stderr
    );
    assert_same("refused", &before, "after", &snapshot(&root, &[]));
}

/// cloud-init opens the path it writes, so a symlink there is written through (its target gets
/// the contents, appends keep what the target held); Ignition replaces a symlink only with
/// `overwrite: true` and otherwise refuses it.
#[test]
fn symlinked_paths_are_written_through_by_cloud_config_only() {
    let tmp = tempfile::tempdir().unwrap();
    let root = new_root(tmp.path(), "r");
    fs::create_dir_all(root.join("run/resolve")).unwrap();
    fs::write(
        root.join("run/resolve/stub.conf"),
        "nameserver 127.0.0.53\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("../run/resolve/stub.conf", root.join("etc/resolv.conf")).unwrap();
    fs::create_dir_all(root.join("usr/etc")).unwrap();
    fs::write(
        root.join("usr/etc/fstab"),
        "/dev/vda1 / ext4 defaults 0 1\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("../usr/etc/fstab", root.join("etc/fstab")).unwrap();
    let out = apply(
        &root,
        "#cloud-config\nwrite_files:\n- {path: /etc/resolv.conf, content: \"nameserver 10.0.0.2\\n\"}\n\
         mounts:\n- [/dev/vdb, /data, ext4]\n",
        &[],
    );
    assert!(out.ok, "{}", out.stderr);
    assert!(fs::symlink_metadata(root.join("etc/resolv.conf"))
        .unwrap()
        .is_symlink());
    assert_eq!(
        fs::read_to_string(root.join("run/resolve/stub.conf")).unwrap(),
        "nameserver 10.0.0.2\n"
    );
    assert!(fs::symlink_metadata(root.join("etc/fstab"))
        .unwrap()
        .is_symlink());
    let fstab = fs::read_to_string(root.join("usr/etc/fstab")).unwrap();
    assert!(
        fstab.starts_with("/dev/vda1 / ext4 defaults 0 1\n"),
        "{fstab}"
    );
    assert!(fstab.contains("/dev/vdb\t/data\text4"), "{fstab}");

    let ign = |overwrite: bool| {
        format!(
            r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{"files":[{{"path":"/etc/resolv.conf","overwrite":{overwrite},"contents":{{"source":"data:,ns"}}}}]}}}}"#
        )
    };
    let out = apply(&root, &ign(false), &[]);
    assert!(
        !out.ok && out.stderr.contains("is not a regular file"),
        "{}",
        out.stderr
    );
    assert!(fs::symlink_metadata(root.join("etc/resolv.conf"))
        .unwrap()
        .is_symlink());
    let out = apply(&root, &ign(true), &[]);
    assert!(out.ok, "{}", out.stderr);
    assert!(fs::symlink_metadata(root.join("etc/resolv.conf"))
        .unwrap()
        .is_file());
}
