//! Aggregations: series are assigned to groups once, then folded step by step into dense
//! `[group][step]` accumulators.

use super::{Evaluator, Steps, Val, SV};
use crate::functions::histogram::quantile;
use crate::EvalError;
use promql_parser::parser::{AggregateExpr, LabelModifier};
use std::collections::HashMap;
use strata_model::{Label, Labels, METRIC_NAME};

/// Bytes of accumulators per group and step in the worst case (`avg`: count, Kahan sum, mean,
/// overflow flag, output value).
const AGGREGATION_BYTES_PER_POINT: usize = 48;

/// The labels of a series' group under `by`/`without`.
pub(crate) fn group_labels(l: &Labels, modifier: &Option<LabelModifier>) -> Labels {
    match modifier {
        None => Labels::default(),
        Some(LabelModifier::Include(by)) => Labels::from_sorted(
            l.iter()
                .filter(|x| by.labels.contains(&x.name))
                .cloned()
                .collect(),
        ),
        Some(LabelModifier::Exclude(without)) => Labels::from_sorted(
            l.iter()
                .filter(|x| x.name != METRIC_NAME && !without.labels.contains(&x.name))
                .cloned()
                .collect(),
        ),
    }
}

/// Kahan-compensated running sum, as Prometheus uses for `sum` and `avg`.
#[derive(Debug, Clone, Copy, Default)]
struct Kahan {
    sum: f64,
    c: f64,
}

impl Kahan {
    #[inline]
    fn add(&mut self, v: f64) {
        let t = self.sum + v;
        if t.is_infinite() {
            self.c = 0.0;
        } else if self.sum.abs() >= v.abs() {
            self.c += (self.sum - t) + v;
        } else {
            self.c += (v - t) + self.sum;
        }
        self.sum = t;
    }

    #[inline]
    fn value(&self) -> f64 {
        self.sum + self.c
    }
}

impl Evaluator {
    pub(super) fn aggregate(&mut self, a: &AggregateExpr, steps: &Steps) -> Result<Val, EvalError> {
        let op = a.op.to_string();
        let param = match &a.param {
            Some(p) if op != "count_values" => Some(self.scalar_arg(p, steps)?),
            _ => None,
        };
        let input = self.vector_arg(&a.expr, steps)?;
        match op.as_str() {
            "topk" | "bottomk" => {
                return self.topk(&op, input, param.unwrap_or_default(), &a.modifier, steps)
            }
            "limitk" | "limit_ratio" => {
                return Err(EvalError::Execution(format!("{op} is not supported")))
            }
            "count_values" => {
                let label = match a.param.as_deref() {
                    Some(promql_parser::parser::Expr::StringLiteral(s)) => s.val.clone(),
                    _ => match a.param.as_deref().map(|p| self.eval(p, steps)) {
                        Some(Ok(Val::String(s))) => s,
                        _ => {
                            return Err(EvalError::Execution(
                                "count_values needs a string label name".into(),
                            ))
                        }
                    },
                };
                return count_values(&label, input, &a.modifier, steps);
            }
            _ => {}
        }
        // Assign series to groups.
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<Labels> = Vec::new();
        let mut member: Vec<usize> = Vec::with_capacity(input.len());
        let mut group_drop: Vec<bool> = Vec::new();
        for s in &input {
            let g = group_labels(&s.labels, &a.modifier);
            let id = match index.get(&g) {
                Some(&id) => id,
                None => {
                    groups.push(g.clone());
                    group_drop.push(false);
                    index.insert(g, groups.len() - 1);
                    groups.len() - 1
                }
            };
            // A group keeps `__name__` only under `by (__name__)`; it is dropped at the end if
            // any member's name was to be dropped.
            if s.drop && groups[id].get(METRIC_NAME).is_some() {
                group_drop[id] = true;
            }
            member.push(id);
        }
        let n = steps.n;
        let ng = groups.len();
        self.check_budget(ng * n)?;
        // The dense accumulators: a count, a sum or running mean, and the output value per
        // group and step.
        self.check_memory(
            (ng * n)
                .saturating_mul(AGGREGATION_BYTES_PER_POINT)
                .saturating_add(self.vector_bytes(ng, 0)),
        )?;
        let mut count = vec![0u32; ng * n];
        let out_vals: Vec<Option<f64>> = match op.as_str() {
            "sum" | "avg" => {
                let mut acc = vec![Kahan::default(); ng * n];
                // avg uses a running mean when sums overflow, like Prometheus.
                let mut mean = vec![0.0f64; ng * n];
                let mut use_mean = vec![false; ng * n];
                for (s, &g) in input.iter().zip(&member) {
                    for (i, v) in s.vals.iter().enumerate() {
                        if let Some(v) = *v {
                            let k = g * n + i;
                            count[k] += 1;
                            if op == "avg" {
                                if count[k] == 1 {
                                    acc[k] = Kahan { sum: v, c: 0.0 };
                                    continue;
                                }
                                if !use_mean[k] {
                                    let mut trial = acc[k];
                                    trial.add(v);
                                    if trial.sum.is_infinite()
                                        && !v.is_infinite()
                                        && !acc[k].sum.is_infinite()
                                    {
                                        use_mean[k] = true;
                                        mean[k] = acc[k].value() / f64::from(count[k] - 1);
                                    } else {
                                        acc[k] = trial;
                                        continue;
                                    }
                                }
                                if mean[k].is_infinite() {
                                    if v.is_infinite() && (mean[k] > 0.0) == (v > 0.0) {
                                        continue;
                                    }
                                    if !v.is_infinite() && !v.is_nan() {
                                        continue;
                                    }
                                }
                                mean[k] += v / f64::from(count[k]) - mean[k] / f64::from(count[k]);
                            } else {
                                acc[k].add(v);
                            }
                        }
                    }
                }
                (0..ng * n)
                    .map(|k| {
                        (count[k] > 0).then(|| {
                            if op == "avg" {
                                if use_mean[k] {
                                    mean[k]
                                } else {
                                    acc[k].value() / f64::from(count[k])
                                }
                            } else {
                                acc[k].value()
                            }
                        })
                    })
                    .collect()
            }
            "count" | "group" => {
                for (s, &g) in input.iter().zip(&member) {
                    for (i, v) in s.vals.iter().enumerate() {
                        if v.is_some() {
                            count[g * n + i] += 1;
                        }
                    }
                }
                count
                    .iter()
                    .map(|&c| (c > 0).then_some(if op == "count" { f64::from(c) } else { 1.0 }))
                    .collect()
            }
            "min" | "max" => {
                let mut acc = vec![0.0f64; ng * n];
                let is_max = op == "max";
                for (s, &g) in input.iter().zip(&member) {
                    for (i, v) in s.vals.iter().enumerate() {
                        if let Some(v) = *v {
                            let k = g * n + i;
                            count[k] += 1;
                            let cur = acc[k];
                            if count[k] == 1
                                || cur.is_nan()
                                || (is_max && v > cur)
                                || (!is_max && v < cur)
                            {
                                acc[k] = v;
                            }
                        }
                    }
                }
                (0..ng * n)
                    .map(|k| (count[k] > 0).then_some(acc[k]))
                    .collect()
            }
            "stddev" | "stdvar" => {
                let mut mean = vec![0.0f64; ng * n];
                let mut m2 = vec![0.0f64; ng * n];
                for (s, &g) in input.iter().zip(&member) {
                    for (i, v) in s.vals.iter().enumerate() {
                        if let Some(v) = *v {
                            let k = g * n + i;
                            count[k] += 1;
                            let c = f64::from(count[k]);
                            let delta = v - mean[k];
                            mean[k] += delta / c;
                            m2[k] += delta * (v - mean[k]);
                        }
                    }
                }
                (0..ng * n)
                    .map(|k| {
                        (count[k] > 0).then(|| {
                            let var = m2[k] / f64::from(count[k]);
                            if op == "stddev" {
                                var.sqrt()
                            } else {
                                var
                            }
                        })
                    })
                    .collect()
            }
            "quantile" => {
                let q = param.unwrap_or_default();
                for &x in &q {
                    self.quantile_warning(x);
                }
                let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); ng * n];
                for (s, &g) in input.iter().zip(&member) {
                    for (i, v) in s.vals.iter().enumerate() {
                        if let Some(v) = *v {
                            buckets[g * n + i].push(v);
                        }
                    }
                }
                buckets
                    .iter_mut()
                    .enumerate()
                    .map(|(k, b)| (!b.is_empty()).then(|| quantile(q[k % n], b)))
                    .collect()
            }
            other => {
                return Err(EvalError::Execution(format!(
                    "unsupported aggregation {other}"
                )))
            }
        };
        let out = groups
            .into_iter()
            .enumerate()
            .map(|(g, labels)| SV {
                labels,
                vals: out_vals[g * n..(g + 1) * n].to_vec(),
                drop: group_drop[g],
            })
            .filter(|s| s.vals.iter().any(Option::is_some))
            .collect();
        Ok(Val::Vector(out))
    }

    fn topk(
        &mut self,
        op: &str,
        input: Vec<SV>,
        k: Vec<f64>,
        modifier: &Option<LabelModifier>,
        steps: &Steps,
    ) -> Result<Val, EvalError> {
        let mut groups: HashMap<Labels, Vec<usize>> = HashMap::new();
        for (i, s) in input.iter().enumerate() {
            groups
                .entry(group_labels(&s.labels, modifier))
                .or_default()
                .push(i);
        }
        let top = op == "topk";
        if k.iter().any(|x| x.is_nan()) {
            return Err(EvalError::Execution("Parameter value is NaN".into()));
        }
        let mut keep = vec![vec![false; steps.n]; input.len()];
        for members in groups.values() {
            for step in 0..steps.n {
                let kk = k[step];
                if kk < 1.0 {
                    continue;
                }
                let kk = if kk > 9.0e18 { usize::MAX } else { kk as usize };
                let mut cands: Vec<(usize, f64)> = members
                    .iter()
                    .filter_map(|&i| input[i].vals[step].map(|v| (i, v)))
                    .collect();
                // NaN sorts last for both topk and bottomk, as in Prometheus.
                cands.sort_by(|a, b| {
                    let (x, y) = (a.1, b.1);
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if top => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                        _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                    }
                });
                for (i, _) in cands.into_iter().take(kk) {
                    keep[i][step] = true;
                }
            }
        }
        let mut out = Vec::new();
        for (s, kp) in input.into_iter().zip(keep) {
            if kp.iter().any(|&b| b) {
                let vals = s
                    .vals
                    .into_iter()
                    .zip(kp)
                    .map(|(v, k)| if k { v } else { None })
                    .collect();
                out.push(SV {
                    labels: s.labels,
                    vals,
                    drop: s.drop,
                });
            }
        }
        if steps.n == 1 {
            // An instant topk/bottomk returns its series in rank order.
            out.sort_by(|a, b| {
                let (x, y) = (a.vals[0].unwrap_or(f64::NAN), b.vals[0].unwrap_or(f64::NAN));
                let o = if top {
                    y.partial_cmp(&x)
                } else {
                    x.partial_cmp(&y)
                };
                o.unwrap_or(std::cmp::Ordering::Equal)
            });
        }
        Ok(Val::Vector(out))
    }
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        // Go's strconv.FormatFloat(v, 'f', -1, 64): shortest representation, no exponent.
        let s = format!("{v}");
        s
    }
}

fn count_values(
    label: &str,
    input: Vec<SV>,
    modifier: &Option<LabelModifier>,
    steps: &Steps,
) -> Result<Val, EvalError> {
    let mut groups: HashMap<Labels, Vec<Option<f64>>> = HashMap::new();
    for s in &input {
        let base = group_labels(&s.labels, modifier);
        for (i, v) in s.vals.iter().enumerate() {
            if let Some(v) = *v {
                let mut pairs: Vec<Label> =
                    base.iter().filter(|l| l.name != label).cloned().collect();
                pairs.push(Label::new(label, format_value(v)));
                pairs.sort_by(|a, b| a.name.cmp(&b.name));
                let key = Labels::from_sorted(pairs);
                let e = groups.entry(key).or_insert_with(|| vec![None; steps.n]);
                e[i] = Some(e[i].unwrap_or(0.0) + 1.0);
            }
        }
    }
    Ok(Val::Vector(
        groups
            .into_iter()
            .map(|(labels, vals)| SV {
                labels,
                vals,
                drop: false,
            })
            .collect(),
    ))
}
