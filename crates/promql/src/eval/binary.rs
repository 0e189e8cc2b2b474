//! Binary operators: scalar/vector arithmetic and comparisons, vector matching with
//! `on`/`ignoring` and `group_left`/`group_right`, and the set operators.

use super::{drop_name, merge_same_labels, Evaluator, Steps, Val, SV};
use crate::EvalError;
use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};
use std::collections::HashMap;
use strata_model::{Labels, METRIC_NAME};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    fn parse(s: &str) -> Result<Self, EvalError> {
        Ok(match s {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            other => {
                return Err(EvalError::Execution(format!(
                    "unknown binary operator {other}"
                )))
            }
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    fn is_set(self) -> bool {
        matches!(self, Op::And | Op::Or | Op::Unless)
    }

    /// `(value, keep)`; for comparisons the value is the left operand.
    #[inline]
    fn apply(self, l: f64, r: f64) -> (f64, bool) {
        match self {
            Op::Add => (l + r, true),
            Op::Sub => (l - r, true),
            Op::Mul => (l * r, true),
            Op::Div => (l / r, true),
            Op::Mod => (l % r, true),
            Op::Pow => (l.powf(r), true),
            Op::Atan2 => (l.atan2(r), true),
            Op::Eq => (l, l == r),
            Op::Ne => (l, l != r),
            Op::Gt => (l, l > r),
            Op::Lt => (l, l < r),
            Op::Ge => (l, l >= r),
            Op::Le => (l, l <= r),
            Op::And | Op::Or | Op::Unless => (l, true),
        }
    }
}

/// Applies `op`; comparisons with `bool` give 0/1, without it they filter.
#[inline]
fn compute(op: Op, l: f64, r: f64, return_bool: bool) -> Option<f64> {
    let (v, keep) = op.apply(l, r);
    if op.is_comparison() {
        if return_bool {
            return Some(if keep { 1.0 } else { 0.0 });
        }
        return keep.then_some(v);
    }
    Some(v)
}

/// The matching signature of a series.
fn signature(l: &Labels, matching: &Option<LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(on)) => Labels::from_sorted(
            l.iter()
                .filter(|x| on.labels.contains(&x.name))
                .cloned()
                .collect(),
        ),
        Some(LabelModifier::Exclude(ign)) => Labels::from_sorted(
            l.iter()
                .filter(|x| x.name != METRIC_NAME && !ign.labels.contains(&x.name))
                .cloned()
                .collect(),
        ),
        None => drop_name(l),
    }
}

fn fmt_labels_list(ls: &[&Labels]) -> String {
    let items: Vec<String> = ls.iter().map(|l| l.to_string()).collect();
    format!("[{}]", items.join(", "))
}

impl Evaluator {
    pub(super) fn binary(&mut self, b: &BinaryExpr, steps: &Steps) -> Result<Val, EvalError> {
        let op = Op::parse(&b.op.to_string())?;
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = self.eval(&b.lhs, steps)?;
        let rhs = self.eval(&b.rhs, steps)?;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(&l, &r)| {
                        let (v, keep) = op.apply(l, r);
                        if op.is_comparison() {
                            if keep {
                                1.0
                            } else {
                                0.0
                            }
                        } else {
                            v
                        }
                    })
                    .collect(),
            )),
            (Val::Vector(v), Val::Scalar(s)) => vector_scalar(op, v, &s, false, return_bool),
            (Val::Scalar(s), Val::Vector(v)) => vector_scalar(op, v, &s, true, return_bool),
            (Val::Vector(l), Val::Vector(r)) => {
                let m = b.modifier.as_ref();
                if op.is_set() {
                    let matching = m.and_then(|m| m.matching.clone());
                    Ok(Val::Vector(set_op(op, l, r, &matching, steps)))
                } else {
                    vector_vector(op, l, r, m, return_bool, steps)
                }
            }
            _ => Err(EvalError::Execution(
                "binary operators need scalar or instant vector operands".into(),
            )),
        }
    }
}

fn vector_scalar(
    op: Op,
    v: Vec<SV>,
    s: &[f64],
    swap: bool,
    return_bool: bool,
) -> Result<Val, EvalError> {
    let drop = !op.is_comparison() || return_bool;
    let out: Vec<SV> = v
        .into_iter()
        .filter_map(|series| {
            let vals: Vec<Option<f64>> = series
                .vals
                .iter()
                .zip(s)
                .map(|(x, &sc)| {
                    x.and_then(|x| {
                        let (l, r) = if swap { (sc, x) } else { (x, sc) };
                        let res = compute(op, l, r, return_bool)?;
                        // A comparison without `bool` keeps the vector's value even when
                        // the scalar is on the left.
                        Some(if op.is_comparison() && !return_bool {
                            x
                        } else {
                            res
                        })
                    })
                })
                .collect();
            let keep = vals.iter().any(Option::is_some);
            keep.then_some(SV {
                labels: series.labels,
                vals,
                drop: drop || series.drop,
            })
        })
        .collect();
    Ok(Val::Vector(out))
}

/// Interns signatures into dense ids.
fn sig_ids(
    v: &[SV],
    matching: &Option<LabelModifier>,
    index: &mut HashMap<Labels, usize>,
    sigs: &mut Vec<Labels>,
) -> Vec<usize> {
    v.iter()
        .map(|s| {
            let sig = signature(&s.labels, matching);
            match index.get(&sig) {
                Some(&i) => i,
                None => {
                    sigs.push(sig.clone());
                    index.insert(sig, sigs.len() - 1);
                    sigs.len() - 1
                }
            }
        })
        .collect()
}

fn set_op(
    op: Op,
    l: Vec<SV>,
    r: Vec<SV>,
    matching: &Option<LabelModifier>,
    steps: &Steps,
) -> Vec<SV> {
    let n = steps.n;
    let mut index = HashMap::new();
    let mut sigs = Vec::new();
    let lid = sig_ids(&l, matching, &mut index, &mut sigs);
    let rid = sig_ids(&r, matching, &mut index, &mut sigs);
    let mut rpresent = vec![false; sigs.len() * n];
    for (s, &id) in r.iter().zip(&rid) {
        for (i, v) in s.vals.iter().enumerate() {
            if v.is_some() {
                rpresent[id * n + i] = true;
            }
        }
    }
    match op {
        Op::And | Op::Unless => {
            let want = op == Op::And;
            l.into_iter()
                .zip(lid)
                .filter_map(|(mut s, id)| {
                    for (i, v) in s.vals.iter_mut().enumerate() {
                        if rpresent[id * n + i] != want {
                            *v = None;
                        }
                    }
                    s.vals.iter().any(Option::is_some).then_some(s)
                })
                .collect()
        }
        _ => {
            let mut lpresent = vec![false; sigs.len() * n];
            for (s, &id) in l.iter().zip(&lid) {
                for (i, v) in s.vals.iter().enumerate() {
                    if v.is_some() {
                        lpresent[id * n + i] = true;
                    }
                }
            }
            let mut out = l;
            for (mut s, id) in r.into_iter().zip(rid) {
                for (i, v) in s.vals.iter_mut().enumerate() {
                    if lpresent[id * n + i] {
                        *v = None;
                    }
                }
                if s.vals.iter().any(Option::is_some) {
                    out.push(s);
                }
            }
            // Series of both sides with identical labels at different steps become one.
            merge_same_labels(out).unwrap_or_default()
        }
    }
}

fn result_labels(many: &Labels, one: &Labels, drop: bool, m: Option<&BinModifier>) -> Labels {
    let mut pairs: Vec<strata_model::Label> = many.iter().cloned().collect();
    if drop {
        pairs.retain(|x| x.name != METRIC_NAME);
    }
    let card = m.map(|m| &m.card);
    let matching = m.and_then(|m| m.matching.as_ref());
    if matches!(card, None | Some(VectorMatchCardinality::OneToOne)) {
        match matching {
            Some(LabelModifier::Include(on)) => pairs.retain(|x| on.labels.contains(&x.name)),
            Some(LabelModifier::Exclude(ign)) => pairs.retain(|x| !ign.labels.contains(&x.name)),
            None => {}
        }
    }
    if let Some(VectorMatchCardinality::ManyToOne(inc) | VectorMatchCardinality::OneToMany(inc)) =
        card
    {
        for name in &inc.labels {
            pairs.retain(|x| x.name != *name);
            if let Some(v) = one.get(name) {
                pairs.push(strata_model::Label::new(name.clone(), v));
            }
        }
        pairs.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Labels::from_sorted(pairs)
}

fn vector_vector(
    op: Op,
    l: Vec<SV>,
    r: Vec<SV>,
    m: Option<&BinModifier>,
    return_bool: bool,
    steps: &Steps,
) -> Result<Val, EvalError> {
    let n = steps.n;
    let card = m.map_or(VectorMatchCardinality::OneToOne, |m| m.card.clone());
    let matching = m.and_then(|m| m.matching.clone());
    // Work on (many, one) sides; group_right swaps them.
    let swapped = matches!(card, VectorMatchCardinality::OneToMany(_));
    let (many, one) = if swapped { (r, l) } else { (l, r) };
    let mut index = HashMap::new();
    let mut sigs = Vec::new();
    let many_id = sig_ids(&many, &matching, &mut index, &mut sigs);
    let one_id = sig_ids(&one, &matching, &mut index, &mut sigs);
    let mut one_by_sig: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, &id) in one_id.iter().enumerate() {
        one_by_sig.entry(id).or_default().push(i);
    }
    let side = if swapped { "left" } else { "right" };
    // The "one" side must be unique per signature at every step.
    for (id, members) in &one_by_sig {
        if members.len() < 2 {
            continue;
        }
        for i in 0..n {
            let present: Vec<&Labels> = members
                .iter()
                .filter(|&&j| one[j].vals[i].is_some())
                .map(|&j| &one[j].labels)
                .collect();
            if present.len() > 1 {
                return Err(EvalError::Execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: {};many-to-many matching not allowed: matching labels must be unique on one side",
                    sigs[*id],
                    fmt_labels_list(&present)
                )));
            }
        }
    }
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let drop = !op.is_comparison() || return_bool;
    let mut out: HashMap<Labels, SV> = HashMap::new();
    // For one-to-one, the many side must be unique too: track which many-series matched per
    // (signature, step).
    let mut matched: HashMap<(usize, usize), usize> = HashMap::new();
    for (mi, s) in many.iter().enumerate() {
        let Some(cands) = one_by_sig.get(&many_id[mi]) else {
            continue;
        };
        for &oj in cands {
            let o = &one[oj];
            let mut vals = vec![None; n];
            let mut any = false;
            for (i, slot) in vals.iter_mut().enumerate() {
                let (Some(mv), Some(ov)) = (s.vals[i], o.vals[i]) else {
                    continue;
                };
                if one_to_one {
                    if let Some(prev) = matched.insert((many_id[mi], i), mi) {
                        if prev != mi {
                            return Err(EvalError::Execution(format!(
                                "found duplicate series for the match group {} on the left hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                                sigs[many_id[mi]], many[prev].labels, s.labels
                            )));
                        }
                    }
                }
                let (lv, rv) = if swapped { (ov, mv) } else { (mv, ov) };
                if let Some(v) = compute(op, lv, rv, return_bool) {
                    *slot = Some(v);
                    any = true;
                }
            }
            if !any {
                continue;
            }
            let labels = result_labels(&s.labels, &o.labels, false, m);
            let flag = drop || s.drop;
            match out.get_mut(&labels) {
                Some(existing) => {
                    for (a, b) in existing.vals.iter_mut().zip(vals) {
                        if b.is_some() {
                            if a.is_some() {
                                return Err(EvalError::Execution(if one_to_one {
                                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into()
                                } else {
                                    "multiple matches for labels: grouping labels must ensure unique matches".into()
                                }));
                            }
                            *a = b;
                        }
                    }
                }
                None => {
                    out.insert(
                        labels.clone(),
                        SV {
                            labels,
                            vals,
                            drop: flag,
                        },
                    );
                }
            }
        }
    }
    Ok(Val::Vector(out.into_values().collect()))
}
