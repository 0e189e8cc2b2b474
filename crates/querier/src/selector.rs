//! Series selectors (`match[]`) parsed with promql-parser and turned into model matchers.

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{self, Expr};
use strata_model::{MatchOp, Matcher, METRIC_NAME};

/// Parses one `match[]` selector into matcher sets; several sets mean `or` alternatives whose
/// results are unioned.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, String> {
    let expr = parser::parse(s).map_err(|e| format!("1:1: parse error: {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "invalid parameter \"match[]\": {s:?} is not a series selector"
        ));
    };
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, String> {
        let mut out = Vec::with_capacity(ms.len() + 1);
        let mut has_name = false;
        for m in ms {
            let op = match m.op {
                PMatchOp::Equal => MatchOp::Equal,
                PMatchOp::NotEqual => MatchOp::NotEqual,
                PMatchOp::Re(_) => MatchOp::RegexMatch,
                PMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
            };
            has_name |= m.name == METRIC_NAME;
            out.push(Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())?);
        }
        if let (Some(n), false) = (&vs.name, has_name) {
            out.push(Matcher::equal(METRIC_NAME, n.clone()));
        }
        if out.iter().all(Matcher::matches_empty) {
            return Err(format!(
                "invalid parameter \"match[]\": {s}: vector selector must contain at least one non-empty matcher"
            ));
        }
        Ok(out)
    };
    let mut sets = vec![convert(&vs.matchers.matchers)?];
    for alt in &vs.matchers.or_matchers {
        sets.push(convert(alt)?);
    }
    // `{a="1" or b="2"}`: the first set is empty when everything is in or-groups.
    if !vs.matchers.or_matchers.is_empty() && vs.matchers.matchers.is_empty() {
        sets.remove(0);
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let s = parse_selector(r#"up{job=~"a.*",x!="y"}"#).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].len(), 3);
        assert!(s[0].iter().any(|m| m.name == "__name__" && m.value == "up"));
        let s = parse_selector(r#"{__name__=~".+"}"#).unwrap();
        assert_eq!(s[0].len(), 1);
        assert!(parse_selector("rate(x[5m])").is_err());
        assert!(parse_selector("{").is_err());
    }
}
