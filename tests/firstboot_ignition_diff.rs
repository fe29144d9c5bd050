//! Differential tests: the same Ignition config applied by the real Ignition (Debian's
//! `ignition` package, `-platform file`, stages fetch then files) and by `kiln-firstboot apply`
//! into two identical scratch roots; the trees must match in paths, types, modes, owners,
//! contents, link targets and unit presets.

#[path = "firstboot/mod.rs"]
mod firstboot;

use std::path::Path;
use std::process::Command;

use firstboot::*;

const IGNITION: &str = "/usr/lib/dracut/modules.d/30ignition/ignition";

/// What Ignition leaves that is not part of the configured machine.
/// Each implementation's own records: Ignition's result file, kiln's state (the applied plan's
/// digest, the commit journal) in /var/lib/kiln, which both roots get beforehand.
const ARTIFACTS: [&str; 3] = ["etc/.ignition-result.json", "etc/selinux", "var/lib/kiln"];

/// Runs the real Ignition's `stages` on `root` (its cache and state in `work`); its log.
fn real_ignition_log(config: &Path, root: &Path, work: &Path, stages: &[&str]) -> String {
    assert!(
        Path::new(IGNITION).exists(),
        "real Ignition missing: apt-get install ignition"
    );
    let mut log = String::new();
    for stage in stages {
        let out = Command::new(IGNITION)
            .args(["-platform", "file", "-stage", stage, "-log-to-stdout"])
            .arg("-root")
            .arg(root)
            .arg("-config-cache")
            .arg(work.join("cache.json"))
            .arg("-state-file")
            .arg(work.join("state"))
            .env("IGNITION_CONFIG_FILE", config)
            .output()
            .unwrap();
        log.push_str(&String::from_utf8_lossy(&out.stdout));
        log.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    log
}

fn run_real_ignition(config: &Path, root: &Path, work: &Path) -> String {
    let log = real_ignition_log(config, root, work, &["fetch", "files"]);
    // Debian's build ends the files stage with a SELinux relabel error after writing everything.
    let unexpected: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CRITICAL") && !l.contains("relabel"))
        .collect();
    assert!(unexpected.is_empty(), "real Ignition failed:\n{log}");
    log
}

/// Applies `config` with both implementations (each root prepared by `prepare`) and compares.
fn differential(name: &str, config: &str, prepare: impl Fn(&Path)) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let cfg = tmp.path().join("config.ign");
    std::fs::write(&cfg, config).unwrap();
    let (real, ours) = (
        tmp.path().join("ignition-root"),
        tmp.path().join("kiln-root"),
    );
    for root in [&real, &ours] {
        seed_root(root);
        std::fs::create_dir_all(root.join("var/lib/kiln")).unwrap();
        prepare(root);
    }
    run_real_ignition(&cfg, &real, tmp.path());
    let out = firstboot(&[
        "apply",
        "--root",
        ours.to_str().unwrap(),
        "--user-data",
        cfg.to_str().unwrap(),
    ]);
    assert!(
        out.ok,
        "{name}: kiln-firstboot apply failed:\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("hello world"),
        "file contents leaked into logs"
    );
    let mut a = snapshot(&real, &ARTIFACTS);
    let mut b = snapshot(&ours, &ARTIFACTS);
    for snap in [&mut a, &mut b] {
        sort_lines(snap, "etc/systemd/system-preset/20-ignition.preset");
    }
    assert_same(&format!("{name}: ignition"), &a, "kiln", &b);
    // The seed alone is 5 entries (etc and its four databases).
    assert!(
        a.len() > 5,
        "{name}: the config wrote nothing: {:?}",
        a.keys()
    );
}

/// Percent-encodes everything but unreserved characters (Ignition's data: URL parser is strict).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn gzip_base64(data: &[u8]) -> String {
    use base64::prelude::{Engine, BASE64_STANDARD};
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    BASE64_STANDARD.encode(e.finish().unwrap())
}

fn sha512(data: &[u8]) -> String {
    let out = Command::new("sha512sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn files_directories_links_units_users() {
    let payload = b"compressed payload\n";
    let config = format!(
        r#"{{"ignition":{{"version":"3.3.0"}},
 "storage":{{
  "files":[
   {{"path":"/etc/hello","contents":{{"source":"data:,hello%20world"}},"mode":420}},
   {{"path":"/opt/bin/tool.sh","contents":{{"source":"data:;base64,ZWNobyBoaQo="}},"mode":493,"user":{{"name":"nobody"}},"group":{{"id":100}}}},
   {{"path":"/etc/app.conf","append":[{{"source":"data:,line1%0A"}},{{"source":"data:,line2%0A"}}]}},
   {{"path":"/etc/gz.txt","contents":{{"source":"data:;base64,{gz}","compression":"gzip","verification":{{"hash":"sha512-{hash}"}}}},"mode":384}},
   {{"path":"/etc/existing.conf","overwrite":true,"contents":{{"source":"data:,new"}}}},
   {{"path":"/etc/keep.conf","mode":256}},
   {{"path":"/home/core/owned","contents":{{"source":"data:,x"}},"user":{{"name":"core"}},"group":{{"name":"kiln"}}}},
   {{"path":"/etc/empty"}}
  ],
  "directories":[{{"path":"/var/lib/foo","mode":448}},{{"path":"/srv/a/b/c","user":{{"id":65534}}}}],
  "links":[{{"path":"/etc/l1","target":"/etc/hello"}},{{"path":"/etc/h1","target":"/etc/hello","hard":true}},{{"path":"/usr/local/bin/rel","target":"../../../opt/bin/tool.sh"}}]}},
 "systemd":{{"units":[
   {{"name":"a.service","enabled":true,"contents":"[Unit]\nDescription=a\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"}},
   {{"name":"b.service","mask":true}},
   {{"name":"c.service","enabled":false}},
   {{"name":"d.service","dropins":[{{"name":"10-x.conf","contents":"[Service]\nEnvironment=X=1\n"}}]}}]}},
 "passwd":{{
   "users":[{{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA test","ssh-rsa BBBB other"],"groups":["sudo"]}},
            {{"name":"svc","uid":2001,"system":true,"noCreateHome":true,"shell":"/usr/sbin/nologin"}}],
   "groups":[{{"name":"kiln","gid":4242}}]}}}}"#,
        gz = gzip_base64(payload),
        hash = sha512(payload),
    );
    differential("mixed", &config, |root| {
        std::fs::write(root.join("etc/existing.conf"), "old").unwrap();
        std::fs::write(root.join("etc/keep.conf"), "keep me").unwrap();
        std::fs::create_dir_all(root.join("etc/systemd/system/multi-user.target.wants")).unwrap();
        std::os::unix::fs::symlink(
            "/etc/systemd/system/c.service",
            root.join("etc/systemd/system/multi-user.target.wants/c.service"),
        )
        .unwrap();
    });
}

#[test]
fn merge_and_replace_of_inline_configs() {
    let child = r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"/etc/a","mode":384},{"path":"/etc/child","contents":{"source":"data:,from%20child"}}]},"systemd":{"units":[{"name":"x.service","enabled":true}]}}"#;
    let encoded = percent_encode(child);
    let merge = format!(
        r#"{{"ignition":{{"version":"3.3.0","config":{{"merge":[{{"source":"data:,{encoded}"}}]}}}},
 "storage":{{"files":[{{"path":"/etc/a","contents":{{"source":"data:,parent"}}}},{{"path":"/etc/b","contents":{{"source":"data:,b"}}}}]}},
 "systemd":{{"units":[{{"name":"x.service","contents":"[Service]\nExecStart=/bin/true\n"}}]}}}}"#
    );
    differential("merge", &merge, |_| {});
    let replace = format!(
        r#"{{"ignition":{{"version":"3.3.0","config":{{"replace":{{"source":"data:,{encoded}"}}}}}},
 "storage":{{"files":[{{"path":"/etc/ignored","contents":{{"source":"data:,parent"}}}}]}}}}"#
    );
    differential("replace", &replace, |_| {});
}

#[test]
fn spec_3_0_and_3_1_configs() {
    for version in ["3.0.0", "3.1.0", "3.2.0"] {
        let config = format!(
            r#"{{"ignition":{{"version":"{version}"}},"storage":{{"files":[{{"path":"/etc/v","contents":{{"source":"data:,{version}"}},"mode":416}}],
             "directories":[{{"path":"/var/x"}}]}},"passwd":{{"users":[{{"name":"ops","sshAuthorizedKeys":["ssh-ed25519 CCCC ops"]}}]}}}}"#
        );
        differential(version, &config, |_| {});
    }
}

#[test]
fn remote_sources_with_hashes() {
    let body = b"served over http\n".to_vec();
    let base = serve(vec![("/file.txt", body.clone()), ("/child.ign", br#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/etc/from-merged-url","contents":{"source":"data:,merged"}}]}}"#.to_vec())]);
    let config = format!(
        r#"{{"ignition":{{"version":"3.3.0","config":{{"merge":[{{"source":"{base}/child.ign"}}]}}}},
 "storage":{{"files":[
   {{"path":"/etc/remote.txt","contents":{{"source":"{base}/file.txt","verification":{{"hash":"sha512-{hash}"}}}},"mode":384}},
   {{"path":"/etc/appended","append":[{{"source":"{base}/file.txt"}}]}}]}}}}"#,
        hash = sha512(&body)
    );
    differential("remote", &config, |_| {});
}

#[test]
fn modes_of_replaced_files_and_special_bits() {
    let config = r#"{"ignition":{"version":"3.2.0"},"storage":{"files":[
        {"path":"/etc/suid","overwrite":true,"contents":{"source":"data:,new"}},
        {"path":"/etc/kept","mode":384},
        {"path":"/usr/local/bin/special","contents":{"source":"data:,x"},"mode":1377}],
      "directories":[{"path":"/srv/sticky","mode":1023}]}}"#;
    differential("modes", config, |root| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(root.join("etc/suid"), "old").unwrap();
        std::fs::set_permissions(
            root.join("etc/suid"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        std::fs::write(root.join("etc/kept"), "keep").unwrap();
    });
}

/// Whether the real Ignition refuses `config` as invalid in its fetch stage, and its message.
fn real_ignition_verdict(config: &str, work: &Path) -> (bool, String) {
    let cfg = work.join("config.ign");
    std::fs::write(&cfg, config).unwrap();
    let root = work.join("ignition-root");
    seed_root(&root);
    let log = real_ignition_log(&cfg, &root, work, &["fetch"]);
    (log.contains("config is not valid"), log)
}

/// Configs the real Ignition refuses at validation are refused by kiln too, before anything
/// is written; and a config that only differs by not repeating itself is accepted by both.
#[test]
fn duplicates_and_unsimplified_paths_are_refused_like_ignition() {
    let file = |p: &str| format!(r#"{{"path":"{p}","contents":{{"source":"data:,x"}}}}"#);
    let unit = |extra: &str| format!(r#"{{"name":"a.service"{extra}}}"#);
    let bodies = [
        (true, format!(r#""storage":{{"files":[{},{}]}}"#, file("/etc/a"), file("/etc/a"))),
        (true, format!(r#""storage":{{"files":[{}],"links":[{{"path":"/etc/a","target":"/x"}}]}}"#, file("/etc/a"))),
        (true, format!(r#""storage":{{"files":[{}]}}"#, file("/etc//a"))),
        (true, r#""storage":{"directories":[{"path":"/etc/d/"}]}"#.into()),
        (true, format!(r#""systemd":{{"units":[{},{}]}}"#, unit(r#","contents":"[Unit]""#), unit(r#","enabled":true"#))),
        (true, r#""systemd":{"units":[{"name":"a.service","dropins":[{"name":"x.conf"},{"name":"x.conf"}]}]}"#.into()),
        (true, r#""passwd":{"users":[{"name":"a"},{"name":"a"}]}"#.into()),
        (true, r#""passwd":{"users":[{"name":"a","sshAuthorizedKeys":["k","k"]}]}"#.into()),
        (false, format!(r#""storage":{{"files":[{},{}]}}"#, file("/etc/a"), file("/etc/b"))),
    ];
    for (i, (refused, body)) in bodies.iter().enumerate() {
        let config = format!(r#"{{"ignition":{{"version":"3.3.0"}},{body}}}"#);
        let tmp = tempfile::tempdir().unwrap();
        let (real_refused, log) = real_ignition_verdict(&config, tmp.path());
        assert_eq!(real_refused, *refused, "case {i}: real Ignition:\n{log}");
        let root = tmp.path().join("kiln-root");
        seed_root(&root);
        let before = snapshot(&root, &[]);
        let cfg = tmp.path().join("config.ign");
        let out = firstboot(&[
            "apply",
            "--root",
            root.to_str().unwrap(),
            "--user-data",
            cfg.to_str().unwrap(),
        ]);
        assert_eq!(!out.ok, *refused, "case {i}: kiln: {}", out.stderr);
        if *refused {
            assert_same(
                &format!("case {i}: before"),
                &before,
                "after",
                &snapshot(&root, &[]),
            );
        }
    }
}

/// A file entry on an existing symlink (`/etc/resolv.conf` on most systems): Ignition replaces
/// it only with `overwrite: true` and refuses it otherwise, with contents or with append only.
#[test]
fn files_on_existing_symlinks_follow_ignition() {
    let link = |root: &Path| {
        std::fs::create_dir_all(root.join("run")).unwrap();
        std::fs::write(root.join("run/resolv.conf"), "old\n").unwrap();
        std::os::unix::fs::symlink("../run/resolv.conf", root.join("etc/resolv.conf")).unwrap();
    };
    let file = |entry: &str| {
        format!(
            r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{"files":[{{"path":"/etc/resolv.conf",{entry}}}]}}}}"#
        )
    };
    differential(
        "symlink replaced with overwrite",
        &file(r#""overwrite":true,"contents":{"source":"data:,ns"}"#),
        link,
    );
    for entry in [
        r#""contents":{"source":"data:,ns"}"#,
        r#""append":[{"source":"data:,ns"}]"#,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let config = file(entry);
        let cfg = tmp.path().join("config.ign");
        std::fs::write(&cfg, &config).unwrap();
        let real = tmp.path().join("ignition-root");
        seed_root(&real);
        link(&real);
        let log = real_ignition_log(&cfg, &real, tmp.path(), &["fetch", "files"]);
        assert!(
            log.contains("A non regular file exists there already"),
            "{entry}: real Ignition:\n{log}"
        );
        let ours = tmp.path().join("kiln-root");
        seed_root(&ours);
        link(&ours);
        let before = snapshot(&ours, &[]);
        let out = firstboot(&[
            "apply",
            "--root",
            ours.to_str().unwrap(),
            "--user-data",
            cfg.to_str().unwrap(),
        ]);
        assert!(
            !out.ok && out.stderr.contains("is not a regular file"),
            "{entry}: {}",
            out.stderr
        );
        assert_same(entry, &before, "after", &snapshot(&ours, &[]));
    }
}
