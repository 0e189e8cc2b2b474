//! Node-at-a-time evaluation over all steps.
//!
//! Every instant-vector node yields, per output series, one optional value per step; selectors
//! walk each series' samples once across all steps, and range functions slide a window over
//! them (O(samples + steps) per series, PERFORMANCE.md §2).

mod aggregate;
mod binary;
mod call;
mod parallel;

use crate::engine::{offset_ms, EngineOptions, QueryTimes};
use crate::EvalError;
use promql_parser::parser::{Expr, MatrixSelector, SubqueryExpr, VectorSelector};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_model::{is_stale_nan, Labels, Sample};
use strata_storage::limits::samples_heap_bytes;
use strata_storage::query::Series;
use strata_storage::{ChunkedSeries, LimitExceeded, ReadLimit};

/// The evaluation grid: `n` steps from `start`, `step` ms apart.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Steps {
    pub start: i64,
    pub step: i64,
    pub n: usize,
}

impl Steps {
    pub fn new(start: i64, end: i64, step: i64) -> Self {
        let n = ((end - start) / step) as usize + 1;
        Self { start, step, n }
    }

    #[inline]
    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
}

/// One series of an instant vector across all steps.
#[derive(Debug, Clone)]
pub(crate) struct SV {
    pub labels: Labels,
    pub vals: Vec<Option<f64>>,
    /// The metric name is to be dropped when the query's result is formed (Prometheus 3's
    /// delayed name removal): until then it still distinguishes series, and `label_replace`
    /// can keep it by writing `__name__`.
    pub drop: bool,
}

/// A range vector argument: series with every sample that any step's window can see, plus how
/// to find the window of step `i`.
#[derive(Debug)]
pub(crate) struct RangeArg {
    pub source: RangeSource,
    /// Per series: its name is marked for dropping (see [`SV::drop`]).
    pub drop: Vec<bool>,
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
}

/// Where a range argument's samples come from.
#[derive(Debug)]
pub(crate) enum RangeSource {
    /// Stored series, decoded one at a time when used; stale markers are skipped.
    Stored(Arc<Vec<ChunkedSeries>>),
    /// Samples computed by a subquery.
    Computed(Vec<Series>),
}

impl RangeArg {
    pub fn len(&self) -> usize {
        match &self.source {
            RangeSource::Stored(s) => s.len(),
            RangeSource::Computed(s) => s.len(),
        }
    }

    pub fn labels(&self, i: usize) -> &Labels {
        match &self.source {
            RangeSource::Stored(s) => s[i].labels(),
            RangeSource::Computed(s) => &s[i].labels,
        }
    }

    /// Replaces `buf` with the samples of series `i`.
    pub fn samples_into(&self, i: usize, buf: &mut Vec<Sample>) {
        buf.clear();
        match &self.source {
            RangeSource::Stored(s) => {
                s[i].decode_into(i64::MIN, i64::MAX, buf);
                buf.retain(|x| !is_stale_nan(x.v));
            }
            RangeSource::Computed(s) => buf.extend_from_slice(&s[i].samples),
        }
    }

    /// Window `(start, end]` of step `i`.
    #[inline]
    pub fn window(&self, steps: &Steps, i: usize) -> (i64, i64) {
        let end = self.at.unwrap_or_else(|| steps.ts(i)) - self.offset;
        (end - self.range, end)
    }
}

/// A node's value.
#[derive(Debug)]
pub(crate) enum Val {
    Scalar(Vec<f64>),
    String(String),
    Vector(Vec<SV>),
    /// Only as the result of an instant query of a range selector or subquery.
    Matrix(Vec<Series>),
}

/// Estimated heap bytes of `series` series with `steps` values each and label sets of
/// `labels` bytes.
pub(crate) fn step_matrix_bytes(series: usize, steps: usize, labels: usize) -> usize {
    series.saturating_mul(
        steps
            .saturating_mul(std::mem::size_of::<Option<f64>>())
            .saturating_add(std::mem::size_of::<SV>())
            .saturating_add(labels),
    )
}

impl Val {
    /// Estimated heap bytes held by the value (for `querier.max_query_memory_bytes`), label
    /// sets taken at `labels` bytes each: O(1) for vectors (every series of a node has one value
    /// per step), so the estimate costs nothing next to evaluating the node.
    pub fn heap_bytes(&self, labels: usize) -> usize {
        match self {
            Val::Scalar(v) => v.len() * std::mem::size_of::<f64>(),
            Val::String(s) => s.len(),
            Val::Vector(vs) => {
                step_matrix_bytes(vs.len(), vs.first().map_or(0, |s| s.vals.len()), labels)
            }
            Val::Matrix(m) => m
                .iter()
                .map(|s| labels.saturating_add(samples_heap_bytes(s.samples.len())))
                .sum(),
        }
    }
}

pub(crate) struct Evaluator {
    data: HashMap<usize, Arc<Vec<ChunkedSeries>>>,
    lookback: i64,
    default_subquery_step: i64,
    max_samples: usize,
    /// `querier.max_query_memory_bytes` (0: no limit).
    max_memory: usize,
    /// Estimated bytes the query holds now: its fetched series and the values of the nodes
    /// evaluated and not yet consumed by their parents.
    held: usize,
    /// Estimated bytes of one label set: the mean of the fetched series' (derived series
    /// carry copies of them).
    labels_bytes: usize,
    timeout: Duration,
    started: Instant,
    pub q: QueryTimes,
    /// A range query (not an instant one): some functions warn that they do nothing then.
    pub is_range: bool,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator").finish_non_exhaustive()
    }
}

impl Evaluator {
    /// An evaluator over fetched `data`, estimated at `fetched_bytes` of which `labels_bytes`
    /// per label set.
    pub fn new(
        data: HashMap<usize, Arc<Vec<ChunkedSeries>>>,
        fetched_bytes: usize,
        labels_bytes: usize,
        opts: &EngineOptions,
        q: QueryTimes,
        started: Instant,
    ) -> Self {
        Self {
            data,
            lookback: opts.lookback_delta.as_millis() as i64,
            default_subquery_step: opts.default_subquery_step.as_millis() as i64,
            max_samples: opts.max_samples,
            max_memory: opts.max_query_memory_bytes,
            held: fetched_bytes,
            labels_bytes,
            timeout: opts.timeout,
            started,
            q,
            is_range: false,
            warnings: Vec::new(),
            infos: Vec::new(),
        }
    }

    fn check_budget(&self, points: usize) -> Result<(), EvalError> {
        if points > self.max_samples {
            return Err(EvalError::Limit(
                "query processing would load too many samples into memory in query execution"
                    .into(),
            ));
        }
        if self.started.elapsed() > self.timeout {
            return Err(EvalError::Timeout("query evaluation"));
        }
        Ok(())
    }

    /// Estimated bytes of `series` series of `steps` values each.
    pub(crate) fn vector_bytes(&self, series: usize, steps: usize) -> usize {
        step_matrix_bytes(series, steps, self.labels_bytes)
    }

    /// Fails if holding `more` bytes on top of what the query holds would exceed
    /// `querier.max_query_memory_bytes`: called before each large allocation.
    pub(crate) fn check_memory(&self, more: usize) -> Result<(), EvalError> {
        if self.max_memory != 0 && self.held.saturating_add(more) > self.max_memory {
            return Err(EvalError::LimitExceeded(LimitExceeded {
                limit: ReadLimit::QueryMemory,
                max: self.max_memory as u64,
            }));
        }
        Ok(())
    }

    fn selector_data(&self, vs: &VectorSelector) -> Arc<Vec<ChunkedSeries>> {
        self.data
            .get(&(vs as *const VectorSelector as usize))
            .cloned()
            .unwrap_or_default()
    }

    /// Evaluates `expr`, keeping [`Evaluator::held`] at what remains held afterwards: the
    /// values of its children are consumed by then, its own is added.
    pub fn eval(&mut self, expr: &Expr, steps: &Steps) -> Result<Val, EvalError> {
        let before = self.held;
        let v = self.eval_node(expr, steps)?;
        self.held = before.saturating_add(v.heap_bytes(self.labels_bytes));
        self.check_memory(0)?;
        Ok(v)
    }

    fn eval_node(&mut self, expr: &Expr, steps: &Steps) -> Result<Val, EvalError> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; steps.n])),
            Expr::StringLiteral(s) => Ok(Val::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, steps),
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.vector_selector(vs, steps, false)?)),
            Expr::MatrixSelector(ms) => {
                let arg = self.matrix_selector(ms, steps);
                Ok(Val::Matrix(windows_of_single_step(arg, steps)))
            }
            Expr::Subquery(sq) => {
                let arg = self.subquery(sq, steps)?;
                Ok(Val::Matrix(windows_of_single_step(arg, steps)))
            }
            Expr::Unary(u) => match self.eval(&u.expr, steps)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(vs) => {
                    let out = vs
                        .into_iter()
                        .map(|s| SV {
                            labels: s.labels,
                            vals: s.vals.into_iter().map(|v| v.map(|x| -x)).collect(),
                            drop: true,
                        })
                        .collect();
                    Ok(Val::Vector(out))
                }
                _ => Err(EvalError::Execution(
                    "unary minus needs a scalar or instant vector".into(),
                )),
            },
            Expr::Binary(b) => self.binary(b, steps),
            Expr::Aggregate(a) => self.aggregate(a, steps),
            Expr::Call(c) => self.call(c, steps),
            Expr::Extension(_) => Err(EvalError::Execution(
                "extension expressions are not supported".into(),
            )),
        }
    }

    /// Values of an instant selector; with `timestamps`, the value is the chosen sample's time
    /// in seconds (for `timestamp()`).
    pub fn vector_selector(
        &self,
        vs: &VectorSelector,
        steps: &Steps,
        timestamps: bool,
    ) -> Result<Vec<SV>, EvalError> {
        let data = self.selector_data(vs);
        // Every series gets a value per step (before those without any are dropped).
        self.check_memory(step_matrix_bytes(data.len(), steps.n, self.labels_bytes))?;
        let off = offset_ms(&vs.offset);
        let at = self.q.at_ms(&vs.at);
        let lookback = self.lookback;
        let results = parallel::map_series(data.len(), |k, buf| {
            buf.clear();
            data[k].decode_into(i64::MIN, i64::MAX, buf);
            let samples = &buf[..];
            let mut vals = vec![None; steps.n];
            let mut j = 0usize;
            let mut any = false;
            for (i, slot) in vals.iter_mut().enumerate() {
                let t = at.unwrap_or_else(|| steps.ts(i)) - off;
                while j < samples.len() && samples[j].t <= t {
                    j += 1;
                }
                if j > 0 {
                    let smp = samples[j - 1];
                    if smp.t > t - lookback && !is_stale_nan(smp.v) {
                        *slot = Some(if timestamps {
                            smp.t as f64 / 1000.0
                        } else {
                            smp.v
                        });
                        any = true;
                    }
                }
            }
            any.then_some(vals)
        });
        Ok(results
            .into_iter()
            .enumerate()
            .filter_map(|(k, vals)| {
                vals.map(|vals| SV {
                    labels: data[k].labels().clone(),
                    vals,
                    drop: false,
                })
            })
            .collect())
    }

    pub fn matrix_selector(&self, ms: &MatrixSelector, _steps: &Steps) -> RangeArg {
        let data = self.selector_data(&ms.vs);
        RangeArg {
            drop: vec![false; data.len()],
            source: RangeSource::Stored(data),
            range: ms.range.as_millis() as i64,
            offset: offset_ms(&ms.vs.offset),
            at: self.q.at_ms(&ms.vs.at),
        }
    }

    /// Evaluates a subquery's inner expression on its own aligned grid covering every window.
    pub fn subquery(&mut self, sq: &SubqueryExpr, steps: &Steps) -> Result<RangeArg, EvalError> {
        let range = sq.range.as_millis() as i64;
        let sub_step = sq
            .step
            .map_or(self.default_subquery_step, |d| d.as_millis() as i64);
        if sub_step <= 0 {
            return Err(EvalError::Execution(
                "subquery step must be positive".into(),
            ));
        }
        let offset = offset_ms(&sq.offset);
        let at = self.q.at_ms(&sq.at);
        let first_end = at.unwrap_or(steps.start) - offset;
        let last_end = at.unwrap_or(steps.ts(steps.n - 1)) - offset;
        // Inner times: multiples of the step inside (first_end - range, last_end].
        let lo = first_end - range;
        let first = lo.div_euclid(sub_step) * sub_step + sub_step;
        let arg = if first > last_end {
            RangeArg {
                source: RangeSource::Computed(Vec::new()),
                drop: Vec::new(),
                range,
                offset,
                at,
            }
        } else {
            let inner = Steps::new(
                first,
                last_end - (last_end - first).rem_euclid(sub_step),
                sub_step,
            );
            self.check_budget(inner.n)?;
            let before = self.held;
            let mut drop = Vec::new();
            let inner_val = self.eval(&sq.expr, &inner)?;
            // The step values become samples (timestamp and value) before they are dropped.
            let points = match &inner_val {
                Val::Vector(vs) => vs
                    .iter()
                    .map(|s| s.vals.iter().filter(|v| v.is_some()).count())
                    .sum(),
                Val::Scalar(v) => v.len(),
                _ => 0,
            };
            let computed = samples_heap_bytes(points);
            self.check_memory(computed)?;
            let series = match inner_val {
                Val::Vector(vs) => vs
                    .into_iter()
                    .map(|s| Series {
                        labels: {
                            drop.push(s.drop);
                            s.labels
                        },
                        samples: s
                            .vals
                            .iter()
                            .enumerate()
                            .filter_map(|(i, v)| v.map(|v| Sample::new(inner.ts(i), v)))
                            .collect(),
                    })
                    .collect(),
                Val::Scalar(v) => vec![Series {
                    labels: {
                        drop.push(false);
                        Labels::default()
                    },
                    samples: v
                        .iter()
                        .enumerate()
                        .map(|(i, &x)| Sample::new(inner.ts(i), x))
                        .collect(),
                }],
                _ => {
                    return Err(EvalError::Execution(
                        "subquery is only allowed on instant vector or scalar".into(),
                    ))
                }
            };
            self.held = before.saturating_add(computed);
            RangeArg {
                source: RangeSource::Computed(series),
                drop,
                range,
                offset,
                at,
            }
        };
        Ok(arg)
    }

    /// Range vector argument of a function: a matrix selector or a subquery.
    pub fn range_arg(&mut self, expr: &Expr, steps: &Steps) -> Result<RangeArg, EvalError> {
        match expr {
            Expr::MatrixSelector(ms) => Ok(self.matrix_selector(ms, steps)),
            Expr::Subquery(sq) => self.subquery(sq, steps),
            Expr::Paren(p) => self.range_arg(&p.expr, steps),
            _ => Err(EvalError::Execution(format!(
                "expected a range vector, got {expr}"
            ))),
        }
    }

    /// Evaluates an expression expected to be a scalar (per step).
    pub fn scalar_arg(&mut self, expr: &Expr, steps: &Steps) -> Result<Vec<f64>, EvalError> {
        match self.eval(expr, steps)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(EvalError::Execution(format!(
                "expected a scalar, got {expr}"
            ))),
        }
    }

    pub fn vector_arg(&mut self, expr: &Expr, steps: &Steps) -> Result<Vec<SV>, EvalError> {
        match self.eval(expr, steps)? {
            Val::Vector(v) => Ok(v),
            _ => Err(EvalError::Execution(format!(
                "expected an instant vector, got {expr}"
            ))),
        }
    }
}

/// For instant evaluation of a range vector: each series' samples in the one window.
fn windows_of_single_step(arg: RangeArg, steps: &Steps) -> Vec<Series> {
    let (start, end) = arg.window(steps, 0);
    let mut buf = Vec::new();
    let mut out: Vec<Series> = Vec::new();
    for i in 0..arg.len() {
        arg.samples_into(i, &mut buf);
        let samples: Vec<Sample> = buf
            .iter()
            .copied()
            .filter(|x| x.t > start && x.t <= end)
            .collect();
        if samples.is_empty() {
            continue;
        }
        let labels = if arg.drop[i] {
            drop_name(arg.labels(i))
        } else {
            arg.labels(i).clone()
        };
        out.push(Series { labels, samples });
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

/// Drops the metric names marked for dropping; series that then coincide are an error.
pub(crate) fn finalize_names(mut v: Vec<SV>) -> Result<Vec<SV>, EvalError> {
    let mut changed = false;
    for s in &mut v {
        if s.drop {
            s.labels = drop_name(&s.labels);
            s.drop = false;
            changed = true;
        }
    }
    if changed {
        merge_same_labels(v)
    } else {
        Ok(v)
    }
}

/// Labels without `__name__`.
pub(crate) fn drop_name(l: &Labels) -> Labels {
    if l.get(strata_model::METRIC_NAME).is_none() {
        return l.clone();
    }
    Labels::from_sorted(
        l.iter()
            .filter(|x| x.name != strata_model::METRIC_NAME)
            .cloned()
            .collect(),
    )
}

/// Merges series that ended up with the same labels (e.g. after dropping the metric name):
/// fine when they have values at different steps, an error when two collide at one step.
pub(crate) fn merge_same_labels(mut v: Vec<SV>) -> Result<Vec<SV>, EvalError> {
    // Same labels but a different drop flag stay apart until names are dropped at the end.
    if v.len() < 2 {
        return Ok(v);
    }
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut out: Vec<SV> = Vec::with_capacity(v.len());
    for s in v {
        match out.last_mut() {
            Some(last) if last.labels == s.labels => {
                for (a, b) in last.vals.iter_mut().zip(s.vals) {
                    if let Some(x) = b {
                        if a.is_some() {
                            return Err(EvalError::Execution(
                                "vector cannot contain metrics with the same labelset".into(),
                            ));
                        }
                        *a = Some(x);
                    }
                }
            }
            _ => out.push(s),
        }
    }
    Ok(out)
}
