//! `strata rules test`: Prometheus's rule unit tests (the file format of `promtool test rules`,
//! Prometheus 2.42's `cmd/promtool/unittest.go`), run on the ruler's own evaluation and the
//! PromQL engine, so that a test passes here exactly when it passes with promtool.
//!
//! Each test group loads its `input_series` (promqltest's value notation) at `interval` from
//! time 0 (no `interval` is 0, as in promtool: every value lands at time 0 and the first one
//! stays), then evaluates every rule group at every `evaluation_interval` step up to the last
//! `eval_time` (recorded series and `ALERTS` are written back, so later rules and expressions
//! see them); after each step it checks the alert tests whose `eval_time` falls before the next
//! step against the firing alerts of that name (labels with `alertname`, and annotations), and
//! at the end the `promql_expr_test` expressions at their times (exact values, sorted by
//! labels).

use crate::duration::PromDuration;
use crate::group::{EvalEnv, Group};
use crate::metrics::Metrics;
use crate::rulefmt::parse_and_validate;
use crate::rules::{AlertContext, AlertState};
use async_trait::async_trait;
use parking_lot::Mutex;
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::Expr;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use strata_model::{Labels, Matcher, Sample, TenantId, WriteBatch, STALE_NAN};
use strata_promql::testing::MemStore;
use strata_promql::{Engine, QueryValue};
use strata_storage::query::{Series, SeriesMetadata};
use strata_storage::{PushError, PushOutcome, Pusher, QueryError, Queryable};

/// A unit-test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    evaluation_interval: Option<PromDuration>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    interval: Option<PromDuration>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<PromqlTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: PromDuration,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromqlTest {
    expr: String,
    eval_time: PromDuration,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: f64,
}

const DEFAULT_INTERVAL_MS: i64 = 60_000;

/// Runs the test files, printing promtool's report to `out`; true when every test passed.
pub async fn run_files(paths: &[PathBuf], out: &mut impl std::io::Write) -> bool {
    let mut ok = true;
    for p in paths {
        let _ = writeln!(out, "Unit Testing:  {}", p.display());
        let errors = match run_file(p).await {
            Ok(errors) => errors,
            Err(e) => vec![e],
        };
        if errors.is_empty() {
            let _ = writeln!(out, "  SUCCESS");
        } else {
            ok = false;
            let _ = writeln!(out, "  FAILED:");
            for e in errors {
                let _ = writeln!(out, "{e}");
            }
        }
        let _ = writeln!(out);
    }
    ok
}

/// One file's failures (empty: it passed); `Err` when the file cannot be run at all.
pub async fn run_file(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("    {}: {e}", path.display()))?;
    let file: TestFile =
        serde_yaml::from_str(&text).map_err(|e| format!("    {}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let eval_interval = file
        .evaluation_interval
        .map_or(DEFAULT_INTERVAL_MS, |d| d.as_millis())
        .max(1);
    let mut rule_paths = Vec::new();
    for f in &file.rule_files {
        rule_paths.extend(glob(&base.join(f)).map_err(|e| format!("    {e}"))?);
    }
    let mut errors = Vec::new();
    for tg in &file.tests {
        let groups = load_groups(&rule_paths, &file.group_eval_order, eval_interval)
            .map_err(|e| format!("    {e}"))?;
        let errs = run_group(tg, groups, eval_interval).await;
        if !errs.is_empty() {
            if !tg.name.is_empty() {
                errors.push(format!("    name: {},", tg.name));
            }
            errors.extend(errs);
        }
    }
    Ok(errors)
}

/// `path` itself, or the files matching its last component's `*` and `?` (sorted).
fn glob(path: &Path) -> Result<Vec<PathBuf>, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return Ok(vec![path.to_path_buf()]);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| wildcard(&name, &n.to_string_lossy()))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn wildcard(pattern: &str, s: &str) -> bool {
    fn m(p: &[char], s: &[char]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some('*'), _) => m(&p[1..], s) || (!s.is_empty() && m(p, &s[1..])),
            (Some('?'), Some(_)) => m(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    m(&p, &s)
}

fn load_groups(paths: &[PathBuf], order: &[String], eval_ms: i64) -> Result<Vec<Group>, String> {
    let mut groups = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let file = p.display().to_string();
        let parsed = parse_and_validate(&file, &text).map_err(|e| e.to_string())?;
        for g in &parsed.groups {
            groups.push(Group::new(&file, g, eval_ms, 0));
        }
    }
    // promtool's partial order: a group's rank in `group_eval_order`, 0 when absent.
    let mut rank: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, name) in order.iter().enumerate() {
        if rank.insert(name, i).is_some() {
            return Err(format!("group name repeated in evaluation order: {name}"));
        }
    }
    groups.sort_by_key(|g| rank.get(g.name.as_str()).copied().unwrap_or(0));
    Ok(groups)
}

async fn run_group(tg: &TestGroup, mut groups: Vec<Group>, eval_ms: i64) -> Vec<String> {
    let mut errors = Vec::new();
    let store = UnitStore::default();
    let interval = tg.interval.map_or(0, |d| d.as_millis());
    let max_eval = tg
        .alert_rule_test
        .iter()
        .map(|t| t.eval_time.as_millis())
        .chain(tg.promql_expr_test.iter().map(|t| t.eval_time.as_millis()))
        .max()
        .unwrap_or(0);
    // promtool loads samples up to each evaluation step as it goes, so nothing after the last
    // step (the last multiple of the evaluation interval not after the last `eval_time`) is
    // ever loaded, even for an expression evaluated later than that step.
    let last_step = max_eval.div_euclid(eval_ms) * eval_ms;
    for s in &tg.input_series {
        match (series_labels(&s.series), expand_values(&s.values)) {
            (Ok(labels), Ok(values)) => {
                let mut samples: Vec<Sample> = values
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| Sample::new(i as i64 * interval, v)))
                    .filter(|s| s.t <= last_step)
                    .collect();
                // Later values at an already used time are refused, as Prometheus's head does.
                samples.dedup_by_key(|s| s.t);
                store.data.lock().add(labels, samples);
            }
            (Err(e), _) | (_, Err(e)) => {
                errors.push(format!("    input series {:?}: {e}", s.series))
            }
        }
    }
    if !errors.is_empty() {
        return errors;
    }
    let engine = Engine::default();
    let tenant = TenantId::new("unit-test").expect("a valid tenant id");
    let ctx = AlertContext {
        external_labels: tg.external_labels.clone(),
        external_url: tg.external_url.clone(),
    };
    let metrics = Metrics::default();
    let env = EvalEnv {
        engine: &engine,
        queryable: &store,
        pusher: &store,
        tenant: &tenant,
        alert_ctx: &ctx,
        metrics: &metrics,
        resend_delay_ms: 60_000,
    };
    let mut alert_tests: Vec<&AlertTest> = tg.alert_rule_test.iter().collect();
    alert_tests.sort_by_key(|t| t.eval_time.as_millis());
    let mut next = 0;
    let mut ts = 0;
    while ts <= max_eval {
        let mut eval_errors = Vec::new();
        for g in &mut groups {
            g.eval(env, ts).await;
            for r in &g.rules {
                if let Some(e) = &r.status().last_error {
                    eval_errors.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.name(),
                        PromDuration(std::time::Duration::from_millis(ts as u64))
                    ));
                }
            }
        }
        // As promtool: an evaluation error ends the test group.
        if !eval_errors.is_empty() {
            errors.extend(eval_errors);
            return errors;
        }
        while next < alert_tests.len() && alert_tests[next].eval_time.as_millis() < ts + eval_ms {
            let t = alert_tests[next];
            if t.eval_time.as_millis() >= ts {
                if let Some(e) = check_alerts(&groups, t) {
                    errors.push(e);
                }
            }
            next += 1;
        }
        ts += eval_ms;
    }
    for t in &tg.promql_expr_test {
        if let Some(e) = check_expr(&engine, &store, &tenant, t).await {
            errors.push(e);
        }
    }
    errors
}

fn fmt_map(m: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// An alert as the tests compare it: its labels and its annotations.
type LabelsAndAnnotations = (BTreeMap<String, String>, BTreeMap<String, String>);

fn check_alerts(groups: &[Group], t: &AlertTest) -> Option<String> {
    let mut got: Vec<LabelsAndAnnotations> = groups
        .iter()
        .flat_map(|g| g.alerting_rules())
        .filter(|r| r.name == t.alertname)
        .flat_map(|r| r.alerts())
        .filter(|a| a.state == AlertState::Firing)
        .map(|a| {
            let labels = a
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            (labels, a.annotations.clone())
        })
        .collect();
    let mut exp: Vec<LabelsAndAnnotations> = t
        .exp_alerts
        .iter()
        .map(|a| {
            let mut labels = a.exp_labels.clone();
            labels.insert("alertname".into(), t.alertname.clone());
            (labels, a.exp_annotations.clone())
        })
        .collect();
    got.sort();
    exp.sort();
    if got == exp {
        return None;
    }
    let show = |v: &[LabelsAndAnnotations]| {
        v.iter()
            .map(|(l, a)| {
                format!(
                    "\n            labels: {}, annotations: {}",
                    fmt_map(l),
                    fmt_map(a)
                )
            })
            .collect::<String>()
    };
    Some(format!(
        "    alertname: {}, time: {},\n        exp: {}\n        got: {}",
        t.alertname,
        t.eval_time,
        show(&exp),
        show(&got)
    ))
}

async fn check_expr(
    engine: &Engine,
    store: &UnitStore,
    tenant: &TenantId,
    t: &PromqlTest,
) -> Option<String> {
    let at = t.eval_time.as_millis();
    let got = match engine.instant(store, tenant, &t.expr, at).await {
        Ok(r) => match r.value {
            QueryValue::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
            QueryValue::Scalar { v, .. } => vec![(Labels::default(), v)],
            _ => {
                return Some(format!(
                    "    expr: {:?}, time: {}, err: not a vector or scalar",
                    t.expr, t.eval_time
                ))
            }
        },
        Err(e) => {
            return Some(format!(
                "    expr: {:?}, time: {}, err: {e}",
                t.expr, t.eval_time
            ))
        }
    };
    let mut got: Vec<(Labels, f64)> = got;
    let mut exp = Vec::new();
    for s in &t.exp_samples {
        match sample_labels(&s.labels) {
            Ok(l) => exp.push((l, s.value)),
            Err(e) => {
                return Some(format!(
                    "    expr: {:?}, time: {}, err: labels {:?}: {e}",
                    t.expr, t.eval_time, s.labels
                ))
            }
        }
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    // Exact equality, as promtool's reflect.DeepEqual (NaN is never equal).
    let same = got.len() == exp.len()
        && got
            .iter()
            .zip(&exp)
            .all(|((gl, gv), (el, ev))| gl == el && gv == ev);
    if same {
        return None;
    }
    let show = |v: &[(Labels, f64)]| {
        let parts: Vec<String> = v.iter().map(|(l, x)| format!("{l} {x}")).collect();
        format!("[{}]", parts.join(", "))
    };
    Some(format!(
        "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
        t.expr,
        t.eval_time,
        show(&exp),
        show(&got)
    ))
}

/// Labels of an `exp_samples` entry: a series selector, or empty for a scalar result.
fn sample_labels(s: &str) -> Result<Labels, String> {
    // promtool's ParseMetric takes `{}` (and nothing) for the empty label set; PromQL does not.
    if s.trim().is_empty() || s.split_whitespace().collect::<String>() == "{}" {
        return Ok(Labels::default());
    }
    series_labels(s)
}

/// `name{a="b"}` (or `{__name__="name", a="b"}`): the labels of a series, written as a
/// selector of equality matchers.
fn series_labels(s: &str) -> Result<Labels, String> {
    let expr = strata_promql::parse(s)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err("not a series (name{label=\"value\", ...})".into());
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(n) = vs.name {
        pairs.push(("__name__".into(), n));
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err("`or` is not allowed in a series".into());
    }
    for m in vs.matchers.matchers {
        if !matches!(m.op, PMatchOp::Equal) {
            return Err(format!("label {:?}: only = is allowed in a series", m.name));
        }
        if m.name == "__name__" && pairs.iter().any(|(k, _)| k == "__name__") {
            return Err("the metric name is given twice".into());
        }
        pairs.push((m.name, m.value));
    }
    Ok(Labels::from_pairs(pairs))
}

/// promqltest's value notation: `1 2 _ stale 1+2x3 5-1x2 _x2 3x2`. `a+bxn` and `a-bxn` are
/// n+1 values from a in steps of b, `axn` n+1 times a, `_` a missing value and `_xn` n of them.
pub fn expand_values(s: &str) -> Result<Vec<Option<f64>>, String> {
    let num = |t: &str| -> Result<f64, String> {
        t.parse::<f64>().map_err(|_| format!("invalid value {t:?}"))
    };
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        if tok == "_" {
            out.push(None);
        } else if tok == "stale" {
            out.push(Some(STALE_NAN));
        } else if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n
                .parse()
                .map_err(|_| format!("invalid repetition {tok:?}"))?;
            out.extend(std::iter::repeat_n(None, n));
        } else if let Some((head, n)) = tok.rsplit_once('x').filter(|(h, n)| {
            !h.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        }) {
            let n: usize = n
                .parse()
                .map_err(|_| format!("invalid repetition {tok:?}"))?;
            // The step's sign: the first + or - after the start that is not an exponent's.
            let b = head.as_bytes();
            let split = (1..b.len())
                .find(|&i| matches!(b[i], b'+' | b'-') && !matches!(b[i - 1], b'e' | b'E'));
            let (start, step) = match split {
                Some(i) => (num(&head[..i])?, num(&head[i..])?),
                None => (num(head)?, 0.0),
            };
            for k in 0..=n {
                out.push(Some(start + step * k as f64));
            }
        } else {
            out.push(Some(num(tok)?));
        }
    }
    Ok(out)
}

/// The test's storage: input series and what the rules write, read by the rules and the
/// expressions.
#[derive(Default)]
struct UnitStore {
    data: Mutex<MemStore>,
}

impl UnitStore {
    fn snapshot(&self) -> MemStore {
        self.data.lock().clone()
    }
}

#[async_trait]
impl Pusher for UnitStore {
    async fn push(&self, _: &TenantId, batch: &WriteBatch<'_>) -> Result<PushOutcome, PushError> {
        let mut data = self.data.lock();
        for i in 0..batch.series.len() {
            let labels = Labels::from_pairs(batch.series_labels(i).iter().copied());
            data.add(labels, batch.series_samples(i).iter().copied());
        }
        Ok(PushOutcome {
            samples_written: batch.samples.len() as u64,
            ..Default::default()
        })
    }
}

#[async_trait]
impl Queryable for UnitStore {
    async fn select(
        &self,
        t: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        self.snapshot().select(t, m, start, end).await
    }
    async fn series(
        &self,
        t: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        self.snapshot().series(t, m, start, end, limit).await
    }
    async fn label_names(
        &self,
        t: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        self.snapshot().label_names(t, m, start, end, limit).await
    }
    async fn label_values(
        &self,
        t: &TenantId,
        name: &str,
        m: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        self.snapshot()
            .label_values(t, name, m, start, end, limit)
            .await
    }
    async fn metadata(
        &self,
        t: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        self.snapshot().metadata(t, metric).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_notation() {
        let v = expand_values("1 _ stale 1+2x2 5-1x2 3x1 _x2 -1+1x1 1e3").unwrap();
        let show: Vec<String> = v
            .iter()
            .map(|x| match x {
                None => "_".into(),
                Some(f) if strata_model::is_stale_nan(*f) => "stale".into(),
                Some(f) => f.to_string(),
            })
            .collect();
        assert_eq!(
            show,
            [
                "1", "_", "stale", "1", "3", "5", "5", "4", "3", "3", "3", "_", "_", "-1", "0",
                "1000"
            ]
        );
        assert!(expand_values("1 x").is_err());
    }

    #[test]
    fn series_and_wildcards() {
        let l = series_labels(r#"up{job="a", instance="b"}"#).unwrap();
        assert_eq!(l.get("__name__"), Some("up"));
        assert_eq!(l.get("job"), Some("a"));
        assert!(series_labels(r#"up{job=~"a"}"#).is_err());
        assert!(wildcard("*.yml", "rules.yml"));
        assert!(!wildcard("*.yml", "rules.yaml"));
        assert!(wildcard("r?les*", "rules.yml"));
    }
}
