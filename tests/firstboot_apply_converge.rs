//! `kiln-firstboot apply` after a crash: a run killed at every step of its commit (the
//! `KILN_TEST_CRASH_AT` hook of debug builds), or by `kill -9` at increasing delays, followed by
//! a plain re-run ends with exactly the tree of a run that was never killed. Also: existing
//! sudoers rules and preset lines are kept, other programs' temp files are left alone, names of
//! up to 255 bytes are written, and a file that already holds what is planned counts as done.

#[path = "firstboot/mod.rs"]
mod firstboot;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use firstboot::*;

/// The shadow tools' backup files record the state before their last change, which differs
/// between a run that created an account and one that found it made.
const SHADOW_BACKUPS: [&str; 4] = ["etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-"];

/// Many files in several directories, appends, `overwrite: false`, links of both kinds, a
/// directory, units (contents, drop-in, mask, enable), a group and a user with keys.
fn ignition() -> String {
    let mut files: Vec<String> = (0..12)
        .map(|i| {
            format!(
                r#"{{"path":"/etc/app{}/f{i}.conf","mode":420,"contents":{{"source":"data:,file%20{i}"}}}}"#,
                i % 3
            )
        })
        .collect();
    files.push(r#"{"path":"/etc/app0/appended","overwrite":true,"contents":{"source":"data:,head%0A"},"append":[{"source":"data:,tail%0A"}]}"#.into());
    files.push(r#"{"path":"/etc/app1/private","mode":384,"user":{"name":"core"},"group":{"name":"ops"},"contents":{"source":"data:,secret"}}"#.into());
    format!(
        r#"{{"ignition":{{"version":"3.3.0"}},
        "storage":{{"files":[{}],
          "directories":[{{"path":"/var/lib/app","mode":448}}],
          "links":[{{"path":"/etc/app-current","target":"/etc/app0"}},{{"path":"/etc/app2/hard","target":"/etc/app0/f0.conf","hard":true}}]}},
        "systemd":{{"units":[
          {{"name":"app.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n","dropins":[{{"name":"10-env.conf","contents":"[Service]\nEnvironment=A=1\n"}}]}},
          {{"name":"bad.service","mask":true}}]}},
        "passwd":{{"groups":[{{"name":"ops","gid":4000}}],
          "users":[{{"name":"core","uid":4001,"groups":["ops"],"sshAuthorizedKeys":["ssh-ed25519 AAAA core"]}}]}}}}"#,
        files.join(",")
    )
}

/// cloud-config whose appends would double if a re-run applied them again.
const CLOUD_CONFIG: &str = "#cloud-config\nhostname: node-1\nusers:\n  - name: ops\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    ssh_authorized_keys: [ssh-ed25519 BBBB ops]\nwrite_files:\n  - {path: /etc/fstab, content: \"extra\\n\", append: true}\n  - {path: /etc/one, content: \"1\\n\"}\n  - {path: /etc/two, content: \"2\\n\", permissions: '0600'}\n";

fn prepare(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    seed_root(&root);
    fs::write(root.join("etc/fstab"), "# fstab\n").unwrap();
    root
}

fn apply_cmd(root: &Path, ud: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kiln-firstboot"));
    cmd.args(["apply", "--root"])
        .arg(root)
        .arg("--user-data")
        .arg(ud)
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null());
    cmd
}

/// The tree without what the shadow tools leave when killed mid-way: their lock files
/// (`/etc/group.PID`, `/etc/group.lock`) and temps (`/etc/group+`) are theirs, not kiln's to
/// remove.
fn tree(root: &Path) -> BTreeMap<String, Entry> {
    let mut tree = snapshot(root, &SHADOW_BACKUPS);
    tree.retain(|path, _| {
        let shadow_lock = ["passwd", "group", "shadow", "gshadow"].iter().any(|db| {
            path.strip_prefix("etc/")
                .and_then(|p| p.strip_prefix(db))
                .and_then(|p| p.strip_prefix('.'))
                .is_some_and(|rest| rest == "lock" || rest.bytes().all(|b| b.is_ascii_digit()))
                || path.strip_prefix("etc/").and_then(|p| p.strip_prefix(db)) == Some("+")
        });
        !shadow_lock
    });
    tree
}

/// Kills the run at crash point 1, 2, ... until one finishes; after each kill a plain re-run
/// must converge on the never-killed tree. Returns how many points there were.
fn every_crash_point_converges(user_data: &str) -> usize {
    let tmp = tempfile::tempdir().unwrap();
    let ud = tmp.path().join("ud");
    fs::write(&ud, user_data).unwrap();
    let reference = prepare(tmp.path(), "reference");
    let out = apply_cmd(&reference, &ud).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = tree(&reference);
    for point in 1.. {
        let root = prepare(tmp.path(), &format!("crash-{point}"));
        let killed = apply_cmd(&root, &ud)
            .env("KILN_TEST_CRASH_AT", point.to_string())
            .output()
            .unwrap();
        if killed.status.success() {
            assert_same(
                "never killed",
                &want,
                &format!("no crash point {point}"),
                &tree(&root),
            );
            return point - 1;
        }
        let stderr = String::from_utf8_lossy(&killed.stderr);
        assert!(
            stderr.contains("KILN_TEST_CRASH_AT"),
            "point {point}: {stderr}"
        );
        let rerun = apply_cmd(&root, &ud).output().unwrap();
        assert!(
            rerun.status.success(),
            "re-run after crash point {point}: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        assert_same(
            "never killed",
            &want,
            &format!("killed at {point}"),
            &tree(&root),
        );
        fs::remove_dir_all(&root).unwrap();
    }
    unreachable!()
}

#[test]
fn ignition_killed_at_every_commit_step_converges() {
    let points = every_crash_point_converges(&ignition());
    // Journal records, 20 temps, 20 renames, the done record.
    assert!(points > 40, "only {points} crash points");
}

#[test]
fn cloud_config_killed_at_every_commit_step_converges_without_double_appends() {
    let points = every_crash_point_converges(CLOUD_CONFIG);
    assert!(points > 10, "only {points} crash points");
}

/// `kill -9` of the whole run at delays from its start to past its end: before, during and
/// after the accounts and the commit.
#[test]
fn kill_9_at_increasing_delays_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let ud = tmp.path().join("ud");
    fs::write(&ud, ignition()).unwrap();
    let reference = prepare(tmp.path(), "reference");
    let started = std::time::Instant::now();
    let out = apply_cmd(&reference, &ud).output().unwrap();
    let whole = started.elapsed().as_millis() as u64;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = tree(&reference);
    let mut phases = std::collections::BTreeSet::new();
    // From the start to past the end of a whole run, in 16 steps.
    for delay_ms in (0..16).map(|i| whole * i / 13) {
        let root = prepare(tmp.path(), &format!("kill-{delay_ms}"));
        // Its own process group, killed as a whole: as a power loss, which also stops a
        // groupadd or useradd the run started.
        let mut child = apply_cmd(&root, &ud)
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let group = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        // Until every member is gone (a shadow tool's lock names its pid, which must be dead,
        // as after a reboot).
        let gone = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while nix::sys::signal::killpg(group, None).is_ok() && std::time::Instant::now() < gone {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        phases.insert(phase(&root));
        let rerun = apply_cmd(&root, &ud).output().unwrap();
        assert!(
            rerun.status.success(),
            "re-run after a kill at {delay_ms} ms: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        assert_same(
            "never killed",
            &want,
            &format!("killed at {delay_ms} ms"),
            &tree(&root),
        );
    }
    assert!(
        phases.len() >= 2,
        "the kills did not land in different phases: {phases:?}"
    );
}

/// How far a killed run got: before any account, making accounts, committing, or done.
fn phase(root: &Path) -> &'static str {
    let state = root.join("var/lib/kiln");
    if state.join("apply.done").exists() {
        "done"
    } else if state.join("apply.journal").exists() {
        "commit"
    } else if state.join("accounts.undo").exists() {
        "accounts"
    } else if fs::read_to_string(root.join("etc/group"))
        .unwrap()
        .contains("ops")
    {
        "accounts made"
    } else {
        "before"
    }
}

fn apply_ok(root: &Path, user_data: &str) -> Out {
    let ud = root.with_extension("ud");
    fs::write(&ud, user_data).unwrap();
    let out = firstboot(&[
        "apply",
        "--root",
        root.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
    ]);
    assert!(out.ok, "{}", out.stderr);
    out
}

#[test]
fn existing_sudoers_rules_and_preset_lines_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let root = prepare(tmp.path(), "root");
    fs::create_dir_all(root.join("etc/sudoers.d")).unwrap();
    fs::write(
        root.join("etc/sudoers.d/90-cloud-init-users"),
        "# Created by cloud-init\n\n# User rules for old\nold ALL=(ALL) ALL\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("etc/systemd/system-preset")).unwrap();
    let preset = root.join("etc/systemd/system-preset/20-ignition.preset");
    fs::write(&preset, "enable other.service\n").unwrap();
    apply_ok(
        &root,
        "#cloud-config\nusers:\n  - name: ops\n    sudo: ALL=(ALL) NOPASSWD:ALL\n",
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/sudoers.d/90-cloud-init-users")).unwrap(),
        "# Created by cloud-init\n\n# User rules for old\nold ALL=(ALL) ALL\n\n# User rules for ops\nops ALL=(ALL) NOPASSWD:ALL\n"
    );
    apply_ok(
        &root,
        r#"{"ignition":{"version":"3.3.0"},"systemd":{"units":[{"name":"app.service","enabled":true}]}}"#,
    );
    assert_eq!(
        fs::read_to_string(&preset).unwrap(),
        "enable other.service\nenable app.service\n"
    );
}

#[test]
fn other_programs_temp_files_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let root = prepare(tmp.path(), "root");
    let foreign = root.join("etc/.ok.tmp-Ab12Cd");
    fs::write(&foreign, "someone else's").unwrap();
    apply_ok(
        &root,
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/etc/ok","contents":{"source":"data:,ok"}}]}}"#,
    );
    assert_eq!(fs::read_to_string(&foreign).unwrap(), "someone else's");
    assert_eq!(fs::read_to_string(root.join("etc/ok")).unwrap(), "ok");
}

#[test]
fn names_of_up_to_255_bytes_are_written() {
    let tmp = tempfile::tempdir().unwrap();
    let root = prepare(tmp.path(), "root");
    let files: Vec<String> = [244, 250, 255]
        .iter()
        .map(|n| {
            format!(
                r#"{{"path":"/etc/{}","contents":{{"source":"data:,x"}}}}"#,
                "n".repeat(*n)
            )
        })
        .collect();
    apply_ok(
        &root,
        &format!(
            r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{"files":[{}],"links":[{{"path":"/etc/{}","target":"/etc/ok"}}]}}}}"#,
            files.join(","),
            "l".repeat(255)
        ),
    );
    for n in [244, 250, 255] {
        assert_eq!(
            fs::read(root.join("etc").join("n".repeat(n))).unwrap(),
            b"x"
        );
    }
    assert!(root
        .join("etc")
        .join("l".repeat(255))
        .symlink_metadata()
        .is_ok());
}

#[test]
fn a_file_already_holding_the_planned_state_counts_as_done() {
    let tmp = tempfile::tempdir().unwrap();
    let root = prepare(tmp.path(), "root");
    let a = r#"{"path":"/etc/a","contents":{"source":"data:,A"}}"#;
    let b = r#"{"path":"/etc/b","contents":{"source":"data:,B"}}"#;
    let ign = |files: &str| {
        format!(r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{"files":[{files}]}}}}"#)
    };
    apply_ok(&root, &ign(a));
    // overwrite: false (Ignition's default), and /etc/a holds exactly what is planned.
    apply_ok(&root, &ign(&format!("{a},{b}")));
    assert_eq!(fs::read_to_string(root.join("etc/b")).unwrap(), "B");
    // The same plan again is recognised as applied: appends are not repeated.
    let append = r#"#cloud-config
write_files:
  - {path: /etc/fstab, content: "more\n", append: true}
"#;
    apply_ok(&root, append);
    let again = apply_ok(&root, append);
    assert!(again.stderr.contains("applied already"), "{}", again.stderr);
    assert_eq!(
        fs::read_to_string(root.join("etc/fstab")).unwrap(),
        "# fstab\nmore\n"
    );
}
