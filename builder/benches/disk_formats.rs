//! Disk format conversion benchmark: a sparse test raw disk (1 GiB, 256 MiB of data in 1 MiB
//! runs with holes between them, the data partly compressible) converted to each format one at
//! a time, then all at once as `kiln build` does; seconds and MB/s of raw image size (virtual)
//! and of data. Needs qemu-img, tar and gzip. `KILN_BENCH_RAW=PATH` benchmarks a raw disk of
//! your own instead (e.g. a built disk.raw).

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use kiln::bake::outputs::disk::formats::{self, Format, ALL};
use kiln::bake::phases::Phases;

const MIB: u64 = 1 << 20;

/// A sparse raw disk at `path`: `size` bytes, `data` bytes of it written in 1 MiB runs.
fn sparse_raw(path: &Path, size: u64, data: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let runs = data / MIB;
    let stride = size / runs;
    let mut block = vec![0u8; MIB as usize];
    let mut x: u32 = 0x9e37_79b9;
    for run in 0..runs {
        // Half of each run pseudo-random (incompressible), half text (compressible).
        for (i, b) in block.iter_mut().enumerate() {
            *b = if i < (MIB / 2) as usize {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            } else {
                b"kubernetes node image "[i % 22]
            };
        }
        f.seek(SeekFrom::Start(run * stride)).unwrap();
        f.write_all(&block).unwrap();
    }
    f.sync_all().unwrap();
}

fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of tests
    }
    if let Err(e) = formats::check_tools(&ALL) {
        println!("skipped: {e:#}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let raw = match std::env::var_os("KILN_BENCH_RAW") {
        Some(path) => path.into(),
        None => {
            let raw = tmp.path().join("disk.raw");
            sparse_raw(&raw, 1 << 30, 256 * MIB);
            raw
        }
    };
    let size = std::fs::metadata(&raw).unwrap().len();
    let data = allocated(&raw);
    println!(
        "raw image: {:.0} MiB virtual, {:.0} MiB allocated ({})",
        size as f64 / MIB as f64,
        data as f64 / MIB as f64,
        raw.display()
    );
    println!(
        "{:<8} {:>9} {:>14} {:>14} {:>12}",
        "format", "seconds", "MB/s (image)", "MB/s (data)", "output MiB"
    );
    let row = |what: &str, secs: f64, out: Option<u64>| {
        println!(
            "{what:<8} {secs:>9.2} {:>14.0} {:>14.0} {:>12}",
            size as f64 / 1e6 / secs,
            data as f64 / 1e6 / secs,
            out.map(|b| format!("{:.0}", b as f64 / MIB as f64))
                .unwrap_or_default()
        )
    };
    let conversions: Vec<Format> = ALL.into_iter().filter(|f| *f != Format::Raw).collect();
    for &format in &conversions {
        let dir = tempfile::tempdir_in(tmp.path()).unwrap();
        let out = dir.path().join(format.file());
        let start = Instant::now();
        formats::convert(&raw, format, &out).unwrap();
        let secs = start.elapsed().as_secs_f64();
        row(format.name(), secs, Some(allocated(&out)));
    }
    let dir = tempfile::tempdir_in(tmp.path()).unwrap();
    let jobs = kiln::bake::pool::default_jobs();
    let start = Instant::now();
    formats::convert_all(&raw, &ALL, dir.path(), jobs, &Phases::quiet()).unwrap();
    row(&format!("all/{jobs}"), start.elapsed().as_secs_f64(), None);
    println!("(all/N: the five conversions, N at a time, as `kiln build` runs them)");
}
