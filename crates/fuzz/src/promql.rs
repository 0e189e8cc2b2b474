//! `promql`: a query text through the querier's steps: `parse_checked` with the querier's
//! default limits (length and nesting depth), `format_query`'s pretty-printing, then, when it
//! parses, evaluation as an instant query and as a range query against a small fixed
//! in-memory store, with a short timeout and a small sample budget so that an expensive query
//! ends in a limit error instead of a hang or an allocation out of proportion to the data.

use crate::runtime::block_on;
use std::time::Duration;
use strata_model::TenantId;
use strata_promql::testing::MemStore;
use strata_promql::{Engine, EngineOptions};

/// The querier's default `max_query_bytes`.
pub const MAX_QUERY_BYTES: usize = 256 << 10;
/// The querier's default `max_query_depth`.
pub const MAX_QUERY_DEPTH: usize = 128;
/// Most samples a fuzzed query may hold (the store holds ~5,000).
pub const MAX_SAMPLES: usize = 200_000;
/// Wall-clock budget of one evaluation.
pub const TIMEOUT: Duration = Duration::from_secs(2);

thread_local! {
    static STORE: MemStore = {
        let mut s = MemStore::new();
        for (labels, samples) in crate::fixture::series() {
            s.add(labels, samples);
        }
        s
    };
}

fn engine() -> Engine {
    Engine::new(EngineOptions {
        max_samples: MAX_SAMPLES,
        timeout: TIMEOUT,
        max_query_bytes: MAX_QUERY_BYTES,
        max_query_depth: MAX_QUERY_DEPTH,
        ..EngineOptions::default()
    })
}

/// Body of the `promql` target: `data` is the query text.
pub fn run(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = strata_promql::parse_checked(query, MAX_QUERY_BYTES, MAX_QUERY_DEPTH) else {
        return;
    };
    // What `format_query` answers, and what error messages quote.
    let _ = expr.prettify();
    let _ = expr.to_string();
    let engine = engine();
    let tenant = TenantId::new("fuzz").expect("a fixed valid tenant");
    let mid = (crate::fixture::START_MS + crate::fixture::END_MS) / 2;
    STORE.with(|store| {
        let _ = block_on(engine.instant(store, &tenant, query, mid));
        let _ = block_on(engine.range(
            store,
            &tenant,
            query,
            mid - 10 * 60_000,
            mid + 10 * 60_000,
            60_000,
        ));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_promql::QueryValue;

    #[test]
    fn the_store_answers_queries() {
        let engine = engine();
        let tenant = TenantId::new("fuzz").unwrap();
        let r = STORE
            .with(|s| {
                block_on(engine.instant(
                    s,
                    &tenant,
                    "sum by (code) (rate(http_requests_total[5m]))",
                    30 * 60_000,
                ))
            })
            .unwrap();
        match r.value {
            QueryValue::Vector(v) => assert_eq!(v.len(), 2),
            other => panic!("{other:?}"),
        }
        run(b"histogram_quantile(0.9, rate(request_duration_seconds_bucket[5m]))");
    }

    #[test]
    fn an_expensive_query_hits_the_sample_budget() {
        let engine = engine();
        let tenant = TenantId::new("fuzz").unwrap();
        let r = STORE.with(|s| {
            block_on(engine.instant(
                s,
                &tenant,
                "count_over_time({job=\"api\"}[1h:1ms])",
                3_600_000,
            ))
        });
        assert!(
            matches!(r, Err(strata_promql::EvalError::Limit(_))),
            "{r:?}"
        );
    }
}
