//! Query sharding (Mimir's idea, done on answers rather than on an embedded query): an
//! aggregation `sum|count|min|max|group [by|without (…)] (inner)` whose `inner` keeps every
//! series apart (selectors, per-series functions, arithmetic with constants) is run once per
//! shard, each over the series of that shard only (`__query_shard__=i_of_n`; the querier
//! filters every selection), and the partial aggregates are combined point by point: sums and
//! counts are added, minima and maxima taken again, groups kept. Every series lies in exactly
//! one shard, so the combination covers the same series as the whole query.
//!
//! Sums of non-integers may differ from the unsharded answer in the last bits (floating-point
//! addition is not associative); minima, maxima, counts, groups and integer sums are exact.

use crate::merge::{key_of, Key};
use promql_parser::parser::{token, Expr};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How the shards' partial answers become the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// `sum`, and `count` (the count is the sum of the shards' counts).
    Sum,
    /// `min`.
    Min,
    /// `max`.
    Max,
    /// `group`: 1 wherever any shard has a point.
    Group,
}

/// Functions whose output series depend on one input series each (and its own labels), so they
/// may run on any subset of the series.
const PER_SERIES: &[&str] = &[
    "abs",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// How to combine `query`'s shards, if it can be sharded.
pub fn plan(query: &str) -> Option<Combine> {
    let mut e = strata_promql::parse(query).ok()?;
    while let Expr::Paren(p) = e {
        e = *p.expr;
    }
    let Expr::Aggregate(a) = e else { return None };
    if a.param.is_some() || !shard_safe(&a.expr) {
        return None;
    }
    match a.op.id() {
        token::T_SUM | token::T_COUNT => Some(Combine::Sum),
        token::T_MIN => Some(Combine::Min),
        token::T_MAX => Some(Combine::Max),
        token::T_GROUP => Some(Combine::Group),
        _ => None,
    }
}

/// Whether `e` computes each output series from one input series, so it may run on a shard.
fn shard_safe(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_) => true,
        Expr::Paren(p) => shard_safe(&p.expr),
        Expr::Unary(u) => shard_safe(&u.expr),
        Expr::Subquery(s) => shard_safe(&s.expr),
        // Two sides that both select series would match series across shards.
        Expr::Binary(b) => {
            shard_safe(&b.lhs) && shard_safe(&b.rhs) && !(selects(&b.lhs) && selects(&b.rhs))
        }
        Expr::Call(c) => {
            PER_SERIES.contains(&c.func.name) && c.args.args.iter().all(|a| shard_safe(a))
        }
        Expr::Aggregate(_) | Expr::Extension(_) => false,
    }
}

/// Whether `e` reads any series.
fn selects(e: &Expr) -> bool {
    match e {
        Expr::VectorSelector(_) | Expr::MatrixSelector(_) => true,
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => false,
        Expr::Paren(p) => selects(&p.expr),
        Expr::Unary(u) => selects(&u.expr),
        Expr::Subquery(s) => selects(&s.expr),
        Expr::Binary(b) => selects(&b.lhs) || selects(&b.rhs),
        Expr::Call(c) => c.args.args.iter().any(|a| selects(a)),
        Expr::Aggregate(a) => selects(&a.expr),
        Expr::Extension(_) => true,
    }
}

/// A float as Prometheus writes it in JSON.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn parse_value(v: &Value) -> Result<f64, String> {
    let s = v.as_str().ok_or("a sample value is not a string")?;
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse().map_err(|_| format!("sample value {s:?}")),
    }
}

/// The shards' matrix answers combined into one matrix answer, or why they cannot be.
pub fn combine(how: Combine, shards: &[Value]) -> Result<Value, String> {
    // Per series: its labels, then per timestamp (ms) the JSON timestamp and the value so far.
    type Points = BTreeMap<i64, (Value, f64)>;
    let mut series: BTreeMap<Key, (Value, Points)> = BTreeMap::new();
    let mut warnings: Vec<Value> = Vec::new();
    for p in shards {
        if p["status"] != "success" {
            return Err(format!("status {}", p["status"]));
        }
        if p["data"]["resultType"] != "matrix" {
            return Err(format!("resultType {}", p["data"]["resultType"]));
        }
        for w in p["warnings"].as_array().into_iter().flatten() {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
        for s in p["data"]["result"]
            .as_array()
            .ok_or("no data.result array")?
        {
            if s.get("histograms").is_some() {
                return Err("native histograms are not combined across shards".into());
            }
            let metric = s["metric"].as_object().ok_or("a series without metric")?;
            let (_, points) = series
                .entry(key_of(metric))
                .or_insert_with(|| (s["metric"].clone(), BTreeMap::new()));
            for point in s["values"].as_array().into_iter().flatten() {
                let t = &point[0];
                let ms = t
                    .as_f64()
                    .map(|x| (x * 1000.0).round() as i64)
                    .ok_or("a point without a numeric time")?;
                let v = parse_value(&point[1])?;
                match points.get_mut(&ms) {
                    None => {
                        let v = if how == Combine::Group { 1.0 } else { v };
                        points.insert(ms, (t.clone(), v));
                    }
                    Some((_, acc)) => {
                        *acc = match how {
                            Combine::Sum => *acc + v,
                            // PromQL's min/max replace NaN by any number.
                            Combine::Min if acc.is_nan() || v < *acc => v,
                            Combine::Max if acc.is_nan() || v > *acc => v,
                            Combine::Min | Combine::Max | Combine::Group => *acc,
                        }
                    }
                }
            }
        }
    }
    let result: Vec<Value> = series
        .into_values()
        .map(|(metric, points)| {
            let values: Vec<Value> = points
                .into_values()
                .map(|(t, v)| Value::Array(vec![t, Value::String(format_value(v))]))
                .collect();
            let mut s = Map::new();
            s.insert("metric".into(), metric);
            s.insert("values".into(), Value::Array(values));
            Value::Object(s)
        })
        .collect();
    let mut out = serde_json::json!({
        "status": "success",
        "data": {"resultType": "matrix", "result": result},
    });
    if !warnings.is_empty() {
        out["warnings"] = Value::Array(warnings);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plans_only_aggregations_of_series_kept_apart() {
        for (q, want) in [
            ("sum(rate(x[5m]))", Some(Combine::Sum)),
            ("(sum by (job) (x))", Some(Combine::Sum)),
            ("count without (cpu) (x > 2)", Some(Combine::Sum)),
            ("min(x * 2 + 1)", Some(Combine::Min)),
            ("max by (i) (max_over_time(x[10m:1m]))", Some(Combine::Max)),
            (
                "group by (job) (label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\"))",
                Some(Combine::Group),
            ),
            ("sum(x) + 1", None),
            ("avg(x)", None),
            ("topk(3, x)", None),
            ("sum(x / y)", None),
            ("sum(sum by (a) (x))", None),
            ("sum(histogram_quantile(0.9, x))", None),
            ("sum(absent(x))", None),
            ("sum(scalar(x) * y)", None),
            ("x", None),
            ("sum(", None),
        ] {
            assert_eq!(plan(q), want, "{q}");
        }
    }

    #[test]
    fn combines_points_per_series_and_time() {
        let a = json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"job": "a"}, "values": [[1, "1"], [2, "NaN"], [3, "5"]]},
        ]}});
        let b = json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"job": "a"}, "values": [[2, "4"], [3, "2"], [4, "+Inf"]]},
            {"metric": {"job": "b"}, "values": [[1.5, "7"]]},
        ]}});
        let got = |how| combine(how, &[a.clone(), b.clone()]).unwrap()["data"]["result"].clone();
        assert_eq!(
            got(Combine::Sum),
            json!([
                {"metric": {"job": "a"}, "values": [[1, "1"], [2, "NaN"], [3, "7"], [4, "+Inf"]]},
                {"metric": {"job": "b"}, "values": [[1.5, "7"]]},
            ])
        );
        assert_eq!(
            got(Combine::Min)[0]["values"],
            json!([[1, "1"], [2, "4"], [3, "2"], [4, "+Inf"]])
        );
        assert_eq!(
            got(Combine::Max)[0]["values"],
            json!([[1, "1"], [2, "4"], [3, "5"], [4, "+Inf"]])
        );
        assert_eq!(
            got(Combine::Group)[0]["values"],
            json!([[1, "1"], [2, "1"], [3, "1"], [4, "1"]])
        );
        let bad = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert!(combine(Combine::Sum, &[bad]).is_err());
    }
}
