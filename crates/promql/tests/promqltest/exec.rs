//! Running one eval against the engine and judging its result the way upstream's runner does.

use crate::ast;
use crate::script::{Eval, ExpectKind, MsgMatch};
use crate::series::{fmt_float, SeqValue};
use promql_parser::parser::Expr;
use regex::Regex;
use std::fmt::Write as _;
use std::sync::OnceLock;
use strata_model::{Labels, TenantId};
use strata_promql::{Engine, InstantSample, QueryResult, QueryValue};
use strata_storage::query::Series;

/// Why an eval failed: upstream's message, plus what the engine returned.
#[derive(Debug, Clone)]
pub struct Failure {
    pub reason: String,
    pub got: String,
}

pub struct Ctx<'a> {
    pub engine: &'a Engine,
    pub store: &'a dyn strata_storage::Queryable,
    pub tenant: &'a TenantId,
    /// Engine calls made (instant and range), for the verbose listing.
    pub queries: &'a std::cell::Cell<usize>,
}

/// Upstream's float comparison (`util/almost.Equal` with epsilon 1e-6): NaN equals NaN,
/// otherwise equal, or relative difference below epsilon (absolute near zero).
pub fn almost_equal(a: f64, b: f64) -> bool {
    const EPSILON: f64 = 0.000001;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE; // 2^-1022, the smallest positive normal f64
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < EPSILON * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

fn fmt_ms(t: i64) -> String {
    if t == 0 {
        return "0".into();
    }
    let (sign, mut ms) = if t < 0 {
        ("-", t.unsigned_abs())
    } else {
        ("", t as u64)
    };
    let mut s = String::from(sign);
    for (u, m) in [("h", 3_600_000u64), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if ms >= m {
            let _ = write!(s, "{}{u}", ms / m);
            ms %= m;
        }
    }
    s
}

pub fn fmt_value(v: &QueryValue) -> String {
    match v {
        QueryValue::Scalar { v, .. } => format!("scalar {}", fmt_float(*v)),
        QueryValue::String { s, .. } => format!("string {s:?}"),
        QueryValue::Vector(vs) if vs.is_empty() => "empty vector".into(),
        QueryValue::Vector(vs) => vs
            .iter()
            .map(|s| format!("{} {}", s.labels, fmt_float(s.v)))
            .collect::<Vec<_>>()
            .join("\n"),
        QueryValue::Matrix(m) if m.is_empty() => "empty matrix".into(),
        QueryValue::Matrix(m) => m.iter().map(fmt_series).collect::<Vec<_>>().join("\n"),
    }
}

fn fmt_series(s: &Series) -> String {
    let pts: Vec<String> = s
        .samples
        .iter()
        .map(|p| format!("{}@{}", fmt_float(p.v), fmt_ms(p.t)))
        .collect();
    format!("{} {}", s.labels, pts.join(" "))
}

fn fmt_result(r: &QueryResult) -> String {
    let mut s = fmt_value(&r.value);
    for w in &r.warnings {
        let _ = write!(s, "\nwarning: {w}");
    }
    for i in &r.infos {
        let _ = write!(s, "\ninfo: {i}");
    }
    s
}

fn fail(reason: impl Into<String>, got: impl Into<String>) -> Failure {
    Failure {
        reason: reason.into(),
        got: got.into(),
    }
}

fn context_funcs() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"(start|end|range|step)\(\)").expect("static regex"))
}

/// Runs one eval. `Ok(note)` on success, where `note` says whether the @-variants could not
/// be generated.
pub async fn run_eval(ctx: &Ctx<'_>, ev: &Eval, expr: &Expr) -> Result<Option<String>, Failure> {
    if ev.is_range {
        run_range_eval(ctx, ev).await?;
        return Ok(None);
    }
    let mut queries = vec![(ev.query.clone(), ev.eval_time)];
    let mut note = None;
    match ast::at_variants(expr, ev.eval_time) {
        Ok(Some(v)) => queries.extend(v),
        Ok(None) => {}
        Err(e) => note = Some(e),
    }
    for (q, t) in &queries {
        run_instant_query(ctx, ev, q, *t).await?;
    }
    Ok(note)
}

fn check_expected_failure(ev: &Eval, q: &str, err: &str) -> Result<(), Failure> {
    let got = format!("error: {err}");
    if let Some(m) = &ev.expected_fail_message {
        if m != err {
            return Err(fail(
                format!("expected error {m:?} evaluating query {q:?}, but got: {err}"),
                got,
            ));
        }
    }
    if let Some(r) = &ev.expected_fail_regexp {
        if !r.is_match(err) {
            return Err(fail(
                format!(
                    "expected error matching pattern {:?} evaluating query {q:?}, but got: {err}",
                    r.as_str()
                ),
                got,
            ));
        }
    }
    if let Some(m) = ev.of(ExpectKind::Fail).next() {
        if !m.matches(err) {
            return Err(fail(
                format!(
                    "expected error matching {} evaluating query {q:?}, but got: {err}",
                    m.describe()
                ),
                got,
            ));
        }
    }
    Ok(())
}

async fn run_range_eval(ctx: &Ctx<'_>, ev: &Eval) -> Result<(), Failure> {
    let q = &ev.query;
    let end = ev.end.unwrap_or(ev.start);
    ctx.queries.set(ctx.queries.get() + 1);
    match ctx
        .engine
        .range(ctx.store, ctx.tenant, q, ev.start, end, ev.step)
        .await
    {
        Err(e) => {
            let e = e.to_string();
            if ev.is_fail() {
                return check_expected_failure(ev, q, &e);
            }
            Err(fail(
                format!("error evaluating query {q:?}: {e}"),
                format!("error: {e}"),
            ))
        }
        Ok(res) => {
            let got = fmt_result(&res);
            if ev.is_fail() {
                return Err(fail(
                    format!("expected error evaluating query {q:?} but got none"),
                    got,
                ));
            }
            check_annotations(ev, q, &res).map_err(|r| fail(r, got.clone()))?;
            compare_result(ev, &res.value).map_err(|r| fail(format!("error in eval {q}: {r}"), got))
        }
    }
}

async fn run_instant_query(ctx: &Ctx<'_>, ev: &Eval, q: &str, t: i64) -> Result<(), Failure> {
    let at = if q == ev.query && t == ev.eval_time {
        String::new()
    } else {
        format!(" (at {})", fmt_ms(t))
    };
    ctx.queries.set(ctx.queries.get() + 1);
    let res = match ctx.engine.instant(ctx.store, ctx.tenant, q, t).await {
        Err(e) => {
            let e = e.to_string();
            if ev.is_fail() {
                return check_expected_failure(ev, q, &e);
            }
            return Err(fail(
                format!("error evaluating query {q:?}{at}: {e}"),
                format!("error: {e}"),
            ));
        }
        Ok(r) => r,
    };
    let got = fmt_result(&res);
    if ev.is_fail() {
        return Err(fail(
            format!("expected error evaluating query {q:?}{at} but got none"),
            got,
        ));
    }
    check_annotations(ev, q, &res).map_err(|r| fail(format!("{r}{at}"), got.clone()))?;
    compare_result(ev, &res.value)
        .map_err(|r| fail(format!("error in eval {q}{at}: {r}"), got.clone()))?;

    if ev.exclude_from_range_query || context_funcs().is_match(q) {
        return Ok(());
    }
    // The same query in range mode must give the same result at the eval time.
    ctx.queries.set(ctx.queries.get() + 1);
    let rr = match ctx.engine.range(ctx.store, ctx.tenant, q, t - 60_000, t + 60_000, 60_000).await {
        Ok(r) => r,
        Err(e) => {
            return Err(fail(
                format!("error evaluating query {q:?}{at} in range mode (from -1m to +1m step 1m around the eval time): {e}"),
                format!("error: {e}"),
            ))
        }
    };
    let rgot = format!("(range mode) {}", fmt_result(&rr));
    if ev.is_ordered() {
        return Ok(());
    }
    let QueryValue::Matrix(mat) = &rr.value else {
        return Err(fail(
            format!("range query {q:?}{at} did not return a matrix"),
            rgot,
        ));
    };
    assert_sorted(mat).map_err(|r| fail(r, rgot.clone()))?;
    let vec: Vec<InstantSample> = mat
        .iter()
        .filter_map(|s| {
            s.samples.iter().find(|p| p.t == t).map(|p| InstantSample {
                labels: s.labels.clone(),
                t: p.t,
                v: p.v,
            })
        })
        .collect();
    let as_instant = if matches!(res.value, QueryValue::Scalar { .. }) {
        match vec.first() {
            Some(s) => QueryValue::Scalar { t, v: s.v },
            None => {
                return Err(fail(
                    format!("range mode of scalar query {q:?}{at} has no point at the eval time"),
                    rgot,
                ))
            }
        }
    } else {
        QueryValue::Vector(vec)
    };
    compare_result(ev, &as_instant)
        .map_err(|r| fail(format!("error in eval {q}{at} range mode: {r}"), rgot))
}

fn assert_sorted(m: &[Series]) -> Result<(), String> {
    for (i, w) in m.windows(2).enumerate() {
        if w[0].labels > w[1].labels {
            return Err(format!(
                "matrix results should always be sorted by labels, but matrix is not sorted: series at index {} with labels {} sorts before series at index {i} with labels {}",
                i + 1,
                w[1].labels,
                w[0].labels
            ));
        }
    }
    Ok(())
}

fn validate_annotations<'a>(
    q: &str,
    expected: impl Iterator<Item = &'a MsgMatch>,
    actual: &[String],
    kind: &str,
) -> Result<(), String> {
    let expected: Vec<&MsgMatch> = expected.collect();
    if expected.is_empty() {
        return Ok(());
    }
    if actual.is_empty() {
        return Err(format!(
            "expected {kind} annotations but none were found for query {q:?}"
        ));
    }
    for e in &expected {
        if !actual.iter().any(|a| e.matches(a)) {
            return Err(format!(
                "expected {kind} annotation matching {} but no matching annotation was found for query {q:?}, found: {actual:?}",
                e.describe()
            ));
        }
    }
    for a in actual {
        if !expected.iter().any(|e| e.matches(a)) {
            return Err(format!(
                "unexpected {kind} annotation {a:?} found for query {q}"
            ));
        }
    }
    Ok(())
}

fn check_annotations(ev: &Eval, q: &str, r: &QueryResult) -> Result<(), String> {
    if ev.legacy_warn && r.warnings.is_empty() {
        return Err(format!(
            "expected warnings evaluating query {q:?} but got none"
        ));
    }
    if ev.legacy_info && r.infos.is_empty() {
        return Err(format!(
            "expected info annotations evaluating query {q:?} but got none"
        ));
    }
    validate_annotations(q, ev.of(ExpectKind::Warn), &r.warnings, "warn")?;
    validate_annotations(q, ev.of(ExpectKind::Info), &r.infos, "info")?;
    if ev.has(ExpectKind::NoWarn) && !r.warnings.is_empty() {
        return Err(format!(
            "unexpected warning annotations evaluating query {q:?}: {:?}",
            r.warnings
        ));
    }
    if ev.has(ExpectKind::NoInfo) && !r.infos.is_empty() {
        return Err(format!(
            "unexpected info annotations evaluating query {q:?}: {:?}",
            r.infos
        ));
    }
    Ok(())
}

fn fmt_vals(v: &[SeqValue]) -> String {
    format!(
        "[{}]",
        v.iter()
            .map(SeqValue::fmt_value)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Compares a result with the expectations of `ev`, as upstream's `compareResult`.
pub fn compare_result(ev: &Eval, v: &QueryValue) -> Result<(), String> {
    match v {
        QueryValue::Matrix(m) => {
            if ev.is_ordered() {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            if ev.expect_scalar {
                return Err(format!(
                    "expected scalar result, but got matrix {}",
                    fmt_value(v)
                ));
            }
            assert_sorted(m)?;
            let mut seen: Vec<&Labels> = Vec::new();
            for s in m {
                let Some(exp) = ev.expected_series(&s.labels) else {
                    return Err(format!(
                        "unexpected metric {} in result, has {}",
                        s.labels,
                        fmt_series(s)
                    ));
                };
                seen.push(&exp.labels);
                let mut floats: Vec<(i64, f64)> = Vec::new();
                let mut hists = 0usize;
                for (i, e) in exp.vals.iter().enumerate() {
                    let ts = ev.start + i as i64 * ev.step;
                    if ev.end.is_none_or(|end| ts > end) {
                        return Err(format!(
                            "expected {} points for {}, but query time range cannot return this many points",
                            exp.vals.len(),
                            exp.labels
                        ));
                    }
                    match e {
                        SeqValue::Histogram(_) => hists += 1,
                        SeqValue::Float(f) => floats.push((ts, *f)),
                        SeqValue::Omitted => {}
                    }
                }
                if floats.len() != s.samples.len() || hists != 0 {
                    return Err(format!(
                        "expected {} float points and {hists} histogram points for {}, but got {}",
                        floats.len(),
                        exp.labels,
                        fmt_series(s)
                    ));
                }
                for (i, ((et, ev_), a)) in floats.iter().zip(&s.samples).enumerate() {
                    if *et != a.t {
                        return Err(format!(
                            "expected float value at index {i} for {} to have timestamp {et}, but it had timestamp {} (result has {})",
                            exp.labels,
                            a.t,
                            fmt_series(s)
                        ));
                    }
                    if !almost_equal(a.v, *ev_) {
                        return Err(format!(
                            "expected float value at index {i} (t={}) for {} to be {}, but got {} (result has {})",
                            a.t,
                            exp.labels,
                            fmt_float(*ev_),
                            fmt_float(a.v),
                            fmt_series(s)
                        ));
                    }
                }
            }
            for e in &ev.expected {
                if !seen.contains(&&e.labels) {
                    return Err(format!("expected metric {} not found", e.labels));
                }
            }
            Ok(())
        }
        QueryValue::Vector(vs) => {
            if ev.expect_scalar {
                return Err(format!(
                    "expected scalar result, but got vector {}",
                    fmt_value(v)
                ));
            }
            let mut seen: Vec<&Labels> = Vec::new();
            for (pos, s) in vs.iter().enumerate() {
                let Some(exp) = ev.expected_series(&s.labels) else {
                    return Err(format!(
                        "unexpected metric {} in result, has value {}",
                        s.labels,
                        fmt_float(s.v)
                    ));
                };
                if ev.is_ordered() && exp.pos != pos + 1 {
                    return Err(format!(
                        "expected metric {} with {} at position {} but was at {}",
                        s.labels,
                        fmt_vals(&exp.vals),
                        exp.pos,
                        pos + 1
                    ));
                }
                let want = match exp.vals.first() {
                    Some(SeqValue::Float(f)) => *f,
                    Some(SeqValue::Omitted) => 0.0,
                    Some(SeqValue::Histogram(h)) => {
                        return Err(format!(
                            "expected histogram {} for {} but got float value {}",
                            h.text,
                            s.labels,
                            fmt_float(s.v)
                        ))
                    }
                    None => return Err(format!("no expected value for {}", s.labels)),
                };
                if !almost_equal(want, s.v) {
                    return Err(format!(
                        "expected {} for {} but got {}",
                        fmt_float(want),
                        s.labels,
                        fmt_float(s.v)
                    ));
                }
                seen.push(&exp.labels);
            }
            for e in &ev.expected {
                if !seen.contains(&&e.labels) {
                    return Err(format!(
                        "expected metric {} with {} not found",
                        e.labels,
                        fmt_vals(&e.vals)
                    ));
                }
            }
            Ok(())
        }
        QueryValue::Scalar { v: got, .. } => {
            if !ev.expect_scalar {
                return Err(format!(
                    "expected vector or matrix result, but got scalar {}",
                    fmt_float(*got)
                ));
            }
            match &ev.scalar {
                Some(SeqValue::Histogram(h)) => Err(format!(
                    "expected histogram {} but got scalar {}",
                    h.text,
                    fmt_float(*got)
                )),
                Some(SeqValue::Float(want)) if !almost_equal(*want, *got) => Err(format!(
                    "expected scalar {} but got {}",
                    fmt_float(*want),
                    fmt_float(*got)
                )),
                _ => Ok(()),
            }
        }
        QueryValue::String { s, .. } => {
            if &ev.expected_string != s {
                return Err(format!(
                    "expected string \"{}\" but got \"{s}\"",
                    ev.expected_string
                ));
            }
            Ok(())
        }
    }
}
