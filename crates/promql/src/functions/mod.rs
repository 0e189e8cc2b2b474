//! PromQL function kernels, kept free of engine concerns so each can be tested alone.
//!
//! - [`range`]: functions over a window of samples (`rate`, `*_over_time`, …).
//! - [`instant`]: functions of one value (`abs`, `round`, `hour`, trig, …).
//! - [`histogram`]: classic-histogram `histogram_quantile` and the `quantile` kernel.
//!
//! The engine resolves names once per query and calls the kernels per series and step.

pub mod histogram;
pub mod instant;
pub mod range;

use strata_model::Sample;

/// One window handed to a range function.
#[derive(Debug, Clone, Copy)]
pub struct RangeWindow<'a> {
    /// The samples in `(start, end]`, in time order, stale markers already removed.
    pub samples: &'a [Sample],
    /// Window start (exclusive), milliseconds.
    pub start: i64,
    /// Window end (inclusive) = evaluation time after `offset`/`@`, milliseconds.
    pub end: i64,
    /// Scalar arguments at this step, in call order, excluding the range-vector argument
    /// (e.g. `[q]` for `quantile_over_time(q, x[5m])`, `[t]` for `predict_linear(x[5m], t)`).
    pub params: &'a [f64],
}

/// A range function: `None` means "no output point" for this window (e.g. `rate` with fewer
/// than two samples).
pub type RangeFn = fn(&RangeWindow<'_>) -> Option<f64>;

/// A function of one sample value. `params` are the extra scalar arguments at this step in
/// call order (e.g. `[to_nearest]` for `round`, `[min, max]` for `clamp`).
pub type InstantFn = fn(v: f64, params: &[f64]) -> f64;
