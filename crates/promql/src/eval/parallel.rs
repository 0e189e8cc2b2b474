//! Per-series work spread over the machine's cores with scoped threads.
//!
//! Work is split into contiguous index ranges, one per worker, so results come back in series
//! order and are identical to a sequential run.

use std::sync::OnceLock;
use strata_model::Sample;

/// Below this many series the threads cost more than they save.
const MIN_SERIES_PER_WORKER: usize = 64;

fn workers() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(16)
    })
}

/// Computes `f(k, scratch)` for every `k < n`, in parallel, returning results in index order.
/// Each worker gets its own reusable sample buffer.
pub(crate) fn map_series<T, F>(n: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize, &mut Vec<Sample>) -> T + Sync,
{
    let w = workers().min(n / MIN_SERIES_PER_WORKER).max(1);
    if w == 1 {
        let mut buf = Vec::new();
        return (0..n).map(|k| f(k, &mut buf)).collect();
    }
    let per = n.div_ceil(w);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..w)
            .map(|i| {
                let range = (i * per)..((i + 1) * per).min(n);
                scope.spawn(move || {
                    let mut buf = Vec::new();
                    range.map(|k| f(k, &mut buf)).collect::<Vec<T>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}
