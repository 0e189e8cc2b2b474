//! The engine's entry points: parse, fetch every selector's data once, evaluate, shape the
//! result.

use crate::eval::{Evaluator, Steps, Val};
use crate::value::{InstantSample, QueryResult, QueryValue};
use crate::EvalError;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use strata_model::{MatchOp, Matcher, TenantId, METRIC_NAME};
use strata_storage::limits::labels_heap_bytes;
use strata_storage::query::Series;
use strata_storage::{
    ChunkedSeries, LimitExceeded, QueryError, Queryable, ReadLimit, ReadLimits, SelectHints,
    NO_LIMIT,
};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for the latest sample (Prometheus: 5m).
    pub lookback_delta: Duration,
    /// Most samples a query may hold in memory at once.
    pub max_samples: usize,
    /// Wall-clock budget of one query.
    pub timeout: Duration,
    /// Allow experimental functions and syntax.
    pub enable_experimental: bool,
    /// Step of subqueries written without one (`x[1h:]`); Prometheus uses the global
    /// evaluation interval, 1m by default.
    pub default_subquery_step: Duration,
    /// Longest query text accepted, in bytes.
    pub max_query_bytes: usize,
    /// Deepest expression tree accepted (see [`crate::limits`]).
    pub max_query_depth: usize,
    /// Most bytes a query may hold, estimated as it runs: fetched chunks and label sets, decoded
    /// samples, and the per-step values of the nodes being evaluated; 0 = no limit.
    pub max_query_memory_bytes: usize,
}

/// Default of [`EngineOptions::max_query_memory_bytes`] (and `querier.max_query_memory_bytes`):
/// 2 GiB. The sample limit's default (50M points) alone admits ~800 MB of per-step values; a
/// query reaching it also holds its fetched chunks and label sets, so the memory limit sits above
/// that and catches what the sample limit does not see (long ranges over many series, large label
/// sets) while still keeping one query from taking a querier of a few GiB down.
pub const DEFAULT_MAX_QUERY_MEMORY_BYTES: usize = 2 << 30;

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            enable_experimental: false,
            default_subquery_step: Duration::from_secs(60),
            max_query_bytes: 256 << 10,
            max_query_depth: 128,
            max_query_memory_bytes: DEFAULT_MAX_QUERY_MEMORY_BYTES,
        }
    }
}

/// Evaluates PromQL.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    pub opts: EngineOptions,
}

/// Converts a selector's matchers (name included) into model matchers; one set per `or` branch.
pub fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, EvalError> {
    use promql_parser::label::MatchOp as P;
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, EvalError> {
        let mut out = Vec::with_capacity(ms.len() + 1);
        let mut has_name = false;
        for m in ms {
            let op = match m.op {
                P::Equal => MatchOp::Equal,
                P::NotEqual => MatchOp::NotEqual,
                P::Re(_) => MatchOp::RegexMatch,
                P::NotRe(_) => MatchOp::RegexNoMatch,
            };
            has_name |= m.name == METRIC_NAME;
            out.push(
                Matcher::new(op, m.name.clone(), m.value.clone())
                    .map_err(|e| EvalError::Parse(e.to_string()))?,
            );
        }
        if let (Some(n), false) = (&vs.name, has_name) {
            out.push(Matcher::equal(METRIC_NAME, n.clone()));
        }
        Ok(out)
    };
    let mut sets = Vec::new();
    if !vs.matchers.matchers.is_empty() || vs.matchers.or_matchers.is_empty() {
        sets.push(convert(&vs.matchers.matchers)?);
    }
    for alt in &vs.matchers.or_matchers {
        sets.push(convert(alt)?);
    }
    Ok(sets)
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

pub(crate) fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Query-wide times `@ start()` and `@ end()` refer to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueryTimes {
    pub start: i64,
    pub end: i64,
}

impl QueryTimes {
    pub fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.start),
            Some(AtModifier::End) => Some(self.end),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }
}

/// Which data resolutions a range query may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceResolution {
    /// Up to a fifth of the step (Thanos's auto-downsampling): a 1h step may read 5m blocks.
    Auto,
    /// Up to this many ms: 0 = raw only, 300000 = 5m, 3600000 = 1h.
    Max(i64),
}

/// A selector to fetch: its node address (stable while the AST lives), matcher sets, and the
/// time range needed across every evaluation of it.
struct Fetch {
    matchers: Vec<Vec<Matcher>>,
    min_t: i64,
    max_t: i64,
    /// The function or aggregation applied to the selector (a hint for downsampled stores).
    func: Option<String>,
    range_ms: i64,
}

#[allow(clippy::too_many_arguments)]
fn collect(
    expr: &Expr,
    lo: i64,
    hi: i64,
    q: QueryTimes,
    opts: &EngineOptions,
    out: &mut HashMap<usize, Fetch>,
    func: Option<&str>,
) -> Result<(), EvalError> {
    let lookback = opts.lookback_delta.as_millis() as i64;
    let mut add = |vs: &VectorSelector, back: i64| -> Result<(), EvalError> {
        let off = offset_ms(&vs.offset);
        let (a, b) = match q.at_ms(&vs.at) {
            Some(t) => (t, t),
            None => (lo, hi),
        };
        let (min_t, max_t) = (a - off - back, b - off);
        let key = vs as *const VectorSelector as usize;
        match out.get_mut(&key) {
            Some(f) => {
                f.min_t = f.min_t.min(min_t);
                f.max_t = f.max_t.max(max_t);
            }
            None => {
                out.insert(
                    key,
                    Fetch {
                        matchers: selector_matchers(vs)?,
                        min_t,
                        max_t,
                        func: func.map(str::to_owned),
                        range_ms: if back == lookback { 0 } else { back },
                    },
                );
            }
        }
        Ok(())
    };
    match expr {
        Expr::VectorSelector(vs) => add(vs, lookback)?,
        Expr::MatrixSelector(ms) => add(&ms.vs, ms.range.as_millis() as i64)?,
        Expr::Subquery(sq) => {
            let off = offset_ms(&sq.offset);
            let (a, b) = match q.at_ms(&sq.at) {
                Some(t) => (t, t),
                None => (lo, hi),
            };
            let range = sq.range.as_millis() as i64;
            collect(&sq.expr, a - off - range, b - off, q, opts, out, func)?;
        }
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            collect(&a.expr, lo, hi, q, opts, out, Some(&op))?;
            if let Some(p) = &a.param {
                collect(p, lo, hi, q, opts, out, None)?;
            }
        }
        Expr::Unary(u) => collect(&u.expr, lo, hi, q, opts, out, None)?,
        Expr::Binary(b) => {
            collect(&b.lhs, lo, hi, q, opts, out, None)?;
            collect(&b.rhs, lo, hi, q, opts, out, None)?;
        }
        Expr::Paren(p) => collect(&p.expr, lo, hi, q, opts, out, func)?,
        Expr::Call(c) => {
            for a in &c.args.args {
                collect(a, lo, hi, q, opts, out, Some(c.func.name))?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
}

fn check_experimental(expr: &Expr) -> Result<(), EvalError> {
    let mut err = None;
    walk(expr, &mut |e| {
        if let Expr::Call(c) = e {
            if c.func.experimental && err.is_none() {
                err = Some(EvalError::Parse(format!(
                    "function \"{}\" is not enabled (experimental functions are off)",
                    c.func.name
                )));
            }
        }
        if let Expr::Aggregate(a) = e {
            let op = a.op.to_string();
            if (op == "limitk" || op == "limit_ratio") && err.is_none() {
                err = Some(EvalError::Parse(format!(
                    "limitk() and limit_ratio() are experimental and not enabled: {op}"
                )));
            }
        }
    });
    err.map_or(Ok(()), Err)
}

pub(crate) fn walk(expr: &Expr, f: &mut impl FnMut(&Expr)) {
    f(expr);
    match expr {
        Expr::Aggregate(a) => {
            walk(&a.expr, f);
            if let Some(p) = &a.param {
                walk(p, f);
            }
        }
        Expr::Unary(u) => walk(&u.expr, f),
        Expr::Binary(b) => {
            walk(&b.lhs, f);
            walk(&b.rhs, f);
        }
        Expr::Paren(p) => walk(&p.expr, f),
        Expr::Subquery(s) => walk(&s.expr, f),
        Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, f)),
        _ => {}
    }
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Self { opts }
    }

    /// Parses a query the way the API does, returning the `bad_data` message on failure. The
    /// size limits are checked first.
    pub fn parse(&self, query: &str) -> Result<Expr, EvalError> {
        let expr = crate::limits::parse_checked(
            query,
            self.opts.max_query_bytes,
            self.opts.max_query_depth,
        )?;
        if !self.opts.enable_experimental {
            check_experimental(&expr)?;
        }
        Ok(expr)
    }

    /// Evaluates `query` at `time` (ms).
    pub async fn instant(
        &self,
        store: &dyn Queryable,
        tenant: &TenantId,
        query: &str,
        time: i64,
    ) -> Result<QueryResult, EvalError> {
        let expr = self.parse(query)?;
        let (val, ev) = self
            .eval(store, tenant, &expr, time, time, 1, false, 0)
            .await?;
        let value = match val {
            Val::Scalar(v) => QueryValue::Scalar { t: time, v: v[0] },
            Val::String(s) => QueryValue::String { t: time, s },
            Val::Vector(vs) => QueryValue::Vector(
                vs.into_iter()
                    .filter_map(|s| {
                        s.vals[0].map(|v| InstantSample {
                            labels: s.labels,
                            t: time,
                            v,
                        })
                    })
                    .collect(),
            ),
            Val::Matrix(m) => QueryValue::Matrix(m),
        };
        Ok(QueryResult {
            value,
            warnings: ev.warnings,
            infos: ev.infos,
        })
    }

    /// Evaluates `query` at every step from `start` to `end` (ms, inclusive), letting stores
    /// answer from downsampled blocks when the step allows it ([`SourceResolution::Auto`]).
    pub async fn range(
        &self,
        store: &dyn Queryable,
        tenant: &TenantId,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, EvalError> {
        self.range_with_resolution(
            store,
            tenant,
            query,
            start,
            end,
            step,
            SourceResolution::Auto,
        )
        .await
    }

    /// Like [`Engine::range`] with an explicit choice of the coarsest data resolution.
    #[allow(clippy::too_many_arguments)]
    pub async fn range_with_resolution(
        &self,
        store: &dyn Queryable,
        tenant: &TenantId,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        resolution: SourceResolution,
    ) -> Result<QueryResult, EvalError> {
        let max_resolution = match resolution {
            // Thanos's rule: a point per step built from at least ~5 aggregated windows.
            SourceResolution::Auto => step / 5,
            SourceResolution::Max(ms) => ms,
        };
        if step <= 0 {
            return Err(EvalError::Parse("zero or negative query resolution step widths are not accepted. Try a positive integer".into()));
        }
        if end < start {
            return Err(EvalError::Parse(
                "end timestamp must not be before start time".into(),
            ));
        }
        let expr = self.parse(query)?;
        let (val, ev) = self
            .eval(store, tenant, &expr, start, end, step, true, max_resolution)
            .await?;
        let steps = Steps::new(start, end, step);
        let value = match val {
            Val::Scalar(v) => QueryValue::Matrix(vec![Series {
                labels: Default::default(),
                samples: v.iter().enumerate().map(|(i, &x)| strata_model::Sample::new(steps.ts(i), x)).collect(),
            }]),
            Val::Vector(vs) => {
                let mut out: Vec<Series> = vs
                    .into_iter()
                    .map(|s| Series {
                        labels: s.labels,
                        samples: s
                            .vals
                            .iter()
                            .enumerate()
                            .filter_map(|(i, v)| v.map(|v| strata_model::Sample::new(steps.ts(i), v)))
                            .collect(),
                    })
                    .filter(|s| !s.samples.is_empty())
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                QueryValue::Matrix(out)
            }
            Val::String(_) => {
                return Err(EvalError::Parse(
                    "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
                ))
            }
            Val::Matrix(_) => {
                return Err(EvalError::Parse(
                    "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
                ))
            }
        };
        Ok(QueryResult {
            value,
            warnings: ev.warnings,
            infos: ev.infos,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn eval(
        &self,
        store: &dyn Queryable,
        tenant: &TenantId,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        is_range: bool,
        max_resolution: i64,
    ) -> Result<(Val, Evaluator), EvalError> {
        let t0 = Instant::now();
        let q = QueryTimes { start, end };
        let mut fetches = HashMap::new();
        collect(expr, start, end, q, &self.opts, &mut fetches, None)?;
        let mut data: HashMap<usize, Arc<Vec<ChunkedSeries>>> = HashMap::new();
        let max_memory = self.opts.max_query_memory_bytes;
        let memory_exceeded = || {
            EvalError::LimitExceeded(LimitExceeded {
                limit: ReadLimit::QueryMemory,
                max: max_memory as u64,
            })
        };
        // Estimated bytes of everything fetched so far; each selection may take what is left,
        // and the stores stop reading once their answer needs more.
        let mut held = 0usize;
        let (mut label_sets, mut labels_bytes) = (0usize, 0usize);
        for (key, f) in fetches {
            let mut series: Vec<ChunkedSeries> = Vec::new();
            for set in &f.matchers {
                let limits = ReadLimits {
                    // What is left, at least 1 (0 would mean no limit): an empty answer still fits.
                    max_bytes: if max_memory == NO_LIMIT {
                        NO_LIMIT
                    } else {
                        max_memory.saturating_sub(held).max(1)
                    },
                    ..ReadLimits::default()
                };
                let hints = SelectHints {
                    max_resolution_ms: max_resolution,
                    func: f.func.clone(),
                    range_ms: f.range_ms,
                    step_ms: if is_range { step } else { 0 },
                    limits,
                };
                let mut got = match store
                    .select_chunks_hinted(tenant, set, f.min_t, f.max_t, &hints)
                    .await
                {
                    Ok(got) => got,
                    // The store names what was left of the budget; the user set the whole.
                    Err(QueryError::LimitExceeded(l)) if l.limit == ReadLimit::QueryMemory => {
                        return Err(memory_exceeded())
                    }
                    Err(e) => return Err(e.into()),
                };
                held = held.saturating_add(got.iter().map(ChunkedSeries::heap_bytes).sum());
                label_sets += got.len();
                labels_bytes = labels_bytes
                    .saturating_add(got.iter().map(|s| labels_heap_bytes(s.labels())).sum());
                if max_memory != NO_LIMIT && held > max_memory {
                    return Err(memory_exceeded());
                }
                series.append(&mut got);
            }
            if f.matchers.len() > 1 {
                series.sort_by(|a, b| a.labels().cmp(b.labels()));
                series.dedup_by(|a, b| a.labels() == b.labels());
            }
            if t0.elapsed() > self.opts.timeout {
                return Err(EvalError::Timeout("query preparation"));
            }
            data.insert(key, Arc::new(series));
        }
        // Derived series carry copies of fetched label sets: count each at their mean size.
        let mean_labels = labels_bytes
            .checked_div(label_sets)
            .unwrap_or(std::mem::size_of::<strata_model::Labels>());
        let mut ev = Evaluator::new(data, held, mean_labels, &self.opts, q, t0);
        ev.is_range = is_range;
        let val = match ev.eval(expr, &Steps::new(start, end, step))? {
            Val::Vector(vs) => Val::Vector(crate::eval::finalize_names(vs)?),
            other => other,
        };
        Ok((val, ev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemStore;
    use strata_model::{Labels, Sample};

    fn store() -> MemStore {
        let mut s = MemStore::new();
        for (inst, slope) in [("a", 1.0), ("b", 2.0)] {
            s.add(
                Labels::from_pairs([
                    ("__name__", "req_total"),
                    ("instance", inst),
                    ("job", "api"),
                ]),
                (0..=60).map(|i| Sample::new(i * 15_000, i as f64 * 15.0 * slope)),
            );
            s.add(
                Labels::from_pairs([("__name__", "info"), ("instance", inst), ("version", "v1")]),
                (0..=60).map(|i| Sample::new(i * 15_000, 1.0)),
            );
        }
        s
    }

    async fn instant(q: &str, t: i64) -> Vec<(String, f64)> {
        let e = Engine::default();
        let r = e
            .instant(&store(), &TenantId::new("t").unwrap(), q, t)
            .await
            .unwrap();
        match r.value {
            QueryValue::Vector(v) => {
                let mut out: Vec<(String, f64)> =
                    v.into_iter().map(|s| (s.labels.to_string(), s.v)).collect();
                out.sort_by(|a, b| a.0.cmp(&b.0));
                out
            }
            QueryValue::Scalar { v, .. } => vec![(String::new(), v)],
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn selectors_rate_and_aggregation() {
        assert_eq!(
            instant("req_total", 600_000).await,
            vec![
                ("req_total{instance=\"a\", job=\"api\"}".into(), 600.0),
                ("req_total{instance=\"b\", job=\"api\"}".into(), 1200.0),
            ]
        );
        let r = instant("sum by (job) (rate(req_total[5m]))", 600_000).await;
        assert_eq!(r.len(), 1);
        assert!((r[0].1 - 3.0).abs() < 1e-9, "{r:?}");
        let r = instant(
            "rate(req_total[5m]) * on(instance) group_left(version) info",
            600_000,
        )
        .await;
        assert_eq!(r[0].0, "{instance=\"a\", job=\"api\", version=\"v1\"}");
        assert_eq!(
            instant("scalar(sum(req_total)) + 1", 600_000).await[0].1,
            1801.0
        );
        let r = instant("max_over_time(rate(req_total[1m])[5m:1m])", 600_000).await;
        assert_eq!(r.len(), 2);
        assert!((r[1].1 - 2.0).abs() < 1e-9, "{r:?}");
        assert_eq!(instant("topk(1, req_total)", 600_000).await[0].1, 1200.0);
        assert_eq!(
            instant("absent(nope{job=\"x\"})", 600_000).await,
            vec![("{job=\"x\"}".into(), 1.0)]
        );
        let r = instant(
            "label_replace(req_total, \"host\", \"$1\", \"instance\", \"(.*)\")",
            600_000,
        )
        .await;
        assert!(r[0].0.contains("host=\"a\""), "{r:?}");
        // Past the lookback delta the series is gone.
        assert!(instant("req_total", 900_000 + 300_000).await.is_empty());
    }

    #[tokio::test]
    async fn memory_limit_fails_while_fetching_and_before_step_values() {
        let t = TenantId::new("t").unwrap();
        let engine = |max| {
            Engine::new(EngineOptions {
                max_query_memory_bytes: max,
                ..EngineOptions::default()
            })
        };
        let is_memory = |e: &EvalError, max: usize| {
            matches!(e, EvalError::LimitExceeded(l)
                if l.limit == ReadLimit::QueryMemory && l.max == max as u64)
        };
        // 2,000 series of 100 samples: ~2 MB fetched for `sum(m)` at 50 s.
        let mut many = MemStore::new();
        for i in 0..2000 {
            many.add(
                Labels::from_pairs([("__name__", "m".to_string()), ("i", format!("{i:05}"))]),
                (0..100).map(|t| Sample::new(t * 1000, t as f64)),
            );
        }
        let e = engine(256 << 10)
            .instant(&many, &t, "sum(m)", 50_000)
            .await
            .unwrap_err();
        assert!(is_memory(&e, 256 << 10), "{e}");
        assert!(
            e.to_string().contains("querier.max_query_memory_bytes"),
            "{e}"
        );
        // The store stopped handing out series once the budget was spent.
        let produced = many.series_produced();
        assert!(produced < 500, "{produced} of 2000 series fetched");
        let r = engine(64 << 20)
            .instant(&many, &t, "sum(m)", 50_000)
            .await
            .unwrap();
        assert!(matches!(r.value, QueryValue::Vector(ref v) if v[0].v == 100_000.0));

        // 10 series over 10,000 steps: a few KB fetched, 1.6 MB of step values. The fetch
        // completes, the selector refuses to allocate its values.
        let mut few = MemStore::new();
        for i in 0..10 {
            few.add(
                Labels::from_pairs([("__name__", "f".to_string()), ("i", i.to_string())]),
                (0..167).map(|k| Sample::new(k * 60_000, k as f64)),
            );
        }
        let range = |e: Engine| {
            let few = &few;
            let t = &t;
            async move { e.range(few, t, "f", 0, 9_999_000, 1000).await }
        };
        let e = range(engine(512 << 10)).await.unwrap_err();
        assert!(is_memory(&e, 512 << 10), "{e}");
        assert_eq!(few.series_produced(), 10, "fetched in full");
        let r = range(engine(64 << 20)).await.unwrap();
        assert!(matches!(r.value, QueryValue::Matrix(ref m) if m.len() == 10));
        // No limit at all.
        assert!(range(engine(0)).await.is_ok());
    }

    #[tokio::test]
    async fn errors() {
        let e = Engine::default();
        let s = store();
        let t = TenantId::new("t").unwrap();
        let err = e
            .instant(&s, &t, "req_total + ignoring(instance) info", 600_000)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("many-to-many") || err.to_string().contains("duplicate"),
            "{err}"
        );
        assert!(matches!(
            e.instant(&s, &t, "sum(", 0).await,
            Err(EvalError::Parse(_))
        ));
        let r = e
            .range(&s, &t, "sum(req_total)", 0, 600_000, 60_000)
            .await
            .unwrap();
        match r.value {
            QueryValue::Matrix(m) => assert_eq!(m[0].samples.len(), 11),
            other => panic!("{other:?}"),
        }
    }
}
