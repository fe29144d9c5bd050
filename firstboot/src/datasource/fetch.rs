//! Choosing a datasource, fetching from it and saving what it answered: shared by
//! `kiln-firstboot fetch` and the boot-time run.

use std::path::Path;

use anyhow::Context;
use kiln_core::fsutil::{write_atomic, MODE_SECRET};

use super::{by_name, detect, Choice, Env, Fetched};

/// Picks the datasource (`name`, or the search order) and fetches from it, logging which one
/// answered and why — never the user-data.
pub fn choose_and_fetch(env: &Env, name: Option<&str>) -> anyhow::Result<Fetched> {
    let choice = match name {
        Some(name) => Choice {
            source: by_name(name, env).context("--datasource")?,
            reason: "--datasource".into(),
        },
        None => detect(env).context("finding the datasource")?,
    };
    let name = choice.source.name();
    tracing::info!("datasource {name} chosen: {}", choice.reason);
    if !choice.source.local(env) {
        env.network_needed();
    }
    let fetched = choice
        .source
        .fetch(env)
        .with_context(|| format!("fetching from datasource {name}"))?;
    log_result(&fetched);
    Ok(fetched)
}

fn log_result(f: &Fetched) {
    let m = &f.metadata;
    match &f.user_data {
        Some(ud) => tracing::info!(
            "datasource {} answered: {} bytes of user-data",
            m.platform,
            ud.len()
        ),
        None => tracing::info!("datasource {} answered: no user-data", m.platform),
    }
    tracing::info!(
        "instance id {}, hostname {}",
        m.instance_id.as_deref().unwrap_or("-"),
        m.local_hostname.as_deref().unwrap_or("-")
    );
}

/// Writes each file atomically; files of a former run that this run did not find are removed.
/// Writes `user-data`, `network-config` and `metadata.json` into `dir` (mode 0600, atomically);
/// removes those of an earlier run that this one did not find.
pub fn save(dir: &Path, f: &Fetched) -> anyhow::Result<()> {
    let json = f.metadata.to_json();
    let files = [
        ("user-data", f.user_data.as_deref()),
        ("network-config", f.network_config.as_deref()),
        ("metadata.json", Some(json.as_bytes())),
    ];
    for (name, contents) in files {
        let path = dir.join(name);
        match contents {
            Some(bytes) => write_atomic(&path, bytes, MODE_SECRET)?,
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("removing stale {}", path.display()))
                }
                _ => {}
            },
        }
    }
    tracing::info!("wrote {}", dir.display());
    Ok(())
}
