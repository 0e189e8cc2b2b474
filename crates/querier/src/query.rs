//! `/api/v1/query` and `/api/v1/query_range` with Prometheus's parameters, limits and JSON.

use crate::api::{json_labels, json_response, params, push_json_str, Querier};
use crate::error::ApiError;
use crate::params::Params;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_model::time::now_ms;
use strata_promql::SourceResolution;
use strata_promql::{Engine, EngineOptions, QueryResult, QueryValue};

/// Parses a duration parameter: float seconds or a Prometheus duration (`5m`, `1h30m`).
fn parse_duration_param(p: &Params, key: &str) -> Result<Option<i64>, ApiError> {
    let Some(s) = p.get(key).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::BadData(format!(
            "invalid parameter \"{key}\": cannot parse \"{s}\" to a valid duration"
        ))
    };
    strata_model::time::parse_duration_param(s)
        .map(Some)
        .ok_or_else(bad)
}

/// Formats a value as Prometheus does (Go's `FormatFloat(v, 'f', -1, 64)`).
pub(crate) fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Formats a timestamp in seconds with up to millisecond precision, as a JSON number.
pub(crate) fn format_ts(t: i64) -> String {
    if t < 0 {
        return format!("-{}", format_ts(t.checked_neg().unwrap_or(i64::MAX)));
    }
    let secs = t.div_euclid(1000);
    let ms = t.rem_euclid(1000);
    if ms == 0 {
        format!("{secs}")
    } else {
        let frac = format!("{ms:03}");
        format!("{secs}.{}", frac.trim_end_matches('0'))
    }
}

fn point(out: &mut String, t: i64, v: &str) {
    out.push('[');
    out.push_str(&format_ts(t));
    out.push_str(",\"");
    out.push_str(v);
    out.push_str("\"]");
}

fn render(r: &QueryResult) -> String {
    let mut out = String::from(r#"{"status":"success","data":{"resultType":"#);
    match &r.value {
        QueryValue::Scalar { t, v } => {
            out.push_str(r#""scalar","result":"#);
            point(&mut out, *t, &format_value(*v));
        }
        QueryValue::String { t, s } => {
            out.push_str(r#""string","result":["#);
            out.push_str(&format_ts(*t));
            out.push(',');
            push_json_str(&mut out, s);
            out.push(']');
        }
        QueryValue::Vector(v) => {
            out.push_str(r#""vector","result":["#);
            for (i, s) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                json_labels(&mut out, &s.labels);
                out.push_str(r#","value":"#);
                point(&mut out, s.t, &format_value(s.v));
                out.push('}');
            }
            out.push(']');
        }
        QueryValue::Matrix(m) => {
            out.push_str(r#""matrix","result":["#);
            for (i, s) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                json_labels(&mut out, &s.labels);
                out.push_str(r#","values":["#);
                for (j, p) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    point(&mut out, p.t, &format_value(p.v));
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    for (key, list) in [("warnings", &r.warnings), ("infos", &r.infos)] {
        if !list.is_empty() {
            out.push_str(&format!(r#","{key}":["#));
            for (i, w) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(&mut out, w);
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

fn engine_for(q: &Querier, p: &Params) -> Result<Engine, ApiError> {
    let mut timeout = q.cfg.query_timeout;
    if let Some(ms) = parse_duration_param(p, "timeout")? {
        if ms > 0 {
            timeout = timeout.min(Duration::from_millis(ms as u64));
        }
    }
    Ok(Engine::new(EngineOptions {
        lookback_delta: q.cfg.lookback_delta,
        max_samples: q.cfg.max_samples,
        timeout,
        max_query_bytes: q.cfg.max_query_bytes,
        max_query_depth: q.cfg.max_query_depth,
        max_query_memory_bytes: q.cfg.max_query_memory_bytes,
        ..EngineOptions::default()
    }))
}

/// `store` limited to the query shard the request names (`__query_shard__`, set by the
/// query-frontend), if any.
fn in_shard(
    store: Arc<dyn strata_storage::Queryable>,
    p: &crate::params::Params,
) -> Result<Arc<dyn strata_storage::Queryable>, ApiError> {
    match p.get(strata_model::QUERY_SHARD_PARAM) {
        None => Ok(store),
        Some(v) => {
            let shard =
                strata_model::QueryShard::parse(v).map_err(|e| ApiError::BadData(e.to_string()))?;
            Ok(Arc::new(crate::shard::Sharded::new(store, shard)))
        }
    }
}

pub(crate) async fn instant(
    State(q): State<Arc<Querier>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(&uri, &headers, &body);
    let (tenant, store) = q.source(&headers)?;
    let store = in_shard(store, &p)?;
    let query = p.get("query").unwrap_or("");
    let t = p.time("time", now_ms())?;
    let engine = engine_for(&q, &p)?;
    let t0 = Instant::now();
    let res = engine.instant(store.as_ref(), &tenant, query, t).await?;
    tracing::debug!(
        query,
        took_ms = t0.elapsed().as_millis() as u64,
        "instant query"
    );
    Ok(json_response(render(&res)))
}

pub(crate) async fn range(
    State(q): State<Arc<Querier>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(&uri, &headers, &body);
    let (tenant, store) = q.source(&headers)?;
    let store = in_shard(store, &p)?;
    let query = p.get("query").unwrap_or("");
    let start = p
        .get("start")
        .ok_or_else(|| {
            ApiError::BadData(
                "invalid parameter \"start\": cannot parse \"\" to a valid timestamp".into(),
            )
        })
        .and_then(|_| p.time("start", 0))?;
    let end = p
        .get("end")
        .ok_or_else(|| {
            ApiError::BadData(
                "invalid parameter \"end\": cannot parse \"\" to a valid timestamp".into(),
            )
        })
        .and_then(|_| p.time("end", 0))?;
    if end < start {
        return Err(ApiError::BadData(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    let step = parse_duration_param(&p, "step")?.ok_or_else(|| {
        ApiError::BadData(
            "invalid parameter \"step\": cannot parse \"\" to a valid duration".into(),
        )
    })?;
    if step <= 0 {
        return Err(ApiError::BadData(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    if (end - start) / step >= q.cfg.max_points_per_series as i64 {
        return Err(ApiError::BadData(format!(
            "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
            q.cfg.max_points_per_series
        )));
    }
    // Thanos's parameter: which downsampled resolutions may answer.
    let resolution = match p.get("max_source_resolution") {
        None | Some("") | Some("auto") => SourceResolution::Auto,
        Some("raw") | Some("0") | Some("0s") => SourceResolution::Max(0),
        Some(_) => SourceResolution::Max(
            parse_duration_param(&p, "max_source_resolution")?.unwrap_or_default(),
        ),
    };
    let engine = engine_for(&q, &p)?;
    let t0 = Instant::now();
    let res = engine
        .range_with_resolution(store.as_ref(), &tenant, query, start, end, step, resolution)
        .await?;
    tracing::debug!(
        query,
        took_ms = t0.elapsed().as_millis() as u64,
        "range query"
    );
    Ok(json_response(render(&res)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(-2.5e-7), "-0.00000025");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_ts(1_700_000_000_120), "1700000000.12");
        assert_eq!(format_ts(1_700_000_000_000), "1700000000");
        assert_eq!(format_ts(-1500), "-1.5");
    }
}
