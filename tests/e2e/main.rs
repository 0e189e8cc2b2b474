//! End-to-end tests: the real `strata` binary, driven over HTTP, next to a real Prometheus and
//! node_exporter. One test binary; each scenario lives in its own module.
//!
//! Run (the strata binary must be built first; this package does not build it):
//!
//! ```text
//! export CARGO_TARGET_DIR=$HOME/.cache/strata-target
//! cargo build -p strata && cargo test -p strata-tests -- --test-threads 1
//! ```
//!
//! Requirements: `apt-get install prometheus prometheus-node-exporter`. A missing binary fails
//! every test with a message naming it; nothing is skipped. `STRATA_BIN`, `PROMETHEUS_BIN` and
//! `NODE_EXPORTER_BIN` override the locations.

#![allow(clippy::print_stdout)]

mod alertmanager_ring;
mod auth_isolation;
mod bad_requests;
mod cluster_chaos;
mod cluster_tls;
mod downsampled_queries;
// Not end-to-end: the fuzz targets' corpus and bounded mutations, on stable (see the module).
mod fuzz_replay;
mod kill9;
mod long_term;
mod prometheus_series;
mod promql_side_by_side;
mod promtool;
mod query_frontend;
// The promqltest harness's parsers of the upstream test files (named `script` and `series` as
// they refer to each other by those paths), for promqltest_frontend.
mod promqltest_frontend;
mod ruler;
mod ruler_ha;
#[allow(dead_code)]
#[path = "../../crates/promql/tests/promqltest/script.rs"]
mod script;
#[allow(dead_code)]
#[path = "../../crates/promql/tests/promqltest/series.rs"]
mod series;
mod store_gateway_sharding;

use strata_tests::{check_executable, node_exporter_bin, prometheus_bin, strata_bin};

/// Fails the calling test, naming every missing binary and how to get it. Called first by every
/// test so that an incomplete environment is reported as such rather than as a strange failure
/// deeper in a scenario.
pub(crate) fn require_environment() {
    let checks = [
        check_executable(
            "strata binary",
            &strata_bin(),
            "build it first with `cargo build -p strata` (same CARGO_TARGET_DIR) or set STRATA_BIN",
        ),
        check_executable(
            "prometheus",
            &prometheus_bin(),
            "install it with `apt-get install prometheus` or set PROMETHEUS_BIN",
        ),
        check_executable(
            "node_exporter",
            &node_exporter_bin(),
            "install it with `apt-get install prometheus-node-exporter` or set NODE_EXPORTER_BIN",
        ),
    ];
    let missing: Vec<String> = checks.into_iter().filter_map(Result::err).collect();
    assert!(
        missing.is_empty(),
        "the e2e environment is incomplete:\n  - {}",
        missing.join("\n  - ")
    );
}
