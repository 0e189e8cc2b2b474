use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

/// Query-frontend metrics (`strata_query_frontend_*`).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub range_queries: Counter,
    pub pieces: Counter,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub retries: Counter,
    pub cache_errors: Counter,
    pub sharded_queries: Counter,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("strata_query_frontend");
        r.register(
            "range_queries",
            "Range queries received",
            m.range_queries.clone(),
        );
        r.register(
            "split_queries",
            "Pieces range queries were split into",
            m.pieces.clone(),
        );
        r.register(
            "results_cache_hits",
            "Pieces answered from the results cache",
            m.cache_hits.clone(),
        );
        r.register(
            "results_cache_misses",
            "Cacheable pieces asked of a querier",
            m.cache_misses.clone(),
        );
        r.register(
            "retries",
            "Querier calls repeated after a 5xx or no answer",
            m.retries.clone(),
        );
        r.register(
            "results_cache_errors",
            "Results cache reads and writes that failed (counted as misses)",
            m.cache_errors.clone(),
        );
        r.register(
            "sharded_queries",
            "Range queries run as query shards and combined",
            m.sharded_queries.clone(),
        );
        m
    }
}
