//! The stand-in kubeadm — **not the real kubeadm**. kubeadm and the kubelet cannot be obtained
//! in the test environment, so tests put this program where kiln expects kubeadm. It:
//!
//! - answers `kubeadm version -o short` with its version: `$KILN_STANDIN_KUBEADM_VERSION`, else
//!   the trailer at the end of its own executable ([`kiln_standins::with_version_trailer`]), else
//!   v1.31.2;
//! - answers `kubeadm config images list --kubernetes-version V [--image-repository R]
//!   [-o text|json]` ([`kiln_standins::images`]); `KILN_STANDIN_IMAGES_MODE` = `garbage` (junk on
//!   stdout, exit 0), `fail` (exit 1) or `hang` (never returns) for kiln's bad-input tests;
//! - for `init`, `join` and `config validate`, requires `--config FILE`, refuses flags kubeadm
//!   does not allow next to `--config`, and decodes FILE strictly as that kubeadm version would
//!   ([`kiln_standins::decode`]); `join` also needs a JoinConfiguration;
//! - appends `{argv, config}` as one YAML document to `$KILN_STANDIN_RECORD` (if set);
//! - with `KILN_STANDIN_FAIL_TIMES=N`, fails the first N `init`/`join` calls, counting in
//!   `$KILN_STANDIN_STATE` (default `$KILN_STANDIN_RECORD.count`);
//! - accepts `reset` (recorded, nothing done) for retry tests.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // kubeadm prefixes errors of its init/join phases with the phase.
            let phase = match argv.first().map(String::as_str) {
                Some("init" | "join") => "error execution phase preflight: ",
                _ => "",
            };
            eprintln!("{phase}{e}\n(stand-in kubeadm, not the real kubeadm)");
            ExitCode::FAILURE
        }
    }
}

fn version() -> String {
    kiln_standins::version::own_version()
}

fn minor(version: &str) -> Result<u32, String> {
    kiln_standins::version::parse(version)
        .map(|(_, minor, _)| minor)
        .ok_or_else(|| format!("stand-in kubeadm version {version:?} is not vX.Y.Z"))
}

/// Flags kubeadm accepts together with `--config`, per command (others: "can not mix
/// '--config' with arguments").
const INIT_FLAGS: &[&str] = &[
    "config",
    "v",
    "dry-run",
    "ignore-preflight-errors",
    "skip-phases",
    "upload-certs",
    "skip-token-print",
    "skip-certificate-key-print",
    "rootfs",
];
const JOIN_FLAGS: &[&str] = &[
    "config",
    "v",
    "dry-run",
    "ignore-preflight-errors",
    "skip-phases",
];
const VALIDATE_FLAGS: &[&str] = &["config", "v", "allow-experimental-api"];

fn run(argv: &[String]) -> Result<(), String> {
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["version", "-o", "short"] | ["version", "--output=short"] => {
            println!("{}", version());
            Ok(())
        }
        ["reset", ..] => record(argv, None),
        ["init", rest @ ..] => config_command(argv, rest, INIT_FLAGS),
        ["join", rest @ ..] => config_command(argv, rest, JOIN_FLAGS),
        ["config", "validate", rest @ ..] => config_command(argv, rest, VALIDATE_FLAGS),
        ["config", "images", "list", rest @ ..] => images_list(rest),
        _ => Err(format!("stand-in kubeadm does not implement {words:?}")),
    }
}

fn config_command(argv: &[String], rest: &[&str], allowed: &[&str]) -> Result<(), String> {
    let join = argv[0] == "join";
    let mut config = None;
    let mut flags = rest.iter();
    while let Some(arg) = flags.next() {
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(format!(
                "unexpected argument {arg:?} (kiln passes the endpoint in the config)"
            ));
        };
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (flag, None),
        };
        if !allowed.contains(&name) {
            return Err(format!("can not mix '--config' with arguments [{name}]"));
        }
        if name == "config" {
            config = value.or_else(|| flags.next().map(|s| s.to_string()));
        }
    }
    let path = config.ok_or("--config is required by the stand-in kubeadm")?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("unable to read config from {path:?}: {e}"))?;
    record(argv, Some(&text))?;
    let docs = kiln_standins::decode(&text, minor(&version())?)?;
    if join && !docs.iter().any(|d| d.kind == "JoinConfiguration") {
        return Err("no JoinConfiguration found in the supplied config".into());
    }
    if argv[0] != "config" {
        fail_on_purpose()?;
    }
    Ok(())
}

/// `kubeadm config images list`, after `KILN_STANDIN_IMAGES_MODE`.
fn images_list(rest: &[&str]) -> Result<(), String> {
    match std::env::var("KILN_STANDIN_IMAGES_MODE").as_deref() {
        Ok("garbage") => {
            println!("{{not json, not an image list ]]");
            return Ok(());
        }
        Ok("fail") => return Err("failing on purpose (KILN_STANDIN_IMAGES_MODE=fail)".into()),
        Ok("hang") => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        _ => {}
    }
    let flags = ImagesFlags::parse(rest)?;
    let list = kiln_standins::images::list(
        &version(),
        flags.version.as_deref(),
        flags.repository.as_deref(),
    )?;
    match flags.json {
        true => print!("{}", kiln_standins::images::json(&list)),
        false => list.iter().for_each(|i| println!("{i}")),
    }
    Ok(())
}

/// The flags of `kubeadm config images list` the stand-in knows.
#[derive(Default)]
struct ImagesFlags {
    version: Option<String>,
    repository: Option<String>,
    json: bool,
}

impl ImagesFlags {
    /// `--name value`, `--name=value` and `-o value`.
    fn parse(rest: &[&str]) -> Result<Self, String> {
        let mut flags = ImagesFlags::default();
        let mut args = rest.iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (*arg, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next().map(|s| s.to_string()))
                    .ok_or_else(|| format!("flag needs an argument: {name}"))
            };
            match name {
                "--kubernetes-version" => flags.version = Some(value()?),
                "--image-repository" => flags.repository = Some(value()?),
                "-o" | "--output" => {
                    flags.json = match value()?.as_str() {
                        "json" => true,
                        "text" => false,
                        other => {
                            return Err(format!(
                                "the stand-in kubeadm prints text or json, not {other:?}"
                            ))
                        }
                    }
                }
                _ => return Err(format!("unknown flag: {name}")),
            }
        }
        Ok(flags)
    }
}

fn record(argv: &[String], config: Option<&str>) -> Result<(), String> {
    let Ok(path) = std::env::var("KILN_STANDIN_RECORD") else {
        return Ok(());
    };
    let mut doc = serde_yaml_ng::Mapping::new();
    doc.insert(
        "argv".into(),
        argv.iter()
            .map(|a| a.as_str().into())
            .collect::<Vec<serde_yaml_ng::Value>>()
            .into(),
    );
    doc.insert(
        "config".into(),
        config.map_or(serde_yaml_ng::Value::Null, Into::into),
    );
    let text = serde_yaml_ng::to_string(&doc).map_err(|e| e.to_string())?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("---\n{text}").as_bytes()))
        .map_err(|e| format!("{path}: {e}"))
}

fn fail_on_purpose() -> Result<(), String> {
    let Some(times) = std::env::var("KILN_STANDIN_FAIL_TIMES")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
    else {
        return Ok(());
    };
    let state = std::env::var("KILN_STANDIN_STATE")
        .or_else(|_| std::env::var("KILN_STANDIN_RECORD").map(|r| format!("{r}.count")))
        .map_err(|_| "KILN_STANDIN_FAIL_TIMES needs KILN_STANDIN_STATE or KILN_STANDIN_RECORD")?;
    let done: u32 = std::fs::read_to_string(&state)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    std::fs::write(&state, format!("{}\n", done + 1)).map_err(|e| format!("{state}: {e}"))?;
    if done < times {
        return Err(format!(
            "failing on purpose: attempt {} of the first {times} (KILN_STANDIN_FAIL_TIMES)",
            done + 1
        ));
    }
    Ok(())
}
