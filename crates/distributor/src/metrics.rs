//! The distributor's own metrics (`strata_distributor_*`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: u16,
}

#[derive(Debug, Clone)]
pub struct Metrics {
    pub requests: Family<CodeLabels, Counter>,
    pub received_samples: Counter,
    pub discarded_samples: Family<ReasonLabels, Counter>,
    pub request_duration: Histogram,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            received_samples: Counter::default(),
            discarded_samples: Family::default(),
            request_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
        };
        let r = registry.sub_registry_with_prefix("strata_distributor");
        r.register(
            "requests",
            "Remote-write requests by response status",
            m.requests.clone(),
        );
        r.register(
            "received_samples",
            "Samples received in remote-write requests",
            m.received_samples.clone(),
        );
        r.register(
            "discarded_samples",
            "Samples not stored, by reason",
            m.discarded_samples.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time to handle a remote-write request",
            m.request_duration.clone(),
        );
        m
    }
}
