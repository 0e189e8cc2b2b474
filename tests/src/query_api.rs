//! The Prometheus query API (`/api/v1/query`, `/api/v1/query_range`) as a client sees it:
//! requests, a strict parser of the JSON answers, and a comparison of two answers that names the
//! first difference. Used to hold strata's PromQL engine against a real Prometheus.

use std::collections::{BTreeMap, BTreeSet};

use strata_proto::prometheus::label_matcher::Type as MatchType;
use strata_proto::prometheus::read_request::ResponseType;
use strata_proto::prometheus::{LabelMatcher, Query, ReadRequest};

use crate::{api_time, error_chain, fmt_labels, remote_read_from, truncate, LabelSet};

/// Relative tolerance of value comparisons. Prometheus 3 (strata's semantics) sums with Kahan
/// compensation where Prometheus 2.42 adds naively, and orders some float operations
/// differently, so results agree to ~1e-15 relative, not bit for bit.
pub const REL_TOLERANCE: f64 = 1e-9;
/// Absolute tolerance, for values that should be 0 but come out as ±1e-17 on one side.
pub const ABS_TOLERANCE: f64 = 1e-12;

/// Which endpoint, with which times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryAt {
    /// `/api/v1/query?time=…`
    Instant(i64),
    /// `/api/v1/query_range?start=…&end=…&step=…` (all in milliseconds).
    Range { start: i64, end: i64, step: i64 },
}

impl std::fmt::Display for QueryAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryAt::Instant(t) => write!(f, "instant time={}", api_time(*t)),
            QueryAt::Range { start, end, step } => write!(
                f,
                "range start={} end={} step={}",
                api_time(*start),
                api_time(*end),
                api_time(*step)
            ),
        }
    }
}

/// How a request is sent; both are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    /// `application/x-www-form-urlencoded` body.
    PostForm,
}

/// The raw HTTP answer.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub status: u16,
    pub body: String,
}

/// Sends one query to `base` (e.g. `http://127.0.0.1:9090`). Transport errors are `Err`.
pub async fn send_query(
    client: &reqwest::Client,
    base: &str,
    query: &str,
    at: QueryAt,
    method: Method,
) -> Result<RawAnswer, String> {
    let (path, params): (&str, Vec<(&str, String)>) = match at {
        QueryAt::Instant(t) => (
            "/api/v1/query",
            vec![("query", query.to_string()), ("time", api_time(t))],
        ),
        QueryAt::Range { start, end, step } => (
            "/api/v1/query_range",
            vec![
                ("query", query.to_string()),
                ("start", api_time(start)),
                ("end", api_time(end)),
                ("step", api_time(step)),
            ],
        ),
    };
    let url = format!("{base}{path}");
    let rb = match method {
        Method::Get => client.get(&url).query(&params),
        Method::PostForm => client.post(&url).form(&params),
    };
    let r = rb
        .send()
        .await
        .map_err(|e| format!("{method:?} {url}: {}", error_chain(&e)))?;
    let status = r.status().as_u16();
    let body = r
        .text()
        .await
        .map_err(|e| format!("{method:?} {url}: reading body: {e}"))?;
    Ok(RawAnswer { status, body })
}

/// One sample of a result: milliseconds and value.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub t: i64,
    pub v: f64,
}

/// `data` of a successful answer.
#[derive(Debug, Clone)]
pub enum QueryData {
    Scalar(Point),
    String(i64, String),
    Vector(Vec<(LabelSet, Point)>),
    Matrix(Vec<(LabelSet, Vec<Point>)>),
}

impl QueryData {
    pub fn result_type(&self) -> &'static str {
        match self {
            QueryData::Scalar(_) => "scalar",
            QueryData::String(..) => "string",
            QueryData::Vector(_) => "vector",
            QueryData::Matrix(_) => "matrix",
        }
    }

    /// Series in the result (1 for scalars and strings).
    pub fn len(&self) -> usize {
        match self {
            QueryData::Scalar(_) | QueryData::String(..) => 1,
            QueryData::Vector(v) => v.len(),
            QueryData::Matrix(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A parsed answer: success with data, or Prometheus's error object.
#[derive(Debug, Clone)]
pub enum Answer {
    Success(QueryData),
    Error {
        status: u16,
        error_type: String,
        error: String,
    },
}

/// Parses an answer strictly as Prometheus writes it: `status`, `data.resultType`,
/// `data.result`, sample values as strings, timestamps as numbers (seconds).
pub fn parse_answer(raw: &RawAnswer) -> Result<Answer, String> {
    let v: serde_json::Value = serde_json::from_str(&raw.body).map_err(|e| {
        format!(
            "HTTP {} body is not JSON ({e}): {}",
            raw.status,
            truncate(&raw.body, 300)
        )
    })?;
    match v.get("status").and_then(|s| s.as_str()) {
        Some("success") => {
            if raw.status != 200 {
                return Err(format!("status \"success\" with HTTP {}", raw.status));
            }
            let data = v.get("data").ok_or("no \"data\"")?;
            parse_data(data).map(Answer::Success)
        }
        Some("error") => Ok(Answer::Error {
            status: raw.status,
            error_type: v
                .get("errorType")
                .and_then(|s| s.as_str())
                .unwrap_or("<missing errorType>")
                .to_string(),
            error: v
                .get("error")
                .and_then(|s| s.as_str())
                .unwrap_or("<missing error>")
                .to_string(),
        }),
        _ => Err(format!(
            "HTTP {}: \"status\" is neither \"success\" nor \"error\": {}",
            raw.status,
            truncate(&raw.body, 300)
        )),
    }
}

fn parse_data(data: &serde_json::Value) -> Result<QueryData, String> {
    let rt = data
        .get("resultType")
        .and_then(|s| s.as_str())
        .ok_or("no \"data.resultType\"")?;
    let result = data.get("result").ok_or("no \"data.result\"")?;
    match rt {
        "scalar" => parse_point(result).map(QueryData::Scalar),
        "string" => {
            let a = result
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| format!("string result is not [t, \"s\"]: {result}"))?;
            let t = parse_ts(&a[0])?;
            let s = a[1]
                .as_str()
                .ok_or_else(|| format!("string result value is not a string: {result}"))?;
            Ok(QueryData::String(t, s.to_string()))
        }
        "vector" => {
            let items = result.as_array().ok_or("vector result is not an array")?;
            items
                .iter()
                .map(|it| {
                    let m = parse_metric(it)?;
                    let p = parse_point(
                        it.get("value")
                            .ok_or_else(|| format!("vector element without \"value\": {it}"))?,
                    )?;
                    Ok((m, p))
                })
                .collect::<Result<Vec<_>, String>>()
                .map(QueryData::Vector)
        }
        "matrix" => {
            let items = result.as_array().ok_or("matrix result is not an array")?;
            items
                .iter()
                .map(|it| {
                    let m = parse_metric(it)?;
                    let values = it
                        .get("values")
                        .and_then(|v| v.as_array())
                        .ok_or_else(|| format!("matrix element without \"values\": {it}"))?;
                    let pts = values
                        .iter()
                        .map(parse_point)
                        .collect::<Result<Vec<_>, String>>()?;
                    Ok((m, pts))
                })
                .collect::<Result<Vec<_>, String>>()
                .map(QueryData::Matrix)
        }
        other => Err(format!("unknown resultType {other:?}")),
    }
}

fn parse_metric(it: &serde_json::Value) -> Result<LabelSet, String> {
    let obj = it
        .get("metric")
        .and_then(|m| m.as_object())
        .ok_or_else(|| format!("element without \"metric\" object: {it}"))?;
    obj.iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|s| (k.clone(), s.to_string()))
                .ok_or_else(|| format!("label {k} is not a string: {it}"))
        })
        .collect()
}

fn parse_ts(v: &serde_json::Value) -> Result<i64, String> {
    let secs = v
        .as_f64()
        .ok_or_else(|| format!("timestamp is not a number: {v}"))?;
    Ok((secs * 1000.0).round() as i64)
}

fn parse_point(v: &serde_json::Value) -> Result<Point, String> {
    let a = v
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(|| format!("sample is not [t, \"v\"]: {v}"))?;
    let t = parse_ts(&a[0])?;
    let s = a[1]
        .as_str()
        .ok_or_else(|| format!("sample value is not a string: {v}"))?;
    Ok(Point {
        t,
        v: parse_go_float(s).ok_or_else(|| format!("sample value {s:?} is not a number"))?,
    })
}

/// Parses a value as Go's `strconv.FormatFloat` writes it (`NaN`, `+Inf`, `-Inf`, decimals).
pub fn parse_go_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"-+.eE".contains(&b)) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

/// Whether two sample values agree: NaN equals NaN, infinities must match exactly, finite values
/// within [`REL_TOLERANCE`] relative or [`ABS_TOLERANCE`] absolute.
pub fn values_match(want: f64, got: f64) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want.is_infinite() || got.is_infinite() {
        return want == got;
    }
    let d = (want - got).abs();
    d <= ABS_TOLERANCE || d <= REL_TOLERANCE * want.abs().max(got.abs())
}

/// What the order of a result means for a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Only the set of series matters (instant vectors in general: Prometheus documents no order).
    Unordered,
    /// The series must come in the same order (range queries: Prometheus sorts by labels).
    Series,
    /// The values must come in the same order, series with equal values in any order
    /// (`sort`/`sort_desc` of an instant query; Go's sort is not stable).
    Values,
}

/// `Ok(())` when `got` matches `want`, else a short description of the first difference.
pub fn compare_data(want: &QueryData, got: &QueryData, order: Order) -> Result<(), String> {
    match (want, got) {
        (QueryData::Scalar(w), QueryData::Scalar(g)) => compare_point("scalar", *w, *g),
        (QueryData::String(wt, ws), QueryData::String(gt, gs)) => {
            if wt != gt || ws != gs {
                Err(format!(
                    "string: want [{}, {ws:?}] got [{}, {gs:?}]",
                    api_time(*wt),
                    api_time(*gt)
                ))
            } else {
                Ok(())
            }
        }
        (QueryData::Vector(w), QueryData::Vector(g)) => {
            let wm = unique_map(w, "Prometheus")?;
            let gm = unique_map(g, "strata")?;
            compare_sets(wm.keys().collect(), gm.keys().collect())?;
            for (ls, wp) in &wm {
                compare_point(&fmt_labels(ls), **wp, *gm[ls])?;
            }
            if order == Order::Values {
                let wv: Vec<f64> = w.iter().map(|(_, p)| p.v).collect();
                let gv: Vec<f64> = g.iter().map(|(_, p)| p.v).collect();
                if let Some(i) = (0..wv.len()).find(|&i| !values_match(wv[i], gv[i])) {
                    return Err(format!(
                        "same series, different order: element {i} has value {} in Prometheus, {} ({}) in strata; Prometheus order {:?}, strata order {:?}",
                        wv[i],
                        gv[i],
                        fmt_labels(&g[i].0),
                        wv,
                        gv
                    ));
                }
            }
            Ok(())
        }
        (QueryData::Matrix(w), QueryData::Matrix(g)) => {
            let wm = unique_map(w, "Prometheus")?;
            let gm = unique_map(g, "strata")?;
            compare_sets(wm.keys().collect(), gm.keys().collect())?;
            for (ls, wp) in &wm {
                compare_points(ls, wp, gm[ls])?;
            }
            if order == Order::Series {
                if let Some(i) = (0..w.len()).find(|&i| w[i].0 != g[i].0) {
                    return Err(format!(
                        "same series, different order: series {i} is {} in Prometheus, {} in strata",
                        fmt_labels(&w[i].0),
                        fmt_labels(&g[i].0)
                    ));
                }
            }
            Ok(())
        }
        _ => Err(format!(
            "resultType: want {} got {}",
            want.result_type(),
            got.result_type()
        )),
    }
}

fn unique_map<'a, T>(
    items: &'a [(LabelSet, T)],
    side: &str,
) -> Result<BTreeMap<&'a LabelSet, &'a T>, String> {
    let mut m = BTreeMap::new();
    for (ls, x) in items {
        if m.insert(ls, x).is_some() {
            return Err(format!(
                "{side} returned the series {} twice",
                fmt_labels(ls)
            ));
        }
    }
    Ok(m)
}

fn compare_sets(want: BTreeSet<&&LabelSet>, got: BTreeSet<&&LabelSet>) -> Result<(), String> {
    if want == got {
        return Ok(());
    }
    let only_w: Vec<String> = want.difference(&got).map(|l| fmt_labels(l)).collect();
    let only_g: Vec<String> = got.difference(&want).map(|l| fmt_labels(l)).collect();
    let show = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            format!(
                "{} (e.g. {})",
                v.len(),
                v.iter().take(2).cloned().collect::<Vec<_>>().join(", ")
            )
        }
    };
    Err(format!(
        "series differ: {} series in Prometheus, {} in strata; only in Prometheus: {}; only in strata: {}",
        want.len(),
        got.len(),
        show(&only_w),
        show(&only_g)
    ))
}

fn compare_point(what: &str, w: Point, g: Point) -> Result<(), String> {
    if w.t != g.t {
        return Err(format!(
            "{what}: timestamp want {} got {}",
            api_time(w.t),
            api_time(g.t)
        ));
    }
    if !values_match(w.v, g.v) {
        return Err(format!(
            "{what} @{}: want {} got {}{}",
            api_time(w.t),
            w.v,
            g.v,
            rel_note(w.v, g.v)
        ));
    }
    Ok(())
}

fn compare_points(ls: &LabelSet, w: &[Point], g: &[Point]) -> Result<(), String> {
    for i in 0..w.len().max(g.len()) {
        match (w.get(i), g.get(i)) {
            (Some(wp), Some(gp)) => {
                compare_point(&format!("{} point {i}", fmt_labels(ls)), *wp, *gp)?
            }
            (Some(wp), None) => {
                return Err(format!(
                    "{}: strata has {} points, Prometheus {}; first missing @{} = {}",
                    fmt_labels(ls),
                    g.len(),
                    w.len(),
                    api_time(wp.t),
                    wp.v
                ))
            }
            (None, Some(gp)) => {
                return Err(format!(
                    "{}: strata has {} points, Prometheus {}; first extra @{} = {}",
                    fmt_labels(ls),
                    g.len(),
                    w.len(),
                    api_time(gp.t),
                    gp.v
                ))
            }
            (None, None) => unreachable!("i < max(len)"),
        }
    }
    Ok(())
}

fn rel_note(w: f64, g: f64) -> String {
    if w.is_finite() && g.is_finite() && w != 0.0 {
        format!(" (relative difference {:.3e})", ((w - g) / w).abs())
    } else {
        String::new()
    }
}

/// Every raw sample of every series, value bits included (stale markers are a NaN payload).
pub type RawData = BTreeMap<LabelSet, Vec<(i64, u64)>>;

/// Remote-reads all series (`__name__=~".+"`) in [start, end] from `url` (a `/api/v1/read`
/// endpoint of Prometheus or strata).
pub async fn remote_read_all(
    client: &reqwest::Client,
    url: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<RawData, String> {
    let req = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: start_ms,
            end_timestamp_ms: end_ms,
            matchers: vec![LabelMatcher {
                r#type: MatchType::Re as i32,
                name: "__name__".into(),
                value: ".+".into(),
            }],
            ..Default::default()
        }],
        accepted_response_types: vec![ResponseType::Samples as i32],
    };
    let resp = remote_read_from(client, url, &req).await?;
    let mut out = RawData::new();
    for r in &resp.results {
        for ts in &r.timeseries {
            let ls: LabelSet = ts
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            out.entry(ls)
                .or_default()
                .extend(ts.samples.iter().map(|s| (s.timestamp, s.value.to_bits())));
        }
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    Ok(out)
}

/// `None` when equal, else a short description of the first differences.
pub fn diff_raw_data(want: &RawData, got: &RawData) -> Option<String> {
    if want == got {
        return None;
    }
    let mut notes = Vec::new();
    let only_w: Vec<&LabelSet> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let only_g: Vec<&LabelSet> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    if !only_w.is_empty() {
        notes.push(format!(
            "{} series only in Prometheus, e.g. {}",
            only_w.len(),
            fmt_labels(only_w[0])
        ));
    }
    if !only_g.is_empty() {
        notes.push(format!(
            "{} series only in strata, e.g. {}",
            only_g.len(),
            fmt_labels(only_g[0])
        ));
    }
    type Samples = Vec<(i64, u64)>;
    let differing: Vec<(&LabelSet, &Samples, &Samples)> = want
        .iter()
        .filter_map(|(k, w)| got.get(k).filter(|g| *g != w).map(|g| (k, w, g)))
        .collect();
    if let Some((k, w, g)) = differing.first() {
        let i = (0..w.len().max(g.len()))
            .find(|&i| w.get(i) != g.get(i))
            .unwrap_or(0);
        let show = |s: Option<&(i64, u64)>| match s {
            Some((t, bits)) => format!(
                "{}={} (bits {bits:#x})",
                api_time(*t),
                f64::from_bits(*bits)
            ),
            None => "none".into(),
        };
        notes.push(format!(
            "{} series with different samples, e.g. {}: {} samples in Prometheus, {} in strata, first difference at index {i}: Prometheus {}, strata {}",
            differing.len(),
            fmt_labels(k),
            w.len(),
            g.len(),
            show(w.get(i)),
            show(g.get(i))
        ));
    }
    Some(notes.join("; "))
}

/// The millisecond-of-second (`t mod 1000`) of every sample timestamp.
pub fn ms_residues(data: &RawData) -> BTreeSet<i64> {
    data.values()
        .flat_map(|v| v.iter().map(|(t, _)| t.rem_euclid(1000)))
        .collect()
}

/// The millisecond-of-second farthest (circularly) from every residue in `avoid`, and that
/// distance. Evaluation times at whole seconds plus this offset, with windows, offsets and steps
/// in whole seconds, put every window boundary strictly between two samples.
pub fn pick_ms_offset(avoid: &BTreeSet<i64>) -> (i64, i64) {
    let dist = |c: i64| {
        avoid
            .iter()
            .map(|r| {
                let d = (c - r).rem_euclid(1000);
                d.min(1000 - d)
            })
            .min()
            .unwrap_or(1000)
    };
    (0..1000)
        .map(|c| (c, dist(c)))
        .max_by_key(|&(c, d)| (d, -c))
        .expect("non-empty range")
}

/// For every `up` series in `data`, its first sample; the latest of those. From then on every
/// scrape target has data.
pub fn first_scrape_of_every_target(data: &RawData) -> Option<i64> {
    data.iter()
        .filter(|(ls, _)| ls.get("__name__").map(String::as_str) == Some("up"))
        .map(|(_, v)| v.first().map(|(t, _)| *t))
        .collect::<Option<Vec<i64>>>()
        .and_then(|firsts| firsts.into_iter().max())
}

/// Remote-reads all raw data in [start, end] from Prometheus once, then polls strata until its
/// raw data is identical (remote write catching up) or `timeout` passes. Returns Prometheus's
/// data and the number of polls, or a description of the last difference. Comparing raw samples
/// first makes every later query difference an engine difference, not a data difference.
pub async fn wait_for_identical_raw_data(
    client: &reqwest::Client,
    prometheus_read_url: &str,
    strata_read_url: &str,
    start_ms: i64,
    end_ms: i64,
    timeout: std::time::Duration,
) -> Result<(RawData, usize), String> {
    let want = remote_read_all(client, prometheus_read_url, start_ms, end_ms)
        .await
        .map_err(|e| format!("remote read from Prometheus: {e}"))?;
    let deadline = std::time::Instant::now() + timeout;
    let mut polls = 0;
    loop {
        polls += 1;
        let diff = match remote_read_all(client, strata_read_url, start_ms, end_ms).await {
            Ok(got) => match diff_raw_data(&want, &got) {
                None => return Ok((want, polls)),
                Some(d) => d,
            },
            Err(e) => format!("remote read from strata: {e}"),
        };
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "raw data in [{}, {}] still differs after {polls} polls over {timeout:?}: {diff}",
                api_time(start_ms),
                api_time(end_ms)
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(body: &str) -> RawAnswer {
        RawAnswer {
            status: 200,
            body: body.into(),
        }
    }

    fn data(body: &str) -> QueryData {
        match parse_answer(&raw(body)).expect("parses") {
            Answer::Success(d) => d,
            Answer::Error { .. } => panic!("not a success"),
        }
    }

    #[test]
    fn parses_every_result_type() {
        let s = data(r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"NaN"]}}"#);
        assert!(matches!(s, QueryData::Scalar(p) if p.t == 1500 && p.v.is_nan()));
        let v = data(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1700000000.437,"+Inf"]}]}}"#,
        );
        assert!(
            matches!(&v, QueryData::Vector(x) if x.len() == 1 && x[0].1.t == 1_700_000_000_437 && x[0].1.v == f64::INFINITY)
        );
        let m = data(
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"-0.25"]]}]}}"#,
        );
        assert!(matches!(&m, QueryData::Matrix(x) if x[0].1.len() == 2 && x[0].1[1].v == -0.25));
        let st = data(r#"{"status":"success","data":{"resultType":"string","result":[3,"hi"]}}"#);
        assert!(matches!(st, QueryData::String(3000, ref s) if s == "hi"));
        // Values must be strings, as Prometheus writes them.
        assert!(parse_answer(&raw(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,1]}}"#
        ))
        .is_err());
        let e = parse_answer(&RawAnswer {
            status: 400,
            body: r#"{"status":"error","errorType":"bad_data","error":"x"}"#.into(),
        })
        .expect("parses");
        assert!(
            matches!(e, Answer::Error { status: 400, ref error_type, .. } if error_type == "bad_data")
        );
    }

    #[test]
    fn tolerances() {
        assert!(values_match(f64::NAN, f64::NAN));
        assert!(!values_match(f64::NAN, 0.0));
        assert!(!values_match(f64::INFINITY, f64::NEG_INFINITY));
        assert!(values_match(1.0, 1.0 + 1e-12));
        assert!(!values_match(1.0, 1.0 + 1e-6));
        assert!(values_match(0.0, 1e-17));
        assert!(!values_match(0.0, 1e-6));
        assert_eq!(parse_go_float("Infinity"), None);
        assert_eq!(parse_go_float("1e-7"), Some(1e-7));
    }

    #[test]
    fn comparison_names_the_difference() {
        let a = data(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"x":"1"},"value":[1,"3"]},{"metric":{"x":"2"},"value":[1,"2"]}]}}"#,
        );
        let b = data(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"x":"2"},"value":[1,"2"]},{"metric":{"x":"1"},"value":[1,"3"]}]}}"#,
        );
        assert!(compare_data(&a, &b, Order::Unordered).is_ok());
        let e = compare_data(&a, &b, Order::Values).expect_err("order differs");
        assert!(e.contains("different order"), "{e}");
        let c = data(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"x":"1"},"value":[1,"3.5"]},{"metric":{"x":"2"},"value":[1,"2"]}]}}"#,
        );
        let e = compare_data(&a, &c, Order::Unordered).expect_err("value differs");
        assert!(e.contains("want 3 got 3.5"), "{e}");
        let m1 = data(
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]}]}}"#,
        );
        let m2 = data(
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}"#,
        );
        let e = compare_data(&m1, &m2, Order::Series).expect_err("point missing");
        assert!(e.contains("first missing @2.000"), "{e}");
        let e = compare_data(&m1, &a, Order::Series).expect_err("type differs");
        assert!(e.contains("resultType"), "{e}");
    }

    #[test]
    fn offset_avoids_sample_residues() {
        let avoid: BTreeSet<i64> = [0, 642, 716].into_iter().collect();
        let (o, d) = pick_ms_offset(&avoid);
        assert_eq!((o, d), (321, 321));
        let (o, d) = pick_ms_offset(&[999].into_iter().collect());
        assert_eq!((o, d), (499, 500));
    }
}
