//! The functions Prometheus (2.42) adds to rule templates: `humanize*`, `title`, `match`,
//! `reReplaceAll`, `stripPort`, `graphLink`, `parseDuration`, ..., and those over query results:
//! `query` (run by the caller's [`crate::TemplateQuerier`]; without one it fails when called),
//! `first`, `label`, `value`, `strvalue`, `sortByLabel`. A query result is a list of samples,
//! each a struct with `Labels` (a string map) and `Value` (a float), as upstream's `sample`.

use crate::Value;
use std::collections::BTreeMap;

/// Names Prometheus defines on top of Go's builtins.
pub(crate) const FUNCTIONS: &[&str] = &[
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    "stripPort",
    "stripDomain",
    "toTime",
];

/// Prometheus's `convertToFloat`: numbers, and strings that parse as floats.
fn float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s)
            .ok_or_else(|| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
        other => Err(format!("can't convert {other} to float")),
    }
}

/// Go's `strconv.ParseFloat` for the forms that appear in practice (decimal, exponent,
/// `Inf`/`NaN` in any case, with sign).
fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    let neg = s.starts_with('-');
    let special = match t.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    };
    if let Some(v) = special {
        return Some(if neg { -v } else { v });
    }
    s.parse::<f64>().ok()
}

/// Calls Prometheus function `name`, or `None` if it is not one of them (Go's builtins and
/// the shared ones are the caller's).
pub(crate) fn call(name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let one = || -> Result<f64, String> {
        match args {
            [v] => float(v),
            _ => Err(format!("wrong number of args: want 1 got {}", args.len())),
        }
    };
    let s = |i: usize| args.get(i).map(|v| v.to_string()).unwrap_or_default();
    Some(match name {
        "humanize" => one().map(|v| Value::Str(humanize(v))),
        "humanize1024" => one().map(|v| Value::Str(humanize1024(v))),
        "humanizeDuration" => one().map(|v| Value::Str(humanize_duration(v))),
        "humanizePercentage" => one().map(|v| Value::Str(format!("{}%", go_g(v * 100.0, 4)))),
        "humanizeTimestamp" => one().map(|v| Value::Str(humanize_timestamp(v))),
        "toTime" => one().map(|v| Value::Str(humanize_timestamp(v))),
        "stripPort" => Ok(Value::Str(strip_port(&s(0)))),
        "stripDomain" => Ok(Value::Str(strip_domain(&s(0)))),
        "graphLink" => Ok(Value::Str(format!(
            "/graph?g0.expr={}&g0.tab=0",
            query_escape(&s(0))
        ))),
        "tableLink" => Ok(Value::Str(format!(
            "/graph?g0.expr={}&g0.tab=1",
            query_escape(&s(0))
        ))),
        "parseDuration" => parse_duration_seconds(&s(0)).map(Value::Float),
        "args" => Ok(Value::Kv(
            args.iter()
                .enumerate()
                .map(|(i, a)| (format!("arg{i}"), a.to_string()))
                .collect::<BTreeMap<_, _>>(),
        )),
        "query" => Err("query: templates here have no query engine to ask".to_string()),
        "first" => match args {
            [Value::List(v)] => v
                .first()
                .cloned()
                .ok_or_else(|| "first() called on vector with no elements".to_string()),
            [other] => Err(wrong_type("template.queryResult", other)),
            _ => Err(format!("wrong number of args: want 1 got {}", args.len())),
        },
        "label" => match args {
            [name, sample] => sample_labels(sample)
                .map(|l| Value::Str(l.get(&name.to_string()).cloned().unwrap_or_default())),
            _ => Err(format!("wrong number of args: want 2 got {}", args.len())),
        },
        "strvalue" => match args {
            [sample] => sample_labels(sample)
                .map(|l| Value::Str(l.get("__value__").cloned().unwrap_or_default())),
            _ => Err(format!("wrong number of args: want 1 got {}", args.len())),
        },
        "value" => match args {
            [Value::Struct(m)] if m.contains_key("Labels") => {
                Ok(m.get("Value").cloned().unwrap_or(Value::Float(0.0)))
            }
            [other] => Err(wrong_type("*template.sample", other)),
            _ => Err(format!("wrong number of args: want 1 got {}", args.len())),
        },
        "sortByLabel" => match args {
            [name, Value::List(v)] => sort_by_label(&name.to_string(), v),
            [_, other] => Err(wrong_type("template.queryResult", other)),
            _ => Err(format!("wrong number of args: want 2 got {}", args.len())),
        },
        _ => return None,
    })
}

/// Runs `query` on `querier`: the answer as a list of samples.
pub(crate) fn query(querier: &dyn crate::TemplateQuerier, args: &[Value]) -> Result<Value, String> {
    let [q] = args else {
        return Err(format!("wrong number of args: want 1 got {}", args.len()));
    };
    let rows = querier.query(&q.to_string())?;
    Ok(Value::List(
        rows.into_iter()
            .map(|(labels, v)| {
                Value::Struct(BTreeMap::from([
                    ("Labels", Value::Kv(labels)),
                    ("Value", Value::Float(v)),
                ]))
            })
            .collect(),
    ))
}

/// `sortByLabel`: the samples ordered by the value of label `name`, stably (as upstream's
/// `sort.Stable`).
fn sort_by_label(name: &str, samples: &[Value]) -> Result<Value, String> {
    let mut keyed: Vec<(String, Value)> = Vec::with_capacity(samples.len());
    for sample in samples {
        let key = sample_labels(sample)?
            .get(name)
            .cloned()
            .unwrap_or_default();
        keyed.push((key, sample.clone()));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Value::List(keyed.into_iter().map(|(_, s)| s).collect()))
}

/// The labels of a query-result sample.
fn sample_labels(v: &Value) -> Result<&BTreeMap<String, String>, String> {
    match v {
        Value::Struct(m) => match m.get("Labels") {
            Some(Value::Kv(l)) => Ok(l),
            _ => Err(wrong_type("*template.sample", v)),
        },
        other => Err(wrong_type("*template.sample", other)),
    }
}

/// Go's message for an argument of the wrong type.
fn wrong_type(want: &str, got: &Value) -> String {
    format!(
        "wrong type for value; expected {want}; got {}",
        got.type_name()
    )
}

/// Go's `%.<prec>g`: shortest of `%e`/`%f` by the exponent, trailing zeros removed.
pub fn go_g(v: f64, prec: usize) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let prec = prec.max(1);
    // Round to `prec` significant digits first: the exponent after rounding decides the form.
    let e = format!("{:.*e}", prec - 1, v);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_g(v, 4))
}

fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_g(v, 4))
}

fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return go_g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", go_g(v, 4));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (seconds, minutes, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        return if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{sign}{}s", go_g(v, 4))
        };
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_g(v, 4))
}

/// Go's `time.Time.String()` of a Unix time in seconds, in UTC.
fn humanize_timestamp(v: f64) -> String {
    if !v.is_finite() {
        return go_g(v, 4);
    }
    let secs = v.floor() as i64;
    let nanos = ((v - v.floor()) * 1e9).round() as u32;
    let Some(t) = chrono::DateTime::from_timestamp(secs, nanos.min(999_999_999)) else {
        return go_g(v, 4);
    };
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    format!("{}{frac} +0000 UTC", t.format("%Y-%m-%d %H:%M:%S"))
}

fn strip_port(host_port: &str) -> String {
    // Go's net.SplitHostPort: `[v6]:port` or `host:port` with exactly one colon.
    if let Some(rest) = host_port.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once("]:") {
            if !p.contains(':') {
                return h.to_string();
            }
        }
        return host_port.to_string();
    }
    match host_port.split_once(':') {
        Some((h, p)) if !p.contains(':') => h.to_string(),
        _ => host_port.to_string(),
    }
}

fn strip_domain(host_port: &str) -> String {
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p)),
        _ => (host_port, None),
    };
    // IP addresses keep their dots.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return host_port.to_string();
    }
    let first = host.split('.').next().unwrap_or(host);
    match port {
        Some(p) => format!("{first}:{p}"),
        None => first.to_string(),
    }
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The path of a URL (`pathPrefix`).
pub(crate) fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => String::new(),
    }
}

/// Prometheus's duration syntax (`1h30m`, `5m`, `250ms`) in seconds.
fn parse_duration_seconds(s: &str) -> Result<f64, String> {
    let mut rest = s;
    let mut total_ms: f64 = 0.0;
    if rest.is_empty() {
        return Err(format!("not a valid duration string: {s:?}"));
    }
    let units: [(&str, f64); 8] = [
        ("y", 365.0 * 86_400_000.0),
        ("w", 7.0 * 86_400_000.0),
        ("d", 86_400_000.0),
        ("h", 3_600_000.0),
        ("ms", 1.0),
        ("m", 60_000.0),
        ("s", 1000.0),
        ("", 0.0),
    ];
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        let n: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("not a valid duration string: {s:?}"))?;
        rest = &rest[digits..];
        let Some((u, ms)) = units
            .iter()
            .find(|(u, _)| !u.is_empty() && rest.starts_with(u))
        else {
            return Err(format!("not a valid duration string: {s:?}"));
        };
        rest = &rest[u.len()..];
        total_ms += n * ms;
    }
    Ok(total_ms / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_matches_go() {
        // Values checked against Go's fmt.Sprintf("%.4g", v).
        assert_eq!(go_g(1234.5678, 4), "1235");
        assert_eq!(go_g(12345.678, 4), "1.235e+04");
        assert_eq!(go_g(0.000012345, 4), "1.234e-05");
        assert_eq!(go_g(0.5, 4), "0.5");
        assert_eq!(go_g(100.0, 4), "100");
        assert_eq!(go_g(f64::INFINITY, 4), "+Inf");
    }

    #[test]
    fn humanize_family() {
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.001234), "1.234m");
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(12.0), "12");
        assert_eq!(humanize1024(1048576.0), "1Mi");
        assert_eq!(humanize1024(512.0), "512");
        assert_eq!(humanize_duration(3661.0), "1h 1m 1s");
        assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
        assert_eq!(humanize_duration(1.5), "1.5s");
        assert_eq!(humanize_duration(0.0012), "1.2ms");
        assert_eq!(humanize_duration(-65.0), "-1m 5s");
        assert_eq!(humanize_timestamp(1.5), "1970-01-01 00:00:01.5 +0000 UTC");
    }

    #[test]
    fn strings_and_links() {
        assert_eq!(strip_port("host.example:9100"), "host.example");
        assert_eq!(strip_port("[::1]:9100"), "::1");
        assert_eq!(strip_port("noport"), "noport");
        assert_eq!(strip_domain("node1.example.com:9100"), "node1:9100");
        assert_eq!(strip_domain("10.0.0.1:9100"), "10.0.0.1:9100");
        assert_eq!(query_escape("up == 0"), "up+%3D%3D+0");
        assert_eq!(url_path("http://h:9090/prom"), "/prom");
        assert_eq!(parse_duration_seconds("1h30m").unwrap(), 5400.0);
        assert!(parse_duration_seconds("1.5m").is_err());
    }
}
