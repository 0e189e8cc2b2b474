//! Request parameters as Prometheus reads them: query string and form body merged, repeated
//! keys kept, times in unix seconds or RFC 3339.

use crate::error::ApiError;
use strata_model::time::parse_time_param;

/// Earliest and latest time accepted as "unbounded", as in Prometheus's API.
pub const MIN_TIME: i64 = i64::MIN / 2;
pub const MAX_TIME: i64 = i64::MAX / 2;

#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Merges the URL query and, for form POSTs, the body.
    pub fn parse(query: Option<&str>, form_body: Option<&[u8]>) -> Self {
        let mut v: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            v.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        if let Some(b) = form_body {
            v.extend(form_urlencoded::parse(b).into_owned());
        }
        Self(v)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A time parameter, or `default` when absent or empty.
    pub fn time(&self, key: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(s) => parse_time_param(s).ok_or_else(|| {
                ApiError::BadData(format!(
                    "invalid parameter \"{key}\": cannot parse \"{s}\" to a valid timestamp"
                ))
            }),
        }
    }

    /// `start` and `end`, checked for order.
    pub fn range(&self) -> Result<(i64, i64), ApiError> {
        let start = self.time("start", MIN_TIME)?;
        let end = self.time("end", MAX_TIME)?;
        if end < start {
            return Err(ApiError::BadData(
                "invalid parameter \"end\": end timestamp must not be before start time".into(),
            ));
        }
        Ok((start, end))
    }
}
