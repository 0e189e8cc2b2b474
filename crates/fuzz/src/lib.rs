//! The bodies of Strata's fuzz targets, shared by the `cargo fuzz` targets in `fuzz/` (nightly,
//! libFuzzer, coverage-guided, the long runs) and by the stable replay test in `tests/`
//! (`fuzz_replay`), which feeds every committed corpus file plus a bounded number of
//! deterministic mutations through the same functions on every CI run.
//!
//! Each target takes arbitrary bytes and drives one parser of untrusted input the way the
//! server does. A target returns normally for every input, valid or not: a panic (including an
//! arithmetic overflow in a build with overflow checks) is a bug, as is an allocation or a run
//! time out of proportion to the input, which libFuzzer's `-rss_limit_mb`, `-malloc_limit_mb`
//! and `-timeout` catch in the long runs. Where a cheap oracle exists the target also checks a
//! property (a re-encoded batch decodes to the same series, a checkpoint restores the same
//! samples, a bad body is never answered with a 5xx) and panics when it does not hold.
//!
//! The corpus lives in `fuzz/corpus/<target>/`; [`seeds`] regenerates its generated part.
//! How to run the long runs, and their results: `docs/security.md`, section "Fuzzing".

mod error;
mod fixture;
mod runtime;

pub mod alertmanager_config;
pub mod dict;
pub mod mutate;
pub mod parquet_block;
pub mod promql;
pub mod remote_write;
pub mod seeds;
pub mod snappy_body;
pub mod wal_record;

pub use error::SeedError;

/// A fuzz target: the name of its `cargo fuzz` target and corpus directory, and its body.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Name of the `cargo fuzz` target, of `fuzz/corpus/<name>/` and of `fuzz/dict/<name>.dict`.
    pub name: &'static str,
    /// Runs one input. Panics only on a bug.
    pub run: fn(&[u8]),
    /// Longest input worth trying (libFuzzer's `-max_len`; the replay test's mutator cap).
    pub max_len: usize,
}

/// Every target, in the order the replay test and `fuzz/run.sh` go through them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "remote_write_v1",
        run: remote_write::v1,
        max_len: 64 << 10,
    },
    Target {
        name: "remote_write_v2",
        run: remote_write::v2,
        max_len: 64 << 10,
    },
    Target {
        name: "snappy_body",
        run: snappy_body::run,
        max_len: 64 << 10,
    },
    Target {
        name: "promql",
        run: promql::run,
        max_len: 4 << 10,
    },
    Target {
        name: "parquet_block",
        run: parquet_block::run,
        max_len: 32 << 10,
    },
    Target {
        name: "wal_record",
        run: wal_record::run,
        max_len: 64 << 10,
    },
    Target {
        name: "alertmanager_config",
        run: alertmanager_config::run,
        max_len: 16 << 10,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_are_unique_and_found() {
        for t in TARGETS {
            assert_eq!(target(t.name).map(|x| x.name), Some(t.name));
            assert_eq!(TARGETS.iter().filter(|u| u.name == t.name).count(), 1);
        }
        assert!(target("nope").is_none());
    }

    #[test]
    fn every_target_survives_empty_and_tiny_inputs() {
        for t in TARGETS {
            for input in [&b""[..], b"\0", b"\xff", b"\x01\x02\x03\x04"] {
                (t.run)(input);
            }
        }
    }
}
