//! PromQL evaluation with Prometheus 3.x semantics over any [`strata_storage::Queryable`].
//!
//! Parsing is `promql-parser`'s. Evaluation works a whole node at a time over every step of the
//! query: a selector walks each series once across all steps, range functions slide a window
//! over each series' samples, aggregations fold series into per-group, per-step accumulators.
//! Instant queries are range queries of one step.

mod engine;
mod error;
mod eval;
pub mod functions;
pub mod limits;
pub mod testing;
mod value;

pub use engine::{
    selector_matchers, Engine, EngineOptions, SourceResolution, DEFAULT_MAX_QUERY_MEMORY_BYTES,
};
pub use error::EvalError;
pub use limits::{parse, parse_checked, QueryLimit};
pub use value::{InstantSample, QueryResult, QueryValue};
