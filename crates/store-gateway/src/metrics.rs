use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Store-gateway metrics (`strata_store_gateway_*`).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub index_loads: Counter,
    pub index_load_failures: Counter,
    pub block_loads: Counter,
    pub block_load_failures: Counter,
    pub block_cache_hits: Counter,
    pub blocks_open: Gauge,
    pub blocks_open_bytes: Gauge,
    pub blocks_evicted: Counter,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("strata_store_gateway");
        r.register(
            "bucket_index_loads",
            "Bucket index reads",
            m.index_loads.clone(),
        );
        r.register(
            "bucket_index_load_failures",
            "Failed bucket index reads (the previous index stays in use)",
            m.index_load_failures.clone(),
        );
        r.register("block_loads", "Blocks opened", m.block_loads.clone());
        r.register(
            "block_load_failures",
            "Blocks that failed to open",
            m.block_load_failures.clone(),
        );
        r.register(
            "block_cache_hits",
            "Block lookups served by an open block",
            m.block_cache_hits.clone(),
        );
        r.register("blocks_open", "Blocks held open", m.blocks_open.clone());
        r.register(
            "blocks_open_bytes",
            "Estimated memory of open blocks",
            m.blocks_open_bytes.clone(),
        );
        r.register(
            "blocks_evicted",
            "Open blocks closed to stay within the memory budget",
            m.blocks_evicted.clone(),
        );
        m
    }
}
