use crate::desc::InstanceState;
use std::fmt;
use std::path::PathBuf;
use strata_meta::KvError;
use thiserror::Error;

/// Why a ring lookup, a lifecycle step or a configuration check failed.
#[derive(Debug, Error)]
pub enum RingError {
    /// No instance of the ring holds tokens yet.
    #[error("empty ring: no instance holds tokens")]
    EmptyRing,
    /// Fewer healthy replicas than the quorum needs for one key.
    #[error(
        "at least {min_success} live replicas required, could only find {healthy}{}",
        unhealthy_suffix(unhealthy)
    )]
    TooFewHealthy {
        min_success: usize,
        healthy: usize,
        /// Ids of the replica set's members that are not healthy for the operation.
        unhealthy: Vec<String>,
    },
    /// Some token ranges lack a read quorum among the instances that answered.
    #[error(
        "{uncovered} token ranges lack a read quorum, e.g. {}",
        DisplayRanges(examples)
    )]
    ReadNotCovered {
        /// How many ranges (of distinct replica sets) are not covered.
        uncovered: usize,
        /// The first few of them.
        examples: Vec<UncoveredRange>,
    },
    #[error("invalid configuration: {field}: {reason}")]
    Config { field: String, reason: String },
    #[error("instance state change {from} -> {to} is not allowed")]
    InvalidTransition {
        from: InstanceState,
        to: InstanceState,
    },
    #[error("ring KV {op} of {key:?} failed")]
    Kv {
        op: &'static str,
        key: String,
        #[source]
        source: KvError,
    },
    #[error("ring entry {key:?} is not a valid instance record")]
    Decode {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("tokens file {path}")]
    TokensFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("instance {0:?} is not in the ring")]
    UnknownInstance(String),
    #[error("the lifecycler was stopped")]
    Stopped,
}

/// A token range `(start, end]` whose read replica set did not answer with a quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncoveredRange {
    /// Exclusive start token (the previous token on the ring).
    pub start: u32,
    /// Inclusive end token.
    pub end: u32,
    /// Answers needed from the range's read set.
    pub required: usize,
    /// Answers received from it.
    pub answered: usize,
    /// Members of the read set that did not answer.
    pub missing: Vec<String>,
    /// The missing members that were also unhealthy (stale heartbeat).
    pub unhealthy: Vec<String>,
}

fn unhealthy_suffix(unhealthy: &[String]) -> String {
    if unhealthy.is_empty() {
        " (the ring has fewer instances than the replication factor)".to_owned()
    } else {
        format!(" - unhealthy instances: {}", unhealthy.join(", "))
    }
}

struct DisplayRanges<'a>(&'a [UncoveredRange]);

impl fmt::Display for DisplayRanges<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(
                f,
                "({}, {}]: {} of {} required answered, missing {}",
                r.start,
                r.end,
                r.answered,
                r.required,
                r.missing.join(", ")
            )?;
            if !r.unhealthy.is_empty() {
                write!(f, " (unhealthy: {})", r.unhealthy.join(", "))?;
            }
        }
        Ok(())
    }
}
