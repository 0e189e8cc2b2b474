//! Query results as the API returns them.

use strata_model::Labels;
use strata_storage::query::Series;

/// One sample of an instant vector result.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    /// Milliseconds since the epoch (the evaluation time).
    pub t: i64,
    pub v: f64,
}

/// The value of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Scalar {
        t: i64,
        v: f64,
    },
    String {
        t: i64,
        s: String,
    },
    /// Instant query result: one sample per series.
    Vector(Vec<InstantSample>),
    /// Range query result, or an instant query of a range selector/subquery: series with their
    /// points, sorted by labels (unless the query orders them, e.g. `sort()` in an instant query).
    Matrix(Vec<Series>),
}

/// A query's value plus the annotations Prometheus reports alongside it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: QueryValue,
    /// `warnings` in the API response (e.g. "PromQL warning: ...").
    pub warnings: Vec<String>,
    /// `infos` in the API response (e.g. "PromQL info: metric might not be a counter ...").
    pub infos: Vec<String>,
}
