//! What the runner needs from a parsed query: its selectors (for classification), whether it
//! uses experimental language, and the upstream "@ modifier" variants of instant queries.

use promql_parser::parser::{self, AtModifier, Expr, VectorSelector};
use std::time::{Duration, SystemTime};
use strata_model::Labels;

pub fn parse_query(q: &str) -> Result<Expr, String> {
    parser::parse(q)
}

/// Calls `f` on every node, parents first.
pub fn walk<'a>(e: &'a Expr, f: &mut impl FnMut(&'a Expr)) {
    f(e);
    match e {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, f);
            }
            walk(&a.expr, f);
        }
        Expr::Unary(u) => walk(&u.expr, f),
        Expr::Binary(b) => {
            walk(&b.lhs, f);
            walk(&b.rhs, f);
        }
        Expr::Paren(p) => walk(&p.expr, f),
        Expr::Subquery(s) => walk(&s.expr, f),
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, f);
            }
        }
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => {}
    }
}

pub fn selectors(e: &Expr) -> Vec<&VectorSelector> {
    let mut out = Vec::new();
    walk(e, &mut |n| match n {
        Expr::VectorSelector(vs) => out.push(vs),
        Expr::MatrixSelector(ms) => out.push(&ms.vs),
        _ => {}
    });
    out
}

/// Whether a selector selects the series `l`.
pub fn selector_matches(vs: &VectorSelector, l: &Labels) -> bool {
    let get = |n: &str| l.get(n).unwrap_or("");
    if let Some(name) = &vs.name {
        if get("__name__") != name {
            return false;
        }
    }
    if !vs
        .matchers
        .matchers
        .iter()
        .all(|m| m.is_match(get(&m.name)))
    {
        return false;
    }
    vs.matchers.or_matchers.is_empty()
        || vs
            .matchers
            .or_matchers
            .iter()
            .any(|g| g.iter().all(|m| m.is_match(get(&m.name))))
}

/// Functions upstream (Prometheus v3.14 `promql/parser/functions.go`) marks experimental; the
/// union with promql-parser's own `experimental` flag decides (promql-parser does not flag
/// `first_over_time`, for one).
pub const UPSTREAM_EXPERIMENTAL_FUNCTIONS: [&str; 16] = [
    "double_exponential_smoothing",
    "end",
    "first_over_time",
    "histogram_quantiles",
    "info",
    "integral",
    "mad_over_time",
    "range",
    "sort_by_label",
    "sort_by_label_desc",
    "start",
    "step",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
];

/// The experimental language a query uses, if any: an experimental function, the `limitk` /
/// `limit_ratio` aggregations, or a `fill` modifier on a binary operation.
pub fn experimental_feature(e: &Expr) -> Option<String> {
    let mut found = None;
    walk(e, &mut |n| {
        if found.is_some() {
            return;
        }
        match n {
            Expr::Call(c)
                if c.func.experimental
                    || UPSTREAM_EXPERIMENTAL_FUNCTIONS.contains(&c.func.name) =>
            {
                found = Some(format!("function {}()", c.func.name))
            }
            Expr::Aggregate(a) if matches!(a.op.to_string().as_str(), "limitk" | "limit_ratio") => {
                found = Some(format!("aggregation {}", a.op))
            }
            Expr::Binary(b) => {
                if let Some(m) = &b.modifier {
                    if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                        found = Some("fill modifier".into());
                    }
                }
            }
            _ => {}
        }
    });
    found
}

/// Functions whose result can change with the evaluation time even when their arguments are
/// pinned with `@` (upstream's `AtModifierUnsafeFunctions`).
const AT_UNSAFE: [&str; 11] = [
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

/// Pins every selector outside subqueries, and every outermost subquery, that has no `@` yet
/// to `at`. Subqueries are not descended into (the upstream walk stops below a subquery that
/// carries an `@`, which after pinning every outermost one does). Returns whether an
/// at-unsafe function was seen.
fn pin(e: &mut Expr, at: &AtModifier) -> bool {
    match e {
        Expr::VectorSelector(vs) => {
            vs.at.get_or_insert_with(|| at.clone());
            false
        }
        Expr::MatrixSelector(ms) => {
            ms.vs.at.get_or_insert_with(|| at.clone());
            false
        }
        Expr::Subquery(sq) => {
            sq.at.get_or_insert_with(|| at.clone());
            false
        }
        Expr::Aggregate(a) => {
            let mut u = false;
            if let Some(p) = &mut a.param {
                u |= pin(p, at);
            }
            u | pin(&mut a.expr, at)
        }
        Expr::Unary(x) => pin(&mut x.expr, at),
        Expr::Binary(b) => pin(&mut b.lhs, at) | pin(&mut b.rhs, at),
        Expr::Paren(p) => pin(&mut p.expr, at),
        Expr::Call(c) => {
            let mut u = AT_UNSAFE.contains(&c.func.name);
            for a in &mut c.args.args {
                u |= pin(a, at);
            }
            u
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => false,
    }
}

fn sort_matchers(vs: &mut VectorSelector) {
    let key =
        |m: &promql_parser::label::Matcher| (m.name.clone(), m.op.to_string(), m.value.clone());
    vs.matchers.matchers.sort_by_key(key);
    for g in &mut vs.matchers.or_matchers {
        g.sort_by_key(key);
    }
}

/// Mutable pre-order walk.
fn walk_mut(e: &mut Expr, f: &mut impl FnMut(&mut Expr)) {
    f(e);
    match e {
        Expr::Aggregate(a) => {
            if let Some(p) = &mut a.param {
                walk_mut(p, f);
            }
            walk_mut(&mut a.expr, f);
        }
        Expr::Unary(u) => walk_mut(&mut u.expr, f),
        Expr::Binary(b) => {
            walk_mut(&mut b.lhs, f);
            walk_mut(&mut b.rhs, f);
        }
        Expr::Paren(p) => walk_mut(&mut p.expr, f),
        Expr::Subquery(s) => walk_mut(&mut s.expr, f),
        Expr::Call(c) => {
            for a in &mut c.args.args {
                walk_mut(a, f);
            }
        }
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => {}
    }
}

/// A comparable form of an AST up to what the printer legitimately changes: matcher order
/// (it sorts them), and the no-op modifiers `by ()` on aggregations and `ignoring ()` on binary
/// operations (it drops them).
fn normalized(e: &Expr) -> String {
    use promql_parser::parser::{LabelModifier, VectorMatchCardinality};
    let mut c = e.clone();
    walk_mut(&mut c, &mut |n| match n {
        Expr::VectorSelector(vs) => sort_matchers(vs),
        Expr::MatrixSelector(ms) => sort_matchers(&mut ms.vs),
        Expr::Aggregate(a) => {
            if matches!(&a.modifier, Some(LabelModifier::Include(l)) if l.labels.is_empty()) {
                a.modifier = None;
            }
        }
        Expr::Binary(b) => {
            if let Some(m) = &mut b.modifier {
                if matches!(&m.matching, Some(LabelModifier::Exclude(l)) if l.labels.is_empty()) {
                    m.matching = None;
                }
                let plain = m.matching.is_none()
                    && m.card == VectorMatchCardinality::OneToOne
                    && !m.return_bool
                    && m.fill_values.lhs.is_none()
                    && m.fill_values.rhs.is_none();
                if plain {
                    b.modifier = None;
                }
            }
        }
        _ => {}
    });
    format!("{c:?}")
}

/// Prints `e` with promql-parser and checks that the text parses back to the same query.
fn print_checked(e: &Expr) -> Result<String, String> {
    let printed = e.to_string();
    match parse_query(&printed) {
        Ok(back) if normalized(&back) == normalized(e) => Ok(printed),
        Ok(_) => Err(format!(
            "promql-parser prints the query back as {printed:?}, which parses differently"
        )),
        Err(err) => Err(format!(
            "promql-parser prints the query back as {printed:?}, which does not parse: {err}"
        )),
    }
}

/// The extra instant queries upstream runs for each instant eval: the query with everything
/// pinned `@` the eval time, evaluated at other times, expecting the same result. `Ok(None)`
/// when the query uses an at-unsafe function (upstream skips those); `Err` when the query
/// cannot be printed back faithfully by promql-parser (then the variants are not run).
pub fn at_variants(e: &Expr, eval_ms: i64) -> Result<Option<Vec<(String, i64)>>, String> {
    // The printer must round-trip the query, or the variants would test the printer.
    print_checked(e)?;
    let at = if eval_ms >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_millis(eval_ms as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_millis(eval_ms.unsigned_abs())
    };
    let mut pinned = e.clone();
    if pin(&mut pinned, &AtModifier::At(at)) {
        return Ok(None);
    }
    let text = print_checked(&pinned)?;
    let times: Vec<i64> = if eval_ms == 0 {
        vec![-1000, 0, 1000]
    } else {
        vec![-10 * eval_ms, 0, eval_ms / 5, eval_ms, 10 * eval_ms]
    };
    Ok(Some(times.into_iter().map(|t| (text.clone(), t)).collect()))
}
