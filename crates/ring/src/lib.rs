//! The hash ring of every ringed component (ingesters, store-gateways, alertmanagers, rulers,
//! distributors), with Grafana dskit's semantics: u32 tokens, replica sets of the next RF
//! distinct instances clockwise (one per zone when zone-aware), extension past non-ACTIVE
//! instances, quorum on the extended set. Differences from dskit: read completeness is judged
//! per token range instead of ring-wide, health is judged against the KV's freshness instead
//! of the wall clock, and every member auto-forgets long-dead entries. See `docs/ring.md`.
//!
//! State lives in the cluster KV ([`strata_meta::KvStore`]), one key per instance.

mod config;
mod desc;
mod error;
mod hash;
mod http;
mod lifecycler;
mod metrics;
mod ring;
mod tokens;
mod watcher;

pub use config::{RingConfig, MAX_TOKENS};
pub use desc::{instance_key, ring_prefix, InstanceDesc, InstanceState};
pub use error::{RingError, UncoveredRange};
pub use hash::{key_token, series_token};
pub use http::{ring_router, InstanceStatus, RingStatus};
pub use lifecycler::{forget, Lifecycler, LifecyclerOptions};
pub use metrics::RingMetrics;
pub use ring::{Operation, ReplicaSet, Ring, RingOptions};
pub use watcher::{system_clock, Clock, RingWatcher, WatcherOptions};
