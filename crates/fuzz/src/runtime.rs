//! One single-threaded tokio runtime per thread for the async parts of the targets (the block
//! reader, the distributor and the querier). libFuzzer calls a target millions of times from
//! one thread: building a runtime per input would cost more than most inputs.

use std::future::Future;

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        // The bucket bounds every operation with a tokio timer.
        .enable_time()
        .build()
        .expect("a current-thread tokio runtime builds");
}

/// Runs `f` to completion on this thread's runtime.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(f))
}
