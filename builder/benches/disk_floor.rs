//! Disk build against its floor, side by side in one run: a plain `mmdebstrap` of the recipe's
//! packages from the same local mirror (what any Debian image build must at least do), then
//! `kiln build` of images/debian-12.toml cold (empty cache) and warm (cached downloads, images
//! and Debian root), each as a multiple of the floor; and the extra time of dm-verity: the
//! hash-tree phase of the warm build and a warm build with `verity = false`; and the extra time
//! of signing /usr's root hash (a warm build with `--signing-key`, a test RSA key). Uses the
//! stand-in release and the local mirror of the disk e2e test (needs .ci/setup).

#[path = "../../tests/support/mod.rs"]
#[allow(missing_docs)]
mod support;

#[path = "../../tests/disk/mod.rs"]
#[allow(missing_docs)]
mod disk;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use kiln::bake::outputs::disk::rootfs;
use kiln::bake::recipe::Recipe;

/// Seconds of a plain mmdebstrap of the recipe's packages from the local mirror into a tarball.
fn floor(recipe: &str, dir: &Path) -> f64 {
    let mut plan = Recipe::parse(recipe).unwrap().disk_plan().unwrap().unwrap();
    plan.rootfs.mirror = format!("file://{}", disk::LOCAL_MIRROR);
    let tar = dir.join("floor.tar");
    let start = Instant::now();
    let status = Command::new("mmdebstrap")
        .args(["--quiet", "--mode=root", "--format=tar"])
        .arg(format!("--variant={}", plan.rootfs.variant))
        .arg(format!("--include={}", plan.rootfs.packages.join(",")))
        .arg(&plan.rootfs.suite)
        .arg(&tar)
        .arg(rootfs::sources_line(&plan))
        .status()
        .unwrap();
    assert!(status.success(), "mmdebstrap failed");
    let secs = start.elapsed().as_secs_f64();
    std::fs::remove_file(tar).unwrap();
    secs
}

/// Seconds of `kiln build` of `recipe` with `cache` and `extra` arguments, and its phases
/// (name, seconds) from its report.
fn build(
    sources: &disk::Sources,
    (recipe, extra): (&str, &[String]),
    dir: &Path,
    cache: &Path,
) -> (f64, Vec<(String, f64)>) {
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let report = dir.join("report.json");
    let mut args = vec!["--report", report.to_str().unwrap()];
    args.extend(extra.iter().map(String::as_str));
    let start = Instant::now();
    let (ok, _, stderr) = sources.build_with("debian-12", recipe, cache, &out, &args);
    assert!(ok, "{stderr}");
    let secs = start.elapsed().as_secs_f64();
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let phases = value["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| Some((p["name"].as_str()?.to_owned(), p["seconds"].as_f64()?)))
        .collect();
    (secs, phases)
}

/// The seconds of the phase `name` among `phases`.
fn phase(phases: &[(String, f64)], name: &str) -> f64 {
    phases
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, s)| s)
        .sum()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of tests
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let recipe = std::fs::read_to_string(disk::RECIPE).unwrap();
    let sources = disk::Sources::start(dir, &recipe);
    let cache = dir.join("cache");
    let floor = floor(&recipe, dir);
    let (cold, cold_phases) = build(&sources, (&recipe, &[]), dir, &cache);
    let (warm, warm_phases) = build(&sources, (&recipe, &[]), dir, &cache);
    let hash_tree = phase(&warm_phases, "dm-verity hash tree (/usr)");
    let plain = recipe.replace("verity = true", "verity = false");
    assert_ne!(plain, recipe, "the recipe's verity line changed");
    let (warm_plain, _) = build(&sources, (&plain, &[]), dir, &cache);
    let signed = (recipe.as_str(), disk::signing_args(dir));
    let (warm_signed, _) = build(&sources, (signed.0, &signed.1), dir, &cache);
    println!("floor (plain mmdebstrap, same packages and mirror): {floor:.1} s");
    println!(
        "kiln build cold: {cold:.1} s = {:.2}x the floor",
        cold / floor
    );
    println!(
        "kiln build warm: {warm:.1} s = {:.2}x the floor",
        warm / floor
    );
    println!(
        "dm-verity: hash tree {hash_tree:.2} s; warm build without verity {warm_plain:.1} s ({:+.1} s with it)",
        warm - warm_plain
    );
    println!(
        "signing /usr's root hash: warm signed build {warm_signed:.1} s ({:+.1} s)",
        warm_signed - warm
    );
    let mmdebstrap = phase(&cold_phases, "Debian root (mmdebstrap)");
    println!("cold build's mmdebstrap: {mmdebstrap:.1} s; the warm build's phases:");
    for (name, secs) in &warm_phases {
        println!("  {name:<48} {secs:>6.1} s");
    }
}
