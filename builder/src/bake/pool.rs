//! The one bounded pool of worker threads: downloads, image pulls, disk format conversions and
//! output hashing run their items on it, a few at a time, results in the items' order.

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

/// Runs `work` on each of `items`, at most `parallel` at a time, and returns the results in the
/// order of `items`, or the first error in that order (after a failure no more work is handed
/// out, so every item before the failing one has finished).
pub fn all<T: Sync, R: Send>(
    items: &[T],
    parallel: usize,
    work: impl Fn(&T) -> anyhow::Result<R> + Sync,
) -> anyhow::Result<Vec<R>> {
    let mut out = Vec::with_capacity(items.len());
    for result in bounded(items, parallel, work) {
        match result {
            Some(r) => out.push(r?),
            None => anyhow::bail!("stopped after an earlier failure"),
        }
    }
    Ok(out)
}

/// Worker threads for CPU- or disk-bound work on this machine: its cores, 1 to 4.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
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
    fn all_gives_the_results_or_the_first_error() {
        let items: Vec<u32> = (0..10).collect();
        assert_eq!(
            all(&items, 3, |i| Ok(i + 1)).unwrap(),
            (1..11).collect::<Vec<_>>()
        );
        let err = all(&items, 2, |i| {
            anyhow::ensure!(*i < 4, "item {i}");
            Ok(*i)
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "item 4");
    }
}
