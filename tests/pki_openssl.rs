//! `kiln pki init`, `pki ca-hash`, `pki etcd`, `kubeconfig user`, `token` and
//! `certificate-key`, checked with the real openssl: chains verify, and the facts kubeadm's
//! certificates have (subjects, SANs, key usages, validity, file modes, PEM formats) hold.

mod support;

use std::fs;
use std::path::Path;

use support::*;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

fn not_before_after(cert: &Path) -> (OffsetDateTime, OffsetDateTime) {
    let out = openssl(&[
        "x509",
        "-noout",
        "-startdate",
        "-enddate",
        "-in",
        path_str(cert),
    ]);
    let fmt = time::macros::format_description!(
        "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
    );
    let mut dates = out.lines().map(|l| {
        let value = l.split_once('=').unwrap().1;
        PrimitiveDateTime::parse(value, fmt)
            .unwrap_or_else(|e| panic!("{l}: {e}"))
            .assume_utc()
    });
    (dates.next().unwrap(), dates.next().unwrap())
}

/// The CA pin computed the way kubeadm's documentation does it, with openssl only.
fn openssl_ca_hash(cert: &Path) -> String {
    let hex = sh(&format!(
        "openssl x509 -pubkey -noout -in '{}' | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex | sed 's/^.* //'",
        cert.display()
    ));
    format!("sha256:{}", hex.trim())
}

fn public_key_of_cert(cert: &Path) -> String {
    openssl(&["x509", "-noout", "-pubkey", "-in", path_str(cert)])
}

fn public_key_of_key(key: &Path) -> String {
    openssl(&["pkey", "-pubout", "-in", path_str(key)])
}

fn check_ca(dir: &Path, base: &str, cn: &str, rsa: bool) {
    let crt = dir.join(format!("{base}.crt"));
    let key = dir.join(format!("{base}.key"));
    let text = x509_text(&crt);
    assert!(
        text.contains(&format!("Subject: CN = {cn}\n")),
        "{base}: {text}"
    );
    assert!(
        text.contains(&format!("Issuer: CN = {cn}\n")),
        "{base}: {text}"
    );
    assert!(
        text.contains("X509v3 Basic Constraints: critical"),
        "{base}"
    );
    assert_eq!(extension(&text, "X509v3 Basic Constraints"), "CA:TRUE");
    assert!(text.contains("X509v3 Key Usage: critical"), "{base}");
    // kubeadm sets keyEncipherment for ECDSA keys too.
    let usage = "Digital Signature, Key Encipherment, Certificate Sign";
    assert_eq!(extension(&text, "X509v3 Key Usage"), usage, "{base}");
    assert_eq!(
        extension(&text, "X509v3 Subject Alternative Name"),
        format!("DNS:{cn}")
    );
    let (nb, na) = not_before_after(&crt);
    let now = OffsetDateTime::now_utc();
    assert!(
        nb <= now - Duration::minutes(4) && nb >= now - Duration::minutes(7),
        "{base}: NotBefore {nb} is not back-dated ~5 minutes"
    );
    assert_eq!(
        na - nb,
        Duration::days(3650) + Duration::minutes(5),
        "{base}: validity"
    );
    openssl(&["verify", "-CAfile", path_str(&crt), path_str(&crt)]);
    assert_eq!(
        public_key_of_cert(&crt),
        public_key_of_key(&key),
        "{base}: key does not match"
    );
    assert_eq!(mode(&crt), 0o644, "{base}.crt mode");
    assert_eq!(mode(&key), 0o600, "{base}.key mode");
    let key_pem = fs::read_to_string(&key).unwrap();
    let header = if rsa {
        "-----BEGIN RSA PRIVATE KEY-----\n"
    } else {
        "-----BEGIN EC PRIVATE KEY-----\n"
    };
    assert!(
        key_pem.starts_with(header),
        "{base}.key is not in kubeadm's format"
    );
}

#[test]
fn pki_init_makes_kubeadm_cluster_cas_for_rsa_and_ecdsa() {
    for (key_type, rsa, key_bits) in [
        ("rsa-2048", true, "2048 bit"),
        ("ecdsa-p256", false, "256 bit"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("pki");
        let run = kiln_ok(&[
            "pki",
            "init",
            "--out",
            path_str(&out),
            "--key-type",
            key_type,
        ]);
        assert_eq!(
            list_files(&out),
            [
                "ca.crt",
                "ca.key",
                "etcd/ca.crt",
                "etcd/ca.key",
                "front-proxy-ca.crt",
                "front-proxy-ca.key",
                "sa.key",
                "sa.pub"
            ]
        );
        check_ca(&out, "ca", "kubernetes", rsa);
        check_ca(&out, "front-proxy-ca", "front-proxy-ca", rsa);
        check_ca(&out, "etcd/ca", "etcd-ca", rsa);
        assert!(
            x509_text(&out.join("ca.crt")).contains(key_bits),
            "{key_type}"
        );
        assert_eq!(
            public_key_of_key(&out.join("sa.key")),
            fs::read_to_string(out.join("sa.pub")).unwrap()
        );
        assert_eq!(mode(&out.join("sa.key")), 0o600);
        // stdout is the CA pin, equal to the openssl pipeline's.
        assert_eq!(
            run.stdout.trim(),
            openssl_ca_hash(&out.join("ca.crt")),
            "{key_type}"
        );
        assert!(!run.stderr.contains("PRIVATE KEY"));
    }
}

#[test]
fn ca_hash_equals_the_openssl_pipeline_for_ca_made_by_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, newkey) in [("rsa", "rsa:2048"), ("ec", "ec"), ("ec384", "ec")] {
        let crt = tmp.path().join(format!("{name}.crt"));
        let key = tmp.path().join(format!("{name}.key"));
        let mut args = vec![
            "req",
            "-x509",
            "-newkey",
            newkey,
            "-nodes",
            "-subj",
            "/CN=kubernetes",
            "-days",
            "1",
        ];
        let curve = if name == "ec384" {
            "ec_paramgen_curve:P-384"
        } else {
            "ec_paramgen_curve:P-256"
        };
        if newkey == "ec" {
            args.extend(["-pkeyopt", curve]);
        }
        args.extend(["-keyout", path_str(&key), "-out", path_str(&crt)]);
        openssl(&args);
        let ours = kiln_ok(&["pki", "ca-hash", path_str(&crt)]).stdout;
        assert_eq!(ours.trim(), openssl_ca_hash(&crt), "{name}");
        assert_eq!(ours.trim().len(), "sha256:".len() + 64);
    }
    // kubeadm's documentation pipes through `openssl rsa -pubin`: that exact pipeline for RSA.
    let crt = tmp.path().join("rsa.crt");
    let documented = sh(&format!(
        "openssl x509 -pubkey -in '{}' | openssl rsa -pubin -outform der 2>/dev/null | openssl dgst -sha256 -hex | sed 's/^.* //'",
        crt.display()
    ));
    let ours = kiln_ok(&["pki", "ca-hash", path_str(&crt)]).stdout;
    assert_eq!(ours.trim(), format!("sha256:{}", documented.trim()));
}

#[test]
fn pki_init_refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pki");
    let first = kiln_ok(&[
        "pki",
        "init",
        "--out",
        path_str(&out),
        "--key-type",
        "ecdsa-p256",
    ])
    .stdout;
    let before = fs::read(out.join("ca.key")).unwrap();
    let run = kiln(&[
        "pki",
        "init",
        "--out",
        path_str(&out),
        "--key-type",
        "ecdsa-p256",
    ]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("already exists") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert_eq!(
        fs::read(out.join("ca.key")).unwrap(),
        before,
        "ca.key was changed"
    );
    let second = kiln_ok(&[
        "pki",
        "init",
        "--out",
        path_str(&out),
        "--key-type",
        "ecdsa-p256",
        "--force",
    ])
    .stdout;
    assert_ne!(first, second, "--force did not make a new CA");
    assert_eq!(second.trim(), openssl_ca_hash(&out.join("ca.crt")));
}

/// `kiln ARGS` run in the directory `cwd`.
fn kiln_in(cwd: &Path, args: &[&str]) -> Run {
    std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running kiln")
        .into()
}

/// The public key of the private key `key`, as openssl prints it.
fn public_of_private(key: &Path) -> String {
    openssl(&["pkey", "-in", path_str(key), "-pubout"])
}

#[test]
fn pki_init_force_replaces_the_whole_set_or_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pki");
    let args = [
        "pki",
        "init",
        "--out",
        path_str(&out),
        "--key-type",
        "ecdsa-p256",
    ];
    kiln_ok(&args);
    let old_ca = fs::read(out.join("ca.crt")).unwrap();
    fs::write(out.join("apiserver.crt"), "kept").unwrap();
    // sa.pub cannot be replaced file by file: a writer going file by file fails there, after
    // the CAs and sa.key were already replaced.
    fs::remove_file(out.join("sa.pub")).unwrap();
    fs::create_dir_all(out.join("sa.pub/in-the-way")).unwrap();
    let run = kiln(&[&args[..], &["--force"]].concat());
    assert!(run.ok, "{}", run.stderr);
    assert_ne!(
        fs::read(out.join("ca.crt")).unwrap(),
        old_ca,
        "the CA was not replaced"
    );
    assert_eq!(
        public_of_private(&out.join("sa.key")),
        fs::read_to_string(out.join("sa.pub")).unwrap(),
        "sa.pub is not sa.key's public key"
    );
    assert_eq!(
        fs::read_to_string(out.join("apiserver.crt")).unwrap(),
        "kept"
    );
    let leftovers: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["pki"]);
}

#[test]
fn pki_init_takes_a_relative_out() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::create_dir(dir.join("pki")).unwrap();
    fs::create_dir(dir.join("sub")).unwrap();
    for (cwd, out) in [(dir, "pki"), (dir, "./pki/"), (&dir.join("sub"), "../pki")] {
        for force in [&[][..], &["--force"][..]] {
            let args = [
                &["pki", "init", "--out", out, "--key-type", "ecdsa-p256"][..],
                force,
            ];
            let run = kiln_in(cwd, &args.concat());
            if force.is_empty() && out != "pki" {
                assert!(run.stderr.contains("already exists"), "{}", run.stderr);
                continue;
            }
            assert!(
                run.ok,
                "--out {out} {force:?} in {}: {}",
                cwd.display(),
                run.stderr
            );
            assert_eq!(
                run.stdout.trim(),
                openssl_ca_hash(&dir.join("pki/ca.crt")),
                "--out {out} {force:?}"
            );
        }
    }
    // Not the directory kiln runs in: it would be swapped away under the shell.
    let run = kiln_in(&dir.join("pki"), &["pki", "init", "--out", ".", "--force"]);
    assert!(
        !run.ok && run.stderr.contains("run kiln from outside it"),
        "{}",
        run.stderr
    );
}

#[test]
fn pki_init_dry_run_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pki");
    let run = kiln_ok(&[
        "pki",
        "init",
        "--out",
        path_str(&out),
        "--key-type",
        "ecdsa-p256",
        "--dry-run",
    ]);
    assert!(!out.exists());
    assert!(
        run.stdout.contains("600") && run.stdout.contains("ca.key"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("PRIVATE"),
        "dry run printed key material"
    );
}

fn check_leaf(cert: &Path, ca: &Path, subject: &str, sans: Option<&str>, eku: &str) {
    openssl(&["verify", "-CAfile", path_str(ca), path_str(cert)]);
    let text = x509_text(cert);
    assert!(
        text.contains(&format!("Subject: {subject}\n")),
        "{}: {text}",
        cert.display()
    );
    assert_eq!(
        extension(&text, "X509v3 Extended Key Usage"),
        eku,
        "{}",
        cert.display()
    );
    assert_eq!(extension(&text, "X509v3 Basic Constraints"), "CA:FALSE");
    match sans {
        Some(sans) => assert_eq!(extension(&text, "X509v3 Subject Alternative Name"), sans),
        None => assert!(
            !text.contains("Subject Alternative Name"),
            "{}",
            cert.display()
        ),
    }
    let (nb, na) = not_before_after(cert);
    let back = OffsetDateTime::now_utc() - nb;
    assert!(
        back >= Duration::minutes(4) && back <= Duration::minutes(7),
        "{}: NotBefore {nb} is not back-dated ~5 minutes",
        cert.display()
    );
    assert!(x509_text(cert).contains("X509v3 Key Usage: critical"));
    assert_eq!(
        extension(&x509_text(cert), "X509v3 Key Usage"),
        "Digital Signature, Key Encipherment"
    );
    let days = (na - OffsetDateTime::now_utc()).whole_days();
    assert!(
        (364..=365).contains(&days),
        "{}: valid for {days} days",
        cert.display()
    );
    let key = cert.with_extension("key");
    assert_eq!(mode(&key), 0o600);
    assert_eq!(public_key_of_cert(cert), public_key_of_key(&key));
}

#[test]
fn pki_etcd_certificates_match_kubeadm() {
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("pki");
    kiln_ok(&["pki", "init", "--out", path_str(&ca_dir)]);
    let out = tmp.path().join("etcd");
    kiln_ok(&[
        "pki",
        "etcd",
        "--ca-dir",
        path_str(&ca_dir),
        "--out",
        path_str(&out),
        "--member",
        "etcd-a=10.0.0.11",
        "--member",
        "etcd-b=10.0.0.12",
        "--member",
        "etcd-c=fd00::13",
    ]);
    let ca = ca_dir.join("etcd/ca.crt");
    for (name, ip) in [
        ("etcd-a", "10.0.0.11"),
        ("etcd-b", "10.0.0.12"),
        ("etcd-c", "FD00:0:0:0:0:0:0:13"),
    ] {
        let pki = out.join(name).join("pki");
        assert_eq!(
            list_files(&out.join(name)),
            [
                "kubeadmcfg.yaml",
                "pki/apiserver-etcd-client.crt",
                "pki/apiserver-etcd-client.key",
                "pki/etcd/ca.crt",
                "pki/etcd/healthcheck-client.crt",
                "pki/etcd/healthcheck-client.key",
                "pki/etcd/peer.crt",
                "pki/etcd/peer.key",
                "pki/etcd/server.crt",
                "pki/etcd/server.key",
            ],
            "{name}: never etcd/ca.key"
        );
        assert_eq!(
            fs::read(pki.join("etcd/ca.crt")).unwrap(),
            fs::read(&ca).unwrap()
        );
        let sans = format!("DNS:{name}, DNS:localhost, IP Address:{ip}, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
        let both = "TLS Web Server Authentication, TLS Web Client Authentication";
        let client = "TLS Web Client Authentication";
        check_leaf(
            &pki.join("etcd/server.crt"),
            &ca,
            &format!("CN = {name}"),
            Some(&sans),
            both,
        );
        check_leaf(
            &pki.join("etcd/peer.crt"),
            &ca,
            &format!("CN = {name}"),
            Some(&sans),
            both,
        );
        check_leaf(
            &pki.join("etcd/healthcheck-client.crt"),
            &ca,
            "CN = kube-etcd-healthcheck-client",
            None,
            client,
        );
        check_leaf(
            &pki.join("apiserver-etcd-client.crt"),
            &ca,
            "CN = kube-apiserver-etcd-client",
            None,
            client,
        );
        let cfg = fs::read_to_string(out.join(name).join("kubeadmcfg.yaml")).unwrap();
        assert!(cfg.contains(&format!("  name: {name}\n")), "{cfg}");
    }
    assert_eq!(mode(&out), 0o700);
}

#[test]
fn pki_etcd_makes_an_etcd_ca_when_the_ca_dir_has_none() {
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("pki");
    fs::create_dir(&ca_dir).unwrap();
    let out = tmp.path().join("etcd");
    kiln_ok(&[
        "pki",
        "etcd",
        "--ca-dir",
        path_str(&ca_dir),
        "--out",
        path_str(&out),
        "--key-type",
        "ecdsa-p256",
        "--kubeadm-api",
        "v1beta3",
        "--member",
        "solo=10.0.0.9",
    ]);
    assert_eq!(list_files(&ca_dir), ["etcd/ca.crt", "etcd/ca.key"]);
    check_ca(&ca_dir, "etcd/ca", "etcd-ca", false);
    openssl(&[
        "verify",
        "-CAfile",
        path_str(&ca_dir.join("etcd/ca.crt")),
        path_str(&out.join("solo/pki/etcd/server.crt")),
    ]);
    let cfg = fs::read_to_string(out.join("solo/kubeadmcfg.yaml")).unwrap();
    assert!(
        cfg.contains("apiVersion: kubeadm.k8s.io/v1beta3")
            && cfg.contains("    extraArgs:\n      initial-cluster: solo=https://10.0.0.9:2380\n"),
        "{cfg}"
    );
}

#[test]
fn kubeconfig_user_embeds_a_client_certificate_signed_by_the_ca() {
    use base64::prelude::{Engine, BASE64_STANDARD};
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("pki");
    kiln_ok(&[
        "pki",
        "init",
        "--out",
        path_str(&ca_dir),
        "--key-type",
        "ecdsa-p256",
    ]);
    let run = kiln_ok(&[
        "kubeconfig",
        "user",
        "--ca-dir",
        path_str(&ca_dir),
        "--client-name",
        "system:node:worker-1",
        "--org",
        "system:nodes",
        "--server",
        "https://10.0.0.10:6443",
        "--validity-period",
        "720h",
    ]);
    let cfg: serde_yaml_ng::Value = serde_yaml_ng::from_str(&run.stdout).unwrap();
    assert_eq!(
        cfg["current-context"].as_str(),
        Some("system:node:worker-1@kubernetes")
    );
    assert_eq!(
        cfg["clusters"][0]["cluster"]["server"].as_str(),
        Some("https://10.0.0.10:6443")
    );
    let data = |v: &serde_yaml_ng::Value| BASE64_STANDARD.decode(v.as_str().unwrap()).unwrap();
    let ca_data = data(&cfg["clusters"][0]["cluster"]["certificate-authority-data"]);
    assert_eq!(ca_data, fs::read(ca_dir.join("ca.crt")).unwrap());
    let cert = tmp.path().join("client.crt");
    let key = tmp.path().join("client.key");
    fs::write(
        &cert,
        data(&cfg["users"][0]["user"]["client-certificate-data"]),
    )
    .unwrap();
    fs::write(&key, data(&cfg["users"][0]["user"]["client-key-data"])).unwrap();
    openssl(&[
        "verify",
        "-CAfile",
        path_str(&ca_dir.join("ca.crt")),
        path_str(&cert),
    ]);
    let text = x509_text(&cert);
    assert!(
        text.contains("Subject: O = system:nodes, CN = system:node:worker-1\n"),
        "{text}"
    );
    assert_eq!(
        extension(&text, "X509v3 Extended Key Usage"),
        "TLS Web Client Authentication"
    );
    assert_eq!(public_key_of_cert(&cert), public_key_of_key(&key));
    let (_, na) = not_before_after(&cert);
    assert_eq!((na - OffsetDateTime::now_utc()).whole_days(), 29);
    assert!(!run.stderr.contains("PRIVATE KEY"));
}

#[test]
fn token_and_certificate_key_formats() {
    let a = kiln_ok(&["token", "generate"]).stdout;
    let b = kiln_ok(&["token", "generate"]).stdout;
    for t in [&a, &b] {
        let t = t.trim();
        let (id, secret) = t.split_once('.').unwrap();
        let ok = |s: &str, n| {
            s.len() == n
                && s.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        };
        assert!(ok(id, 6) && ok(secret, 16), "{t:?}");
    }
    assert_ne!(a, b);
    let k = kiln_ok(&["certificate-key"]).stdout;
    let k = k.trim();
    assert_eq!(k.len(), 64);
    assert!(
        k.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
        "{k:?}"
    );
}
