//! Errors of the ruler.

use std::fmt;
use thiserror::Error;

/// What is wrong with one group or rule. Messages are Prometheus's where it has one.
#[derive(Debug, Error)]
pub enum RuleErrorKind {
    #[error("Groupname must not be empty")]
    EmptyGroupName,
    #[error("groupname: {0:?} is repeated in the same file")]
    DuplicateGroup(String),
    #[error("only one of 'record' and 'alert' must be set")]
    BothRecordAndAlert,
    #[error("one of 'record' or 'alert' must be set")]
    NeitherRecordNorAlert,
    #[error("field 'expr' must be set in rule")]
    MissingExpr,
    #[error("could not parse expression: {0}")]
    Expr(String),
    /// `for`, `keep_firing_for` or `annotations` on a recording rule.
    #[error("invalid field '{0}' in recording rule")]
    RecordingField(&'static str),
    #[error("invalid recording rule name: {0}")]
    RecordName(String),
    #[error("invalid label name: {0}")]
    LabelName(String),
    #[error("invalid annotation name: {0}")]
    AnnotationName(String),
    /// A label or annotation template that does not parse.
    #[error("{kind} {name:?}: {source}")]
    Template {
        /// `label` or `annotation`.
        kind: &'static str,
        /// The label or annotation name.
        name: String,
        #[source]
        source: strata_template::TemplateError,
    },
}

/// A problem of one group, or of one rule in it.
#[derive(Debug, Error)]
pub struct RuleError {
    /// The group's name.
    pub group: String,
    /// The rule's 1-based position in the group and its name, for rule problems.
    pub rule: Option<(usize, String)>,
    #[source]
    pub kind: RuleErrorKind,
}

impl RuleError {
    pub(crate) fn group(group: &str, kind: RuleErrorKind) -> Self {
        Self {
            group: group.to_string(),
            rule: None,
            kind,
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.rule, &self.kind) {
            (Some((i, name)), k) => write!(f, "group {:?}, rule {i}, {name:?}: {k}", self.group),
            // Prometheus's own group messages already name the group.
            (None, k @ (RuleErrorKind::EmptyGroupName | RuleErrorKind::DuplicateGroup(_))) => {
                write!(f, "{k}")
            }
            (None, k) => write!(f, "group {:?}: {k}", self.group),
        }
    }
}

/// A rule file that does not load.
#[derive(Debug, Error)]
pub enum RuleFileError {
    /// Not YAML, or not the rule-file structure (unknown fields, wrong types).
    #[error("{file}: {source}")]
    Yaml {
        file: String,
        #[source]
        source: serde_yaml::Error,
    },
    /// Groups or rules are invalid; every problem is listed.
    #[error("{file}: {}", .errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid {
        file: String,
        errors: Vec<RuleError>,
    },
}

/// Why one rule's evaluation failed (the rule's `lastError`; counted in
/// `prometheus_rule_evaluation_failures_total`).
#[derive(Debug, Error)]
pub enum EvalFailure {
    /// The query failed.
    #[error(transparent)]
    Query(#[from] strata_promql::EvalError),
    /// The expression returned a range vector or a string.
    #[error("rule result is not a vector or scalar")]
    NotAVector,
    #[error("vector contains metrics with the same labelset after applying rule labels")]
    DuplicateRecorded,
    #[error("vector contains metrics with the same labelset after applying alert labels")]
    DuplicateAlert,
    #[error("exceeded limit of {limit} with {got} series")]
    SeriesLimit { limit: i64, got: usize },
    #[error("exceeded limit of {limit} with {got} alerts")]
    AlertLimit { limit: i64, got: usize },
    /// Writing the results failed.
    #[error("writing the rule's samples: {0}")]
    Push(#[from] strata_storage::PushError),
}

/// A ruler operation failed.
#[derive(Debug, Error)]
pub enum RulerError {
    /// The configuration is invalid; `field` is its YAML path.
    #[error("invalid ruler configuration: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    /// A stored or uploaded rule group is invalid.
    #[error(transparent)]
    RuleFile(#[from] RuleFileError),
    /// The rule store in the bucket failed.
    #[error("rule store: {0}")]
    Bucket(#[source] strata_storage::bucket::BucketError),
    /// A rule group could not be encoded or decoded.
    #[error("cannot encode or decode {what}: {source}")]
    Decode {
        what: String,
        #[source]
        source: serde_yaml::Error,
    },
}

/// A request to the ruler's HTTP APIs failed; each variant is one status code.
#[derive(Debug, Error)]
pub enum ApiError {
    /// No or a bad tenant (401).
    #[error(transparent)]
    Tenant(#[from] strata_model::TenantError),
    /// The request is invalid (400, `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// Nothing there (404).
    #[error("{0}")]
    NotFound(&'static str),
    /// The rule store failed (500).
    #[error(transparent)]
    Ruler(#[from] RulerError),
    /// Another ruler did not answer its share of a rules or alerts listing (503).
    #[error("ruler {id} at {addr} did not answer: {reason}")]
    Peer {
        id: String,
        addr: String,
        reason: String,
    },
}
