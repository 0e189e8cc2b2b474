//! Function calls: engine-level functions (those that need labels, selectors or ordering) here;
//! per-value and per-window kernels in `crate::functions`.

use super::{drop_name, merge_same_labels, Evaluator, RangeArg, Steps, Val, SV};
use crate::functions::{self, RangeWindow};
use crate::EvalError;
use promql_parser::parser::{Call, Expr};
use regex::Regex;
use strata_model::{Label, Labels, MatchOp, METRIC_NAME};

/// Functions whose output keeps the metric name.
fn keeps_name(name: &str) -> bool {
    matches!(
        name,
        "last_over_time"
            | "first_over_time"
            | "label_replace"
            | "label_join"
            | "sort"
            | "sort_desc"
            | "sort_by_label"
            | "sort_by_label_desc"
    )
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

fn string_arg(e: &Expr) -> Result<String, EvalError> {
    match unwrap_parens(e) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        other => Err(EvalError::Execution(format!(
            "expected a string literal, got {other}"
        ))),
    }
}

fn is_counter_name(name: &str) -> bool {
    name.ends_with("_total")
        || name.ends_with("_sum")
        || name.ends_with("_count")
        || name.ends_with("_bucket")
}

/// Expands `$1`, `${1}`, `$name`, `${name}` in a regex replacement like Go's `Regexp.Expand`.
fn expand(re: &Regex, caps: &regex::Captures<'_>, template: &str) -> String {
    let mut out = String::new();
    caps.expand(template, &mut out);
    let _ = re;
    out
}

impl Evaluator {
    pub(super) fn call(&mut self, c: &Call, steps: &Steps) -> Result<Val, EvalError> {
        let name = c.func.name;
        let args = &c.args.args;
        match name {
            "time" => {
                return Ok(Val::Scalar(
                    (0..steps.n).map(|i| steps.ts(i) as f64 / 1000.0).collect(),
                ))
            }
            "pi" => return Ok(Val::Scalar(vec![std::f64::consts::PI; steps.n])),
            "vector" => {
                let v = self.scalar_arg(&args[0], steps)?;
                return Ok(Val::Vector(vec![SV {
                    labels: Labels::default(),
                    vals: v.into_iter().map(Some).collect(),
                    drop: false,
                }]));
            }
            "scalar" => {
                let v = self.vector_arg(&args[0], steps)?;
                let out = (0..steps.n)
                    .map(|i| {
                        let mut present = v.iter().filter_map(|s| s.vals[i]);
                        match (present.next(), present.next()) {
                            (Some(x), None) => x,
                            _ => f64::NAN,
                        }
                    })
                    .collect();
                return Ok(Val::Scalar(out));
            }
            "timestamp" => {
                let out = match unwrap_parens(&args[0]) {
                    Expr::VectorSelector(vs) => self.vector_selector(vs, steps, true)?,
                    other => {
                        let v = self.vector_arg(other, steps)?;
                        v.into_iter()
                            .map(|s| SV {
                                labels: s.labels,
                                vals: s
                                    .vals
                                    .iter()
                                    .enumerate()
                                    .map(|(i, x)| x.map(|_| steps.ts(i) as f64 / 1000.0))
                                    .collect(),
                                drop: true,
                            })
                            .collect()
                    }
                };
                let out = out
                    .into_iter()
                    .map(|s| SV {
                        labels: s.labels,
                        vals: s.vals,
                        drop: true,
                    })
                    .collect();
                return Ok(Val::Vector(out));
            }
            "absent" | "absent_over_time" => return self.absent(name, &args[0], steps),
            "label_replace" => return self.label_replace(args, steps),
            "label_join" => return self.label_join(args, steps),
            "sort" | "sort_desc" => {
                let mut v = self.vector_arg(&args[0], steps)?;
                if self.is_range {
                    let msg = "PromQL warning: sort is ineffective for range queries since results are always ordered by labels".to_string();
                    if !self.warnings.contains(&msg) {
                        self.warnings.push(msg);
                    }
                }
                if steps.n == 1 {
                    let desc = name == "sort_desc";
                    v.sort_by(|a, b| {
                        let (x, y) = (a.vals[0].unwrap_or(f64::NAN), b.vals[0].unwrap_or(f64::NAN));
                        // NaN last in both directions, as Prometheus.
                        match (x.is_nan(), y.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            _ if desc => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                            _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                        }
                    });
                }
                return Ok(Val::Vector(v));
            }
            "sort_by_label" | "sort_by_label_desc" => {
                let mut v = self.vector_arg(&args[0], steps)?;
                let names: Vec<String> = args[1..]
                    .iter()
                    .map(|a| string_arg(a))
                    .collect::<Result<_, _>>()?;
                let desc = name == "sort_by_label_desc";
                v.sort_by(|a, b| {
                    let mut o = std::cmp::Ordering::Equal;
                    for n in &names {
                        o = a
                            .labels
                            .get(n)
                            .unwrap_or("")
                            .cmp(b.labels.get(n).unwrap_or(""));
                        if o.is_ne() {
                            break;
                        }
                    }
                    if o.is_eq() {
                        o = a.labels.cmp(&b.labels);
                    }
                    if desc {
                        o.reverse()
                    } else {
                        o
                    }
                });
                return Ok(Val::Vector(v));
            }
            "histogram_quantile" => return self.classic_histogram(name, args, steps),
            "histogram_fraction" => return self.classic_histogram(name, args, steps),
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                // Only native histograms have these; float series yield nothing.
                return Ok(Val::Vector(Vec::new()));
            }
            "clamp" | "clamp_min" | "clamp_max" => return self.clamp(name, args, steps),
            "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour"
            | "minute" | "month" | "year"
                if args.is_empty() =>
            {
                let f = functions::instant::lookup(name)
                    .ok_or_else(|| EvalError::Execution(format!("unknown function {name}")))?;
                let vals = (0..steps.n)
                    .map(|i| Some(f(steps.ts(i) as f64 / 1000.0, &[])))
                    .collect();
                return Ok(Val::Vector(vec![SV {
                    labels: Labels::default(),
                    vals,
                    drop: false,
                }]));
            }
            _ => {}
        }
        if let Some(f) = functions::range::lookup(name) {
            return self.range_function(name, f, args, steps);
        }
        if let Some(f) = functions::instant::lookup(name) {
            let v = self.vector_arg(&args[0], steps)?;
            let params: Vec<Vec<f64>> = args[1..]
                .iter()
                .map(|a| self.scalar_arg(a, steps))
                .collect::<Result<_, _>>()?;
            let mut p = vec![0.0; params.len()];
            let out: Vec<SV> = v
                .into_iter()
                .map(|s| {
                    let vals = s
                        .vals
                        .iter()
                        .enumerate()
                        .map(|(i, x)| {
                            x.map(|x| {
                                for (k, pv) in params.iter().enumerate() {
                                    p[k] = pv[i];
                                }
                                f(x, &p)
                            })
                        })
                        .collect();
                    SV {
                        drop: s.drop || !keeps_name(name),
                        labels: s.labels,
                        vals,
                    }
                })
                .collect();
            return Ok(Val::Vector(merge_same_labels(out)?));
        }
        Err(EvalError::Execution(format!(
            "function {name:?} is not supported yet"
        )))
    }

    fn range_function(
        &mut self,
        name: &str,
        f: functions::RangeFn,
        args: &[Box<Expr>],
        steps: &Steps,
    ) -> Result<Val, EvalError> {
        // Which argument is the range vector; the others are scalars in call order.
        let range_idx = if name == "quantile_over_time" { 1 } else { 0 };
        let mut params: Vec<Vec<f64>> = Vec::new();
        for (k, a) in args.iter().enumerate() {
            if k != range_idx {
                params.push(self.scalar_arg(a, steps)?);
            }
        }
        if name == "double_exponential_smoothing" || name == "holt_winters" {
            for (&sf, &tf) in params[0].iter().zip(&params[1]) {
                if let Some(msg) = functions::range::double_exponential_smoothing_arg_error(sf, tf)
                {
                    return Err(EvalError::Execution(msg));
                }
            }
        }
        if name == "predict_linear" {
            // The kernel predicts from the evaluation time, which differs from the window end
            // under `offset`/`@`.
            params.push((0..steps.n).map(|i| steps.ts(i) as f64).collect());
        }
        let arg = self.range_arg(&args[range_idx], steps)?;
        let keep = keeps_name(name);
        let counter_check = matches!(name, "rate" | "increase");
        let out = self.apply_range(f, arg, &params, steps, keep, counter_check)?;
        if name == "quantile_over_time" && !out.is_empty() {
            for &q in &params[0] {
                self.quantile_warning(q);
            }
        }
        Ok(Val::Vector(if keep {
            out
        } else {
            merge_same_labels(out)?
        }))
    }

    pub(super) fn quantile_warning(&mut self, q: f64) {
        if q.is_nan() || !(0.0..=1.0).contains(&q) {
            let msg = format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                go_g(q)
            );
            if !self.warnings.contains(&msg) {
                self.warnings.push(msg);
            }
        }
    }

    fn counter_annotation(&mut self, labels: &Labels) {
        if let Some(n) = labels.get(METRIC_NAME) {
            if !is_counter_name(n) {
                let msg = format!(
                    "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}"
                );
                if !self.infos.contains(&msg) {
                    self.infos.push(msg);
                }
            }
        }
    }

    pub(super) fn apply_range(
        &mut self,
        f: functions::RangeFn,
        arg: RangeArg,
        params: &[Vec<f64>],
        steps: &Steps,
        keep_name: bool,
        counter_check: bool,
    ) -> Result<Vec<SV>, EvalError> {
        self.check_budget(arg.len().saturating_mul(steps.n))?;
        self.check_memory(self.vector_bytes(arg.len(), steps.n))?;
        // Series are independent: split them over the cores (PERFORMANCE.md §2: one pass per
        // series, parallel across series).
        let results = super::parallel::map_series(arg.len(), |k, buf| {
            window_values(f, &arg, k, params, steps, buf)
        });
        let mut out = Vec::new();
        for (k, vals) in results.into_iter().enumerate() {
            let Some(vals) = vals else { continue };
            let labels = arg.labels(k).clone();
            if counter_check {
                self.counter_annotation(&labels);
            }
            out.push(SV {
                labels,
                vals,
                drop: !keep_name || arg.drop[k],
            });
        }
        Ok(out)
    }

    fn absent(&mut self, name: &str, arg: &Expr, steps: &Steps) -> Result<Val, EvalError> {
        let present: Vec<bool> = if name == "absent" {
            let v = self.vector_arg(arg, steps)?;
            (0..steps.n)
                .map(|i| v.iter().any(|s| s.vals[i].is_some()))
                .collect()
        } else {
            let a = self.range_arg(arg, steps)?;
            let mut present = vec![false; steps.n];
            let mut buf = Vec::new();
            for k in 0..a.len() {
                a.samples_into(k, &mut buf);
                for (i, p) in present.iter_mut().enumerate() {
                    let (start, end) = a.window(steps, i);
                    *p = *p || buf.iter().any(|x| x.t > start && x.t <= end);
                }
            }
            present
        };
        // Labels come from the selector's equality matchers (ambiguous names are left out).
        let sel = match unwrap_parens(arg) {
            Expr::VectorSelector(vs) => Some(vs),
            Expr::MatrixSelector(ms) => Some(&ms.vs),
            _ => None,
        };
        let mut labels = Vec::new();
        if let Some(vs) = sel {
            let sets = crate::engine::selector_matchers(vs)?;
            if let Some(ms) = sets.first() {
                let mut seen: Vec<&str> = Vec::new();
                for m in ms {
                    if m.name == METRIC_NAME {
                        continue;
                    }
                    if seen.contains(&m.name.as_str()) {
                        labels.retain(|l: &Label| l.name != m.name);
                        continue;
                    }
                    seen.push(&m.name);
                    if m.op == MatchOp::Equal {
                        labels.push(Label::new(m.name.clone(), m.value.clone()));
                    }
                }
            }
        }
        let vals: Vec<Option<f64>> = present.iter().map(|&p| (!p).then_some(1.0)).collect();
        if vals.iter().all(Option::is_none) {
            return Ok(Val::Vector(Vec::new()));
        }
        Ok(Val::Vector(vec![SV {
            labels: Labels::from_pairs(labels.into_iter().map(|l| (l.name, l.value))),
            vals,
            drop: false,
        }]))
    }

    fn label_replace(&mut self, args: &[Box<Expr>], steps: &Steps) -> Result<Val, EvalError> {
        let v = self.vector_arg(&args[0], steps)?;
        let dst = string_arg(&args[1])?;
        let repl = string_arg(&args[2])?;
        let src = string_arg(&args[3])?;
        let pattern = string_arg(&args[4])?;
        let re = Regex::new(&format!("^(?s:{pattern})$")).map_err(|_| {
            EvalError::Execution(format!(
                "invalid regular expression in label_replace(): {pattern}"
            ))
        })?;
        if !is_label_name(&dst) {
            return Err(EvalError::Execution(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        let out: Vec<SV> = v
            .into_iter()
            .map(|s| {
                let val = s.labels.get(&src).unwrap_or("");
                let labels = match re.captures(val) {
                    Some(caps) => {
                        let new = expand(&re, &caps, &repl);
                        set_label(&s.labels, &dst, &new)
                    }
                    None => s.labels,
                };
                SV {
                    labels,
                    vals: s.vals,
                    // Writing `__name__` explicitly keeps it.
                    drop: s.drop && dst != METRIC_NAME,
                }
            })
            .collect();
        Ok(Val::Vector(merge_same_labels(out)?))
    }

    fn label_join(&mut self, args: &[Box<Expr>], steps: &Steps) -> Result<Val, EvalError> {
        let v = self.vector_arg(&args[0], steps)?;
        let dst = string_arg(&args[1])?;
        let sep = string_arg(&args[2])?;
        let srcs: Vec<String> = args[3..]
            .iter()
            .map(|a| string_arg(a))
            .collect::<Result<_, _>>()?;
        if !is_label_name(&dst) {
            return Err(EvalError::Execution(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        let out: Vec<SV> = v
            .into_iter()
            .map(|s| {
                let joined: Vec<&str> =
                    srcs.iter().map(|n| s.labels.get(n).unwrap_or("")).collect();
                let labels = set_label(&s.labels, &dst, &joined.join(&sep));
                SV {
                    labels,
                    vals: s.vals,
                    drop: s.drop && dst != METRIC_NAME,
                }
            })
            .collect();
        Ok(Val::Vector(merge_same_labels(out)?))
    }

    fn clamp(&mut self, name: &str, args: &[Box<Expr>], steps: &Steps) -> Result<Val, EvalError> {
        let v = self.vector_arg(&args[0], steps)?;
        let a = self.scalar_arg(&args[1], steps)?;
        let b = if name == "clamp" {
            Some(self.scalar_arg(&args[2], steps)?)
        } else {
            None
        };
        let out: Vec<SV> = v
            .into_iter()
            .map(|s| {
                let vals = s
                    .vals
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        let x = (*x)?;
                        match name {
                            "clamp_min" => {
                                Some(x.max(a[i]).max(if x.is_nan() { f64::NAN } else { a[i] }))
                            }
                            "clamp_max" => Some(if x.is_nan() || a[i].is_nan() {
                                f64::NAN
                            } else {
                                x.min(a[i])
                            }),
                            _ => {
                                let (lo, hi) = (a[i], b.as_ref().map_or(f64::NAN, |b| b[i]));
                                if lo > hi {
                                    None
                                } else if x.is_nan() || lo.is_nan() || hi.is_nan() {
                                    Some(f64::NAN)
                                } else {
                                    Some(x.max(lo).min(hi))
                                }
                            }
                        }
                    })
                    .collect::<Vec<_>>();
                SV {
                    labels: s.labels,
                    vals,
                    drop: true,
                }
            })
            .filter(|s| s.vals.iter().any(Option::is_some))
            .collect();
        Ok(Val::Vector(merge_same_labels(out)?))
    }

    /// `histogram_quantile(q, v)` and `histogram_fraction(lower, upper, v)` over classic
    /// `le` buckets.
    fn classic_histogram(
        &mut self,
        name: &str,
        args: &[Box<Expr>],
        steps: &Steps,
    ) -> Result<Val, EvalError> {
        let fraction = name == "histogram_fraction";
        let q = self.scalar_arg(&args[0], steps)?;
        let upper = if fraction {
            self.scalar_arg(&args[1], steps)?
        } else {
            Vec::new()
        };
        if !fraction {
            for &x in &q {
                self.quantile_warning(x);
            }
        }
        let v = self.vector_arg(&args[if fraction { 2 } else { 1 }], steps)?;
        let mut groups: std::collections::HashMap<Labels, Vec<(f64, usize)>> =
            std::collections::HashMap::new();
        for (idx, s) in v.iter().enumerate() {
            let le = s.labels.get("le").unwrap_or("");
            let Some(bound) = parse_le(le) else {
                let name = s.labels.get(METRIC_NAME).unwrap_or("");
                let msg = format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {name:?}"
                );
                if !self.warnings.contains(&msg) {
                    self.warnings.push(msg);
                }
                continue;
            };
            // Grouped with the metric name, dropped only from the output: buckets of
            // different metrics never mix, and colliding outputs are an error.
            let key = Labels::from_sorted(
                s.labels
                    .iter()
                    .filter(|l| l.name != "le")
                    .cloned()
                    .collect(),
            );
            groups.entry(key).or_default().push((bound, idx));
        }
        let mut out = Vec::new();
        for (labels, members) in groups {
            let mut vals = vec![None; steps.n];
            for (i, slot) in vals.iter_mut().enumerate() {
                let mut buckets: Vec<(f64, f64)> = members
                    .iter()
                    .filter_map(|&(b, idx)| v[idx].vals[i].map(|c| (b, c)))
                    .collect();
                if buckets.is_empty() {
                    continue;
                }
                if fraction {
                    *slot = Some(functions::histogram::bucket_fraction(
                        q[i],
                        upper[i],
                        &mut buckets,
                    ));
                    continue;
                }
                let (val, fixed) = functions::histogram::bucket_quantile(q[i], &mut buckets);
                if fixed {
                    let name = v[members[0].1]
                        .labels
                        .get(METRIC_NAME)
                        .unwrap_or("")
                        .to_owned();
                    let msg = format!(
                        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}"
                    );
                    if !self.infos.contains(&msg) {
                        self.infos.push(msg);
                    }
                }
                *slot = Some(val);
            }
            out.push(SV {
                labels: drop_name(&labels),
                vals,
                drop: false,
            });
        }
        Ok(Val::Vector(merge_same_labels(out)?))
    }
}

/// Go's `%g` for the few values annotations print.
pub(super) fn go_g(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.trim().parse::<f64>().ok(),
    }
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Returns labels with `name` set to `value` (removed when empty).
fn set_label(l: &Labels, name: &str, value: &str) -> Labels {
    let mut pairs: Vec<Label> = l.iter().filter(|x| x.name != name).cloned().collect();
    if !value.is_empty() {
        pairs.push(Label::new(name, value));
        pairs.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Labels::from_sorted(pairs)
}

/// The values of range function `f` for series `k` at every step, or `None` if it produced no
/// point at all.
fn window_values(
    f: functions::RangeFn,
    arg: &RangeArg,
    k: usize,
    params: &[Vec<f64>],
    steps: &Steps,
    buf: &mut Vec<strata_model::Sample>,
) -> Option<Vec<Option<f64>>> {
    let (range, offset, at) = (arg.range, arg.offset, arg.at);
    arg.samples_into(k, buf);
    let samples = &buf[..];
    if samples.is_empty() {
        return None;
    }
    let mut p = vec![0.0; params.len()];
    let (mut lo, mut hi) = (0usize, 0usize);
    let mut vals = vec![None; steps.n];
    let mut any = false;
    for (i, slot) in vals.iter_mut().enumerate() {
        let end = at.unwrap_or_else(|| steps.ts(i)) - offset;
        let start = end - range;
        if at.is_some() && i > 0 {
            // Same window at every step.
            (lo, hi) = (0, 0);
        }
        while hi < samples.len() && samples[hi].t <= end {
            hi += 1;
        }
        while lo < hi && samples[lo].t <= start {
            lo += 1;
        }
        if lo >= hi {
            continue;
        }
        for (j, pv) in params.iter().enumerate() {
            p[j] = pv[i];
        }
        let w = RangeWindow {
            samples: &samples[lo..hi],
            start,
            end,
            params: &p,
        };
        if let Some(v) = f(&w) {
            *slot = Some(v);
            any = true;
        }
    }
    any.then_some(vals)
}
