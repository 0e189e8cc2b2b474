//! Query sharding (Mimir's idea, done on answers rather than on an embedded query): an
//! aggregation `sum|count|min|max|group|avg|topk|bottomk [by|without (…)] (inner)` whose `inner`
//! keeps every series apart (selectors, per-series functions, arithmetic with constants) is run
//! once per shard, each over the series of that shard only (`__query_shard__=i_of_n`; the
//! querier filters every selection), and the partial aggregates are combined point by point:
//! sums and counts are added, minima and maxima taken again, groups kept, an average is the
//! shards' summed sums over their summed counts (each shard runs `sum` and `count` instead of
//! `avg`), and `topk`/`bottomk` pick the k best per group and step among the shards' own k
//! best. Every series lies in exactly one shard, so the combination covers the same series as
//! the whole query.
//!
//! Sums and averages of non-integers may differ from the unsharded answer in the last bits
//! (floating-point addition is not associative); minima, maxima, counts, groups, integer sums
//! and `topk`/`bottomk` without ties are exact (among equal values, which series is picked may
//! differ, as it may between two Prometheus runs).

use crate::merge::{key_of, Key};
use promql_parser::parser::{token, Expr, LabelModifier};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How the shards' partial answers become the answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Combine {
    /// `sum`, and `count` (the count is the sum of the shards' counts).
    Sum,
    /// `min`.
    Min,
    /// `max`.
    Max,
    /// `group`: 1 wherever any shard has a point.
    Group,
    /// `avg`: the shards answer [`Plan::queries`] `sum` then `count`.
    Avg,
    /// `topk` (or with `bottom`, `bottomk`): the `k` best per group of `grouping` and step.
    TopK {
        k: usize,
        bottom: bool,
        grouping: Grouping,
    },
}

/// The labels that form the groups of `topk`/`bottomk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    By(Vec<String>),
    /// All labels but these and the metric name.
    Without(Vec<String>),
}

/// A sharded query: what each shard runs, and how the answers combine.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub how: Combine,
    /// The queries every shard runs (two for `avg`: its `sum`, then its `count`).
    pub queries: Vec<String>,
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

/// How to shard `query`, if it can be.
pub fn plan(query: &str) -> Option<Plan> {
    let mut e = strata_promql::parse(query).ok()?;
    while let Expr::Paren(p) = e {
        e = *p.expr;
    }
    let Expr::Aggregate(a) = e else { return None };
    if !shard_safe(&a.expr) {
        return None;
    }
    // `by (__name__)` over series whose names are dropped later (delayed name removal) fails
    // on duplicate label sets only when the series meet: in one shard they may not.
    if let Some(LabelModifier::Include(l)) = &a.modifier {
        if l.labels.iter().any(|n| n == "__name__") {
            return None;
        }
    }
    let as_is = |how| {
        Some(Plan {
            how,
            queries: vec![query.to_owned()],
        })
    };
    let id = a.op.id();
    match (id, &a.param) {
        (token::T_SUM | token::T_COUNT, None) => as_is(Combine::Sum),
        (token::T_MIN, None) => as_is(Combine::Min),
        (token::T_MAX, None) => as_is(Combine::Max),
        (token::T_GROUP, None) => as_is(Combine::Group),
        // The rewrite is printed back by promql-parser, which prints an `@` time before 1970
        // as 0: averages with `@` are not sharded.
        (token::T_AVG, None) if !query.contains('@') => {
            let with_op = |op| {
                let mut b = a.clone();
                b.op = token::TokenType::new(op);
                Expr::Aggregate(b).to_string()
            };
            Some(Plan {
                how: Combine::Avg,
                queries: vec![with_op(token::T_SUM), with_op(token::T_COUNT)],
            })
        }
        (token::T_TOPK | token::T_BOTTOMK, Some(param)) => {
            // Only a constant k: a k computed per step would need the same evaluation here.
            let Expr::NumberLiteral(k) = param.as_ref() else {
                return None;
            };
            if !(k.val.is_finite() && k.val >= 1.0 && k.val < 1e9) {
                return None;
            }
            let grouping = match &a.modifier {
                None => Grouping::By(Vec::new()),
                Some(LabelModifier::Include(l)) => Grouping::By(l.labels.clone()),
                Some(LabelModifier::Exclude(l)) => Grouping::Without(l.labels.clone()),
            };
            as_is(Combine::TopK {
                k: k.val as usize,
                bottom: id == token::T_BOTTOMK,
                grouping,
            })
        }
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

/// A series' points: per timestamp (ms), the JSON timestamp as received and the value.
type Points = BTreeMap<i64, (Value, f64)>;

/// The shards' matrix answers combined into one matrix answer, or why they cannot be.
/// `answers[q][i]` is shard `i`'s answer to [`Plan::queries`]`[q]`.
pub fn combine(how: &Combine, answers: &[Vec<Value>]) -> Result<Value, String> {
    let mut warnings: Vec<Value> = Vec::new();
    let first = answers.first().ok_or("no answers")?;
    let result = match how {
        Combine::Avg => {
            let [sums, counts] = answers else {
                return Err(format!("{} answers to combine an average", answers.len()));
            };
            let sums = fold(sums, Combine::Sum, &mut warnings)?;
            let mut counts = fold(counts, Combine::Sum, &mut warnings)?;
            sums.into_iter()
                .map(|(key, (metric, points))| {
                    let n = counts.remove(&key).map(|(_, p)| p).unwrap_or_default();
                    let points = points
                        .into_iter()
                        .filter_map(|(ms, (t, sum))| {
                            n.get(&ms).map(|(_, count)| (ms, (t, sum / count)))
                        })
                        .collect();
                    (metric, points)
                })
                .collect()
        }
        Combine::TopK {
            k,
            bottom,
            grouping,
        } => top_k(first, *k, *bottom, grouping, &mut warnings)?,
        how => fold(first, how.clone(), &mut warnings)?
            .into_values()
            .collect(),
    };
    Ok(matrix(result, warnings))
}

/// Calls `point(metric, ms, time, value)` for every point of the shards' matrix answers.
fn each_point(
    shards: &[Value],
    warnings: &mut Vec<Value>,
    mut point: impl FnMut(&Map<String, Value>, i64, &Value, f64),
) -> Result<(), String> {
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
            for pt in s["values"].as_array().into_iter().flatten() {
                let t = &pt[0];
                let ms = t
                    .as_f64()
                    .map(|x| (x * 1000.0).round() as i64)
                    .ok_or("a point without a numeric time")?;
                point(metric, ms, t, parse_value(&pt[1])?);
            }
        }
    }
    Ok(())
}

/// Points of equal series and time folded into one (`Sum`, `Min`, `Max` or `Group`).
fn fold(
    shards: &[Value],
    how: Combine,
    warnings: &mut Vec<Value>,
) -> Result<BTreeMap<Key, (Value, Points)>, String> {
    let mut series: BTreeMap<Key, (Value, Points)> = BTreeMap::new();
    let mut last: Option<(Map<String, Value>, Key)> = None;
    each_point(shards, warnings, |metric, ms, t, v| {
        // Points come series by series: compute a series' key once.
        if last.as_ref().is_none_or(|(m, _)| m != metric) {
            last = Some((metric.clone(), key_of(metric)));
        }
        let Some((metric, key)) = &last else { return };
        let points = &mut series
            .entry(key.clone())
            .or_insert_with(|| (Value::Object(metric.clone()), BTreeMap::new()))
            .1;
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
                    _ => *acc,
                }
            }
        }
    })?;
    Ok(series)
}

/// `topk`/`bottomk` over the shards' own `topk`/`bottomk` answers: per step and group, the `k`
/// best points (NaN last, as in PromQL), each kept in its own series.
fn top_k(
    shards: &[Value],
    k: usize,
    bottom: bool,
    grouping: &Grouping,
    warnings: &mut Vec<Value>,
) -> Result<Vec<(Value, Points)>, String> {
    let mut series: BTreeMap<Key, Value> = BTreeMap::new();
    // Per step: (group, series, JSON time, value) of every candidate.
    let mut steps: BTreeMap<i64, Vec<(Key, Key, Value, f64)>> = BTreeMap::new();
    each_point(shards, warnings, |metric, ms, t, v| {
        let key = key_of(metric);
        let group = group_of(&key, grouping);
        series
            .entry(key.clone())
            .or_insert_with(|| Value::Object(metric.clone()));
        steps
            .entry(ms)
            .or_default()
            .push((group, key, t.clone(), v));
    })?;
    let mut kept: BTreeMap<Key, Points> = BTreeMap::new();
    for (ms, mut cands) in steps {
        cands.sort_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                // NaN sorts after every number; equal values keep the series order.
                match (a.3.is_nan(), b.3.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if bottom => a.3.total_cmp(&b.3),
                    _ => b.3.total_cmp(&a.3),
                }
            })
        });
        let mut taken = 0;
        for i in 0..cands.len() {
            if i > 0 && cands[i].0 != cands[i - 1].0 {
                taken = 0;
            }
            if taken < k {
                taken += 1;
                let (_, key, t, v) = &cands[i];
                kept.entry(key.clone())
                    .or_default()
                    .insert(ms, (t.clone(), *v));
            }
        }
    }
    Ok(kept
        .into_iter()
        .filter_map(|(key, points)| series.remove(&key).map(|metric| (metric, points)))
        .collect())
}

/// The labels of `key` that `grouping` groups by.
fn group_of(key: &Key, grouping: &Grouping) -> Key {
    key.iter()
        .filter(|(name, _)| match grouping {
            Grouping::By(by) => by.contains(name),
            Grouping::Without(without) => name != "__name__" && !without.contains(name),
        })
        .cloned()
        .collect()
}

/// A matrix answer of `series`, sorted by labels as they come.
fn matrix(series: Vec<(Value, Points)>, warnings: Vec<Value>) -> Value {
    let result: Vec<Value> = series
        .into_iter()
        .filter(|(_, points)| !points.is_empty())
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn how(q: &str) -> Option<Combine> {
        plan(q).map(|p| p.how)
    }

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
            ("avg(x)", Some(Combine::Avg)),
            ("avg(x @ -60)", None),
            (
                "topk(3, x)",
                Some(Combine::TopK {
                    k: 3,
                    bottom: false,
                    grouping: Grouping::By(vec![]),
                }),
            ),
            (
                "bottomk without (cpu) (2.7, rate(x[5m]))",
                Some(Combine::TopK {
                    k: 2,
                    bottom: true,
                    grouping: Grouping::Without(vec!["cpu".into()]),
                }),
            ),
            ("topk(scalar(y), x)", None),
            ("sum by (__name__) (rate(x[5m]))", None),
            ("topk(0, x)", None),
            ("quantile(0.5, x)", None),
            ("sum(x) + 1", None),
            ("sum(x / y)", None),
            ("sum(sum by (a) (x))", None),
            ("sum(histogram_quantile(0.9, x))", None),
            ("sum(absent(x))", None),
            ("sum(scalar(x) * y)", None),
            ("x", None),
            ("sum(", None),
        ] {
            assert_eq!(how(q), want, "{q}");
        }
        // An average runs as its sum and its count, with the same grouping and argument.
        let p = plan("avg by (mode) (rate(x{a=\"b\"}[5m]))").unwrap();
        assert_eq!(p.queries.len(), 2);
        for (q, op) in p.queries.iter().zip(["sum", "count"]) {
            let e = strata_promql::parse(q).unwrap();
            let Expr::Aggregate(a) = e else { panic!("{q}") };
            assert_eq!(a.op.to_string(), op, "{q}");
            assert!(
                q.contains("by (mode)") && q.contains("rate(x{a=\"b\"}[5m])"),
                "{q}"
            );
        }
        assert_eq!(plan("sum(x)").unwrap().queries, vec!["sum(x)".to_owned()]);
    }

    fn answer(result: Value) -> Value {
        json!({"status": "success", "data": {"resultType": "matrix", "result": result}})
    }

    #[test]
    fn combines_points_per_series_and_time() {
        let a = answer(json!([
            {"metric": {"job": "a"}, "values": [[1, "1"], [2, "NaN"], [3, "5"]]},
        ]));
        let b = answer(json!([
            {"metric": {"job": "a"}, "values": [[2, "4"], [3, "2"], [4, "+Inf"]]},
            {"metric": {"job": "b"}, "values": [[1.5, "7"]]},
        ]));
        let got = |how: Combine| {
            combine(&how, &[vec![a.clone(), b.clone()]]).unwrap()["data"]["result"].clone()
        };
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
        assert!(combine(&Combine::Sum, &[vec![bad]]).is_err());
    }

    #[test]
    fn averages_divide_summed_sums_by_summed_counts() {
        let sums = [
            answer(json!([{"metric": {"m": "x"}, "values": [[1, "3"], [2, "1"]]}])),
            answer(json!([{"metric": {"m": "x"}, "values": [[1, "6"]]}])),
        ];
        let counts = [
            answer(json!([{"metric": {"m": "x"}, "values": [[1, "1"], [2, "1"]]}])),
            answer(json!([{"metric": {"m": "x"}, "values": [[1, "2"]]}])),
        ];
        let got = combine(&Combine::Avg, &[sums.to_vec(), counts.to_vec()]).unwrap();
        assert_eq!(
            got["data"]["result"],
            json!([{"metric": {"m": "x"}, "values": [[1, "3"], [2, "1"]]}])
        );
        assert!(combine(&Combine::Avg, &[sums.to_vec()]).is_err());
    }

    #[test]
    fn topk_keeps_the_k_best_per_group_and_step() {
        // Shard answers of `topk by (g) (1, …)`: each shard's best per group and step.
        let s1 = answer(json!([
            {"metric": {"__name__": "x", "g": "a", "i": "1"}, "values": [[1, "5"], [2, "1"]]},
            {"metric": {"__name__": "x", "g": "b", "i": "2"}, "values": [[1, "NaN"]]},
        ]));
        let s2 = answer(json!([
            {"metric": {"__name__": "x", "g": "a", "i": "3"}, "values": [[1, "4"], [2, "9"]]},
            {"metric": {"__name__": "x", "g": "b", "i": "4"}, "values": [[1, "-1"]]},
        ]));
        let by_g = Combine::TopK {
            k: 1,
            bottom: false,
            grouping: Grouping::By(vec!["g".into()]),
        };
        let got = combine(&by_g, &[vec![s1.clone(), s2.clone()]]).unwrap();
        assert_eq!(
            got["data"]["result"],
            json!([
                {"metric": {"__name__": "x", "g": "a", "i": "1"}, "values": [[1, "5"]]},
                {"metric": {"__name__": "x", "g": "a", "i": "3"}, "values": [[2, "9"]]},
                {"metric": {"__name__": "x", "g": "b", "i": "4"}, "values": [[1, "-1"]]},
            ])
        );
        // bottomk without (i): one group per g; NaN is still the last choice.
        let bottom = Combine::TopK {
            k: 1,
            bottom: true,
            grouping: Grouping::Without(vec!["i".into()]),
        };
        let got = combine(&bottom, &[vec![s1, s2]]).unwrap();
        assert_eq!(
            got["data"]["result"],
            json!([
                {"metric": {"__name__": "x", "g": "a", "i": "1"}, "values": [[2, "1"]]},
                {"metric": {"__name__": "x", "g": "a", "i": "3"}, "values": [[1, "4"]]},
                {"metric": {"__name__": "x", "g": "b", "i": "4"}, "values": [[1, "-1"]]},
            ])
        );
    }
}
