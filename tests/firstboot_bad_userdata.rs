//! Bad user-data: one error naming the field, a non-zero exit, and nothing written to the root.

#[path = "firstboot/mod.rs"]
mod firstboot;

use std::fs;
use std::path::Path;

use firstboot::*;

fn rejected(name: &str, user_data: &str, needle: &str, prepare: impl Fn(&Path)) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    seed_root(&root);
    prepare(&root);
    let ud = tmp.path().join("ud");
    fs::write(&ud, user_data).unwrap();
    let before = snapshot(&root, &[]);
    let out = firstboot(&[
        "apply",
        "--root",
        root.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
    ]);
    assert!(!out.ok, "{name}: accepted");
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{name}: {}", out.stderr);
    assert!(
        errors[0].contains(needle),
        "{name}: {:?} lacks {needle:?}",
        errors[0]
    );
    assert_same(
        &format!("{name}: before"),
        &before,
        "after",
        &snapshot(&root, &[]),
    );
}

fn ign(body: &str) -> String {
    format!(r#"{{"ignition":{{"version":"3.3.0"}},{body}}}"#)
}

#[test]
fn ignition_errors_name_the_field() {
    let ok_file = r#"{"path":"/etc/ok","contents":{"source":"data:,ok"}}"#;
    let cases: Vec<(&str, String, &str)> = vec![
        ("invalid json", "{\"ignition\": ".into(), "invalid JSON"),
        (
            "spec 2",
            r#"{"ignition":{"version":"2.2.0"}}"#.into(),
            "ignition.version: Ignition spec 2.2.0 is not supported",
        ),
        (
            "unknown version",
            r#"{"ignition":{"version":"3.9.0"}}"#.into(),
            "unsupported Ignition spec version",
        ),
        (
            "bad base64",
            ign(&format!(
                r#""storage":{{"files":[{ok_file},{{"path":"/etc/x","contents":{{"source":"data:;base64,@@@"}}}}]}}"#
            )),
            "storage.files[1].contents.source",
        ),
        (
            "hash mismatch",
            ign(&format!(
                r#""storage":{{"files":[{ok_file},{{"path":"/etc/x","contents":{{"source":"data:,abc","verification":{{"hash":"sha512-00"}}}}}}]}}"#
            )),
            "storage.files[1].contents.verification.hash: hash mismatch",
        ),
        (
            "bad gzip",
            ign(
                r#""storage":{"files":[{"path":"/etc/x","contents":{"source":"data:,abc","compression":"gzip"}}]}"#,
            ),
            "storage.files[0].contents.compression: invalid gzip",
        ),
        (
            "relative path",
            ign(&format!(
                r#""storage":{{"files":[{ok_file},{{"path":"etc/x"}}]}}"#
            )),
            "storage.files[1].path",
        ),
        (
            "dotdot",
            ign(r#""storage":{"directories":[{"path":"/var/../../x"}]}"#),
            "storage.directories[0].path",
        ),
        (
            "disks",
            ign(r#""storage":{"disks":[{"device":"/dev/vda","wipeTable":true}]}"#),
            "storage.disks",
        ),
        (
            "file and dir",
            ign(&format!(
                r#""storage":{{"files":[{ok_file}],"directories":[{{"path":"/etc/ok"}}]}}"#
            )),
            "storage.directories[0]: duplicate entry: path \"/etc/ok\" is also given by storage.files[0]",
        ),
        // Ignition refuses these too ("duplicate entry defined", "path is not fully simplified").
        (
            "same file twice",
            ign(&format!(r#""storage":{{"files":[{ok_file},{ok_file}]}}"#)),
            "storage.files[1]: duplicate entry",
        ),
        (
            "same unit twice",
            ign(r#""systemd":{"units":[{"name":"a.service","contents":"[Unit]"},{"name":"a.service","enabled":true}]}"#),
            "systemd.units[1]: duplicate entry",
        ),
        (
            "unsimplified path",
            ign(&format!(r#""storage":{{"files":[{ok_file},{{"path":"/etc//x"}}]}}"#)),
            "storage.files[1].path: \"/etc//x\" is not fully simplified",
        ),
        (
            "unknown user",
            ign(&format!(
                r#""storage":{{"files":[{ok_file},{{"path":"/etc/y","user":{{"name":"nobody-here"}}}}]}}"#
            )),
            "storage.files[1].user: unknown user \"nobody-here\"",
        ),
        (
            "existing",
            ign(&format!(
                r#""storage":{{"files":[{ok_file},{{"path":"/etc/passwd","contents":{{"source":"data:,x"}}}}]}}"#
            )),
            "storage.files[1]: /etc/passwd already exists; set overwrite: true",
        ),
        (
            "hard link target",
            ign(r#""storage":{"links":[{"path":"/etc/h","target":"/nope","hard":true}]}"#),
            "storage.links[0].target: hard link target /nope is not an existing or planned regular file",
        ),
    ];
    for (name, ud, needle) in cases {
        rejected(name, &ud, needle, |_| {});
    }
}

#[test]
fn symlinks_escaping_the_root_are_refused() {
    let ud = ign(
        r#""storage":{"files":[{"path":"/etc/ok","contents":{"source":"data:,ok"}},{"path":"/escape/etc/shadow","contents":{"source":"data:,pwned"}}]}"#,
    );
    rejected(
        "escape",
        &ud,
        "storage.files[1].path: /escape/etc/shadow escapes the root",
        |root| {
            std::os::unix::fs::symlink("../../../../../../../..", root.join("escape")).unwrap();
        },
    );
}

#[test]
fn cloud_config_errors_name_the_field() {
    let cases = [
        ("yaml", "#cloud-config\nwrite_files: [\n", "invalid cloud-config YAML"),
        ("b64", "#cloud-config\nwrite_files:\n  - {path: /etc/a, content: ok}\n  - {path: /etc/b, content: '!!', encoding: b64}\n", "write_files[1].content: invalid base64"),
        ("relative", "#cloud-config\nwrite_files:\n  - {path: etc/a, content: x}\n", "write_files[0].path"),
        ("owner", "#cloud-config\nwrite_files:\n  - {path: /etc/a, content: x, owner: 'ghost:root'}\n", "write_files[0].user: unknown user \"ghost\""),
        ("group", "#cloud-config\nusers:\n  - {name: a, primary_group: nosuchgroup}\n", "unknown group \"nosuchgroup\""),
        ("format", "just some text\n", "unrecognised user-data format"),
        ("jinja", "## template: jinja\n#cloud-config\nhostname: {{ ds.meta_data.missing }}\n", "jinja template"),
    ];
    for (name, ud, needle) in cases {
        rejected(name, ud, needle, |_| {});
    }
}

#[test]
fn remote_hash_mismatch_and_missing_source_write_nothing() {
    let base = serve(vec![("/file.txt", b"tampered".to_vec())]);
    let ok_file = r#"{"path":"/etc/ok","contents":{"source":"data:,ok"}}"#;
    let mismatch = ign(&format!(
        r#""storage":{{"files":[{ok_file},{{"path":"/etc/x","contents":{{"source":"{base}/file.txt","verification":{{"hash":"sha256-{}"}}}}}}]}}"#,
        "0".repeat(64)
    ));
    rejected(
        "remote mismatch",
        &mismatch,
        "storage.files[1].contents.verification.hash: hash mismatch",
        |_| {},
    );
    let missing = ign(&format!(
        r#""storage":{{"files":[{ok_file},{{"path":"/etc/x","contents":{{"source":"{base}/nope"}}}}]}}"#
    ));
    rejected(
        "remote 404",
        &missing,
        "storage.files[1].contents.source: fetching",
        |_| {},
    );
    let scheme =
        ign(r#""storage":{"files":[{"path":"/etc/x","contents":{"source":"s3://bucket/key"}}]}"#);
    rejected(
        "scheme",
        &scheme,
        "storage.files[0].contents.source: s3: sources are not supported",
        |_| {},
    );
}

#[test]
fn impossible_trees_are_refused_before_writing() {
    let ok_file = r#"{"path":"/etc/ok","contents":{"source":"data:,ok"}}"#;
    let cases: Vec<(&str, String, &str)> = vec![
        ("nul byte", ign(&format!(r#""storage":{{"files":[{ok_file},{{"path":"/etc/a\u0000b"}}]}}"#)), "storage.files[1].path: the path contains a NUL byte"),
        ("file below file", ign(&format!(r#""storage":{{"files":[{ok_file},{{"path":"/etc/ok/inner","contents":{{"source":"data:,x"}}}}]}}"#)), "storage.files[1]: /etc/ok/inner is below /etc/ok, which storage.files[0] makes a file or link"),
        ("hard link to a directory", ign(&format!(r#""storage":{{"files":[{ok_file}],"links":[{{"path":"/etc/h","target":"/etc","hard":true}}]}}"#)), "storage.links[0].target: hard link target /etc is not an existing or planned regular file"),
        ("entry below a link", ign(&format!(r#""storage":{{"files":[{ok_file},{{"path":"/opt/a/b","contents":{{"source":"data:,x"}}}}],"links":[{{"path":"/opt/a","target":"/etc"}}]}}"#)), "/opt/a/b is below /opt/a, which storage.links[0] makes a file or link"),
    ];
    for (name, ud, needle) in cases {
        rejected(name, &ud, needle, |_| {});
    }
}

/// A named user-data, the error it must give, and how to prepare the root first.
type Case = (&'static str, String, &'static str, fn(&Path));

/// Everything apply writes is checked before the first effect: accounts, the host name, unit
/// files and drop-ins, the types of existing parents, /etc/skel, link targets, name lengths.
#[test]
fn everything_written_is_checked_before_the_first_effect() {
    let ok_file = r#"{"path":"/etc/ok","contents":{"source":"data:,ok"}}"#;
    let ok_group = r#"{"name":"first"}"#;
    let no_prep: fn(&Path) = |_| {};
    let cases: Vec<Case> = vec![
        (
            "gid conflict after a group",
            ign(&format!(r#""storage":{{"files":[{ok_file}]}},"passwd":{{"groups":[{ok_group},{{"name":"second","gid":27}}]}}"#)),
            "groups[1] (second): gid 27 already belongs to \"sudo\"",
            no_prep,
        ),
        (
            "user name that is an option",
            ign(&format!(r#""storage":{{"files":[{ok_file}]}},"passwd":{{"groups":[{ok_group}],"users":[{{"name":"core"}},{{"name":"-D"}}]}}"#)),
            "users[1] (-D): \"-D\" is not a valid user or group name",
            no_prep,
        ),
        (
            "hostname is a directory",
            "#cloud-config\nhostname: n1\nwrite_files:\n  - {path: /etc/ok, content: ok}\n".into(),
            "hostname: /etc/hostname is a directory",
            |root| fs::create_dir(root.join("etc/hostname")).unwrap(),
        ),
        (
            "drop-in path is a directory",
            ign(&format!(r#""storage":{{"files":[{ok_file}]}},"systemd":{{"units":[{{"name":"a.service","contents":"[Unit]\n","dropins":[{{"name":"x.conf","contents":"[Unit]\n"}}]}}]}}"#)),
            "/etc/systemd/system/a.service.d/x.conf is a directory",
            |root| fs::create_dir_all(root.join("etc/systemd/system/a.service.d/x.conf")).unwrap(),
        ),
        (
            "a regular file as a parent",
            ign(&format!(r#""storage":{{"files":[{ok_file},{{"path":"/opt/plain/x","contents":{{"source":"data:,x"}}}}],"directories":[{{"path":"/opt/new/dir"}}]}}"#)),
            "storage.files[1]: /opt/plain/x cannot be made: /opt/plain exists and is not a directory",
            |root| {
                fs::create_dir_all(root.join("opt")).unwrap();
                fs::write(root.join("opt/plain"), "file").unwrap();
            },
        ),
        (
            "skel collides with a planned file",
            ign(r#""storage":{"files":[{"path":"/home/core/.profile","contents":{"source":"data:,mine"}}]},"passwd":{"users":[{"name":"core"}]}"#),
            "storage.files[0]: /home/core/.profile collides with /etc/skel/.profile",
            |root| {
                fs::create_dir_all(root.join("etc/skel")).unwrap();
                fs::write(root.join("etc/skel/.profile"), "skel").unwrap();
            },
        ),
        (
            "symlink replaces the directory of a hard link's target",
            ign(&format!(r#""storage":{{"files":[{ok_file}],"links":[{{"path":"/opt/d","target":"/etc","overwrite":true}},{{"path":"/etc/h","target":"/opt/d/f","hard":true}}]}}"#)),
            "storage.links[1].target: hard link target /opt/d/f would no longer be reachable: storage.links[0] replaces /opt/d",
            |root| {
                fs::create_dir_all(root.join("opt/d")).unwrap();
                fs::write(root.join("opt/d/f"), "f").unwrap();
            },
        ),
        (
            "NUL in a symlink target",
            ign(&format!(r#""storage":{{"files":[{ok_file}],"links":[{{"path":"/etc/l","target":"/etc/a\u0000b"}}]}}"#)),
            "storage.links[0].target: the link target contains a NUL byte",
            no_prep,
        ),
        (
            "a name longer than NAME_MAX",
            ign(&format!(r#""storage":{{"files":[{ok_file},{{"path":"/etc/{}","contents":{{"source":"data:,x"}}}}]}}"#, "n".repeat(256))),
            "is longer than 255 bytes",
            no_prep,
        ),
    ];
    for (name, ud, needle, prepare) in cases {
        rejected(name, &ud, needle, prepare);
    }
}
