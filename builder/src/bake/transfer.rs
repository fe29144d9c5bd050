//! Download plumbing shared by release downloads (`fetch`) and image pulls (`oci::pull`): a
//! small bounded pool of worker threads, and the copy loop that reports progress.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs `work` on each of `items`, at most `parallel` at a time, and returns the results in the
/// order of `items`. After the first failure no more work is handed out (running work
/// finishes); items never started are `None`.
pub fn bounded<T: Sync, R: Send>(
    items: &[T],
    parallel: usize,
    work: impl Fn(&T) -> anyhow::Result<R> + Sync,
) -> Vec<Option<anyhow::Result<R>>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<anyhow::Result<R>>>> =
        Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..parallel.min(items.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() || failed.load(Ordering::SeqCst) {
                    return;
                }
                let result = work(&items[i]);
                if result.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Which side of a copy failed.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the source (a download: usually worth another try).
    Read(std::io::Error),
    /// Writing the destination (the cache).
    Write(std::io::Error),
}

/// Copies `from` into `to` in 256 KiB chunks, calling `progress` with the size of each; returns
/// the bytes copied.
pub fn copy_with_progress(
    from: &mut dyn Read,
    to: &mut dyn Write,
    progress: &dyn Fn(u64),
) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf).map_err(CopyError::Read)?;
        if n == 0 {
            return Ok(total);
        }
        to.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
        progress(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_their_order_and_a_failure_stops_new_work() {
        let items: Vec<u32> = (0..20).collect();
        let all = bounded(&items, 4, |i| Ok(i * 2));
        let doubled: Vec<u32> = all.into_iter().map(|r| r.unwrap().unwrap()).collect();
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());

        let some = bounded(&items, 1, |i| {
            anyhow::ensure!(*i != 3, "three");
            Ok(*i)
        });
        assert!(some[..3].iter().all(|r| matches!(r, Some(Ok(_)))));
        assert!(matches!(&some[3], Some(Err(e)) if e.to_string() == "three"));
        assert!(some[4..].iter().all(Option::is_none));
        assert!(bounded(&[] as &[u32], 4, |i| Ok(*i)).is_empty());
    }

    #[test]
    fn copies_report_progress_and_the_failing_side() {
        let seen = std::cell::Cell::new(0);
        let mut out = Vec::new();
        let data = vec![7u8; 600 << 10];
        let n =
            copy_with_progress(&mut &data[..], &mut out, &|n| seen.set(seen.get() + n)).unwrap();
        assert_eq!((n, seen.get(), out), (600 << 10, 600 << 10, data.clone()));
        let mut full = [0u8; 4];
        let err = copy_with_progress(&mut &data[..], &mut &mut full[..], &|_| {}).unwrap_err();
        assert!(matches!(err, CopyError::Write(_)), "{err:?}");
    }
}
