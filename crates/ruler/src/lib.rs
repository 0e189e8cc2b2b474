//! The ruler: Prometheus recording and alerting rules per tenant, evaluated with the PromQL
//! engine over a [`strata_storage::Queryable`], results written through a
//! [`strata_storage::Pusher`] (so the write path's validation and limits apply), alerts sent to
//! Alertmanager.
//!
//! - [`rulefmt`]: the rule-file format and its validation (`promtool check rules` verdicts).
//! - [`rules`]: recording and alerting rules; the alert state machine (pending, firing,
//!   inactive; `for`, `keep_firing_for`, 15 min resolved retention; `ALERTS`,
//!   `ALERTS_FOR_STATE`).
//! - [`group`]: a group evaluated in order at one timestamp, stale markers, alerts to send.
//! - [`store`]: per-tenant groups in the bucket; [`api`]: the configuration and Prometheus
//!   APIs; [`notifier`]: sending alerts; [`ruler`]: the component tying them together.

pub mod api;
pub mod config;
pub mod duration;
mod error;
pub mod group;
pub mod metrics;
pub mod notifier;
pub mod rulefmt;
pub mod ruler;
pub mod rules;
pub mod sharding;
pub mod store;
pub mod template;
pub mod unittest;

pub use config::RulerConfig;
pub use error::{ApiError, EvalFailure, RuleError, RuleErrorKind, RuleFileError, RulerError};
pub use ruler::Ruler;
