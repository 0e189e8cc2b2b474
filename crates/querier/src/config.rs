//! Static configuration of the querier (`querier:` in the YAML file).

use crate::error::ApiError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuerierConfig {
    /// Most series one metadata or remote-read request may return.
    pub max_series_per_request: usize,
    /// Most samples one remote-read request may return.
    pub max_samples_per_read: usize,
}

impl Default for QuerierConfig {
    fn default() -> Self {
        Self {
            max_series_per_request: 500_000,
            max_samples_per_read: 50_000_000,
        }
    }
}

impl QuerierConfig {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.max_series_per_request == 0 {
            return Err(ApiError::Config {
                field: "querier.max_series_per_request",
                reason: "must be > 0",
            });
        }
        if self.max_samples_per_read == 0 {
            return Err(ApiError::Config {
                field: "querier.max_samples_per_read",
                reason: "must be > 0",
            });
        }
        Ok(())
    }
}
