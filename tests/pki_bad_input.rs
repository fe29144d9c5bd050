//! Bad input to the PKI commands: one clear error naming the problem, a non-zero exit, and
//! nothing written anywhere.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use support::*;

/// Every file below `dir` with its contents: to prove a failed command changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    list_files(dir)
        .into_iter()
        .map(|rel| {
            let bytes = fs::read(dir.join(&rel)).unwrap();
            (rel, bytes)
        })
        .collect()
}

/// Runs kiln in a workspace, expects failure with exactly one `error:` line containing every
/// `needle`, and no change below `root`.
fn fails_cleanly(root: &Path, args: &[&str], needles: &[&str]) {
    let before = snapshot(root);
    let run = kiln(args);
    assert!(!run.ok, "kiln {args:?} succeeded");
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "kiln {args:?}: expected one error line:\n{}",
        run.stderr
    );
    for needle in needles {
        assert!(
            errors[0].contains(needle),
            "kiln {args:?}: {:?} lacks {needle:?}",
            errors[0]
        );
    }
    assert!(
        run.stdout.is_empty(),
        "kiln {args:?} printed data: {}",
        run.stdout
    );
    assert_eq!(snapshot(root), before, "kiln {args:?} wrote something");
}

/// A workspace with a cluster PKI in `pki/` and a second, unrelated one in `other/`.
fn workspace() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for dir in ["pki", "other"] {
        kiln_ok(&[
            "pki",
            "init",
            "--out",
            path_str(&tmp.path().join(dir)),
            "--key-type",
            "ecdsa-p256",
        ]);
    }
    tmp
}

fn etcd_args<'a>(ca_dir: &'a str, out: &'a str, members: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["pki", "etcd", "--ca-dir", ca_dir, "--out", out];
    for m in members {
        args.extend(["--member", m]);
    }
    args
}

#[test]
fn pki_etcd_rejects_bad_members_before_writing() {
    let tmp = workspace();
    let root = tmp.path();
    let ca = path_str(&root.join("pki")).to_owned();
    let out = path_str(&root.join("out")).to_owned();
    let cases: [(&[&str], &[&str]); 8] = [
        (
            &["a=10.0.0.300"],
            &["--member", "10.0.0.300", "not an IPv4 or IPv6 address"],
        ),
        (&["a"], &["--member", "expected NAME=IP"]),
        (
            &["Bad_Name=10.0.0.1"],
            &["Bad_Name", "not a valid node name"],
        ),
        (
            &["a=10.0.0.1", "a=10.0.0.2"],
            &["name \"a\" is given twice"],
        ),
        (
            &["a=10.0.0.1", "b=10.0.0.1"],
            &["address 10.0.0.1 is given twice"],
        ),
        (
            &["a=10.0.0.1", "b=0.0.0.0"],
            &["--member b=0.0.0.0", "unspecified address"],
        ),
        (&["a=::"], &["--member a=::", "unspecified address"]),
        (
            &["a=10.0.0.1", "c=::1"],
            &["--member c=::1", "loopback", "--allow-loopback"],
        ),
    ];
    for (members, needles) in cases {
        fails_cleanly(root, &etcd_args(&ca, &out, members), needles);
    }
}

#[test]
fn pki_etcd_rejects_missing_mismatched_or_unreadable_ca_files() {
    let tmp = workspace();
    let root = tmp.path();
    let out = path_str(&root.join("out")).to_owned();
    let pki = root.join("pki");

    // No such CA directory.
    let missing = path_str(&root.join("nope")).to_owned();
    fails_cleanly(
        root,
        &etcd_args(&missing, &out, &["a=10.0.0.1"]),
        &["nope", "no such directory", "kiln pki init"],
    );

    // A CA key that belongs to another certificate.
    fs::copy(root.join("other/etcd/ca.key"), pki.join("etcd/ca.key")).unwrap();
    let ca = path_str(&pki).to_owned();
    fails_cleanly(
        root,
        &etcd_args(&ca, &out, &["a=10.0.0.1"]),
        &["etcd/ca.key does not match", "etcd/ca.crt"],
    );

    // An unreadable (not PEM) certificate.
    fs::copy(root.join("other/etcd/ca.key"), pki.join("etcd/ca.key")).unwrap();
    fs::write(pki.join("etcd/ca.crt"), "not a certificate\n").unwrap();
    fails_cleanly(
        root,
        &etcd_args(&ca, &out, &["a=10.0.0.1"]),
        &["etcd/ca.crt", "certificate"],
    );

    // Half a CA: the certificate without its key.
    fs::remove_file(pki.join("etcd/ca.key")).unwrap();
    fails_cleanly(
        root,
        &etcd_args(&ca, &out, &["a=10.0.0.1"]),
        &["etcd/ca.key is missing"],
    );

    // A leaf certificate posing as a CA.
    let leaf_dir = root.join("leaf");
    fs::create_dir_all(leaf_dir.join("etcd")).unwrap();
    kiln_ok(&[
        "pki",
        "etcd",
        "--ca-dir",
        path_str(&root.join("other")),
        "--out",
        path_str(&root.join("leaf-out")),
        "--member",
        "x=10.0.0.9",
    ]);
    fs::copy(
        root.join("leaf-out/x/pki/etcd/server.crt"),
        leaf_dir.join("etcd/ca.crt"),
    )
    .unwrap();
    fs::copy(
        root.join("leaf-out/x/pki/etcd/server.key"),
        leaf_dir.join("etcd/ca.key"),
    )
    .unwrap();
    let leaf = path_str(&leaf_dir).to_owned();
    fails_cleanly(
        root,
        &etcd_args(&leaf, &out, &["a=10.0.0.1"]),
        &["not a CA"],
    );
}

#[test]
fn pki_etcd_refuses_an_existing_output_directory() {
    let tmp = workspace();
    let root = tmp.path();
    let out = root.join("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("keep"), "mine").unwrap();
    let ca = path_str(&root.join("pki")).to_owned();
    fails_cleanly(
        root,
        &etcd_args(&ca, path_str(&out), &["a=10.0.0.1"]),
        &["already exists", "--out"],
    );
    // Also when the CA would have been created: the CA directory stays empty.
    let empty = root.join("empty");
    fs::create_dir(&empty).unwrap();
    fails_cleanly(
        root,
        &etcd_args(path_str(&empty), path_str(&out), &["a=10.0.0.1"]),
        &["already exists"],
    );
    assert!(list_files(&empty).is_empty());
}

#[test]
fn other_commands_name_the_bad_value() {
    let tmp = workspace();
    let root = tmp.path();
    let new_out = path_str(&root.join("new")).to_owned();
    fails_cleanly(
        root,
        &["pki", "init", "--out", &new_out, "--key-type", "dsa"],
        &["dsa", "rsa-2048"],
    );
    fails_cleanly(
        root,
        &[
            "pki",
            "etcd",
            "--ca-dir",
            path_str(&root.join("pki")),
            "--out",
            &new_out,
            "--member",
            "a=1.2.3.4",
            "--kubeadm-api",
            "v1beta2",
        ],
        &["v1beta2"],
    );
    fails_cleanly(
        root,
        &[
            "pki",
            "etcd",
            "--ca-dir",
            path_str(&root.join("pki")),
            "--out",
            &new_out,
            "--member",
            "a=1.2.3.4",
            "--kubeadm-api",
            "v1beta3",
            "--kubernetes-version",
            "v1.37.0",
        ],
        &[
            "does not read kubeadm.k8s.io/v1beta3",
            "use --kubeadm-api v1beta4",
        ],
    );
    let missing = path_str(&root.join("missing.crt")).to_owned();
    fails_cleanly(root, &["pki", "ca-hash", &missing], &["missing.crt"]);
    let key = path_str(&root.join("pki/ca.key")).to_owned();
    fails_cleanly(
        root,
        &["pki", "ca-hash", &key],
        &["ca.key", "no CERTIFICATE"],
    );
    let pki = path_str(&root.join("pki")).to_owned();
    fails_cleanly(
        root,
        &[
            "kubeconfig",
            "user",
            "--ca-dir",
            &pki,
            "--client-name",
            "u",
            "--server",
            "10.0.0.1:6443",
        ],
        &["--server", "https://"],
    );
    fails_cleanly(
        root,
        &[
            "kubeconfig",
            "user",
            "--ca-dir",
            &missing,
            "--client-name",
            "u",
            "--server",
            "https://a:6443",
        ],
        &["missing.crt/ca.crt"],
    );
    fails_cleanly(
        root,
        &[
            "kubeconfig",
            "user",
            "--ca-dir",
            &pki,
            "--client-name",
            "u",
            "--server",
            "https://a:6443",
            "--validity-period",
            "soon",
        ],
        &["soon", "8760h"],
    );
}

#[test]
fn exit_statuses_are_the_documented_ones() {
    let tmp = workspace();
    let root = tmp.path();
    let out = path_str(&root.join("new")).to_owned();
    let help = kiln(&["--help"]);
    assert!(
        help.ok && help.stdout.contains("Exit status: 0 success; 1 "),
        "{}",
        help.stdout
    );
    // A malformed command line: clap's usage error, 2.
    let usage = kiln(&["pki", "init", "--out", &out, "--key-type", "dsa"]);
    assert_eq!(usage.code, Some(2), "{}", usage.stderr);
    let usage = kiln(&["pki", "init", "--outt", &out]);
    assert_eq!(usage.code, Some(2), "{}", usage.stderr);
    // A well-formed command whose input is refused: 1.
    let ca = path_str(&root.join("pki")).to_owned();
    let refused = kiln(&etcd_args(&ca, &out, &["a=0.0.0.0"]));
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    let missing = path_str(&root.join("missing.crt")).to_owned();
    let refused = kiln(&["pki", "ca-hash", &missing]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
}
