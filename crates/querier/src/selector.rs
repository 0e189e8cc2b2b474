//! Series selectors (`match[]`) parsed with promql-parser and turned into model matchers.

use promql_parser::parser::{self, Expr};
use strata_model::Matcher;

/// Parses one `match[]` selector into matcher sets; several sets mean `or` alternatives whose
/// results are unioned.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, String> {
    let expr = parser::parse(s).map_err(|e| format!("1:1: parse error: {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "invalid parameter \"match[]\": {s:?} is not a series selector"
        ));
    };
    let sets = strata_promql::selector_matchers(&vs).map_err(|e| e.to_string())?;
    for set in &sets {
        if set.iter().all(Matcher::matches_empty) {
            return Err(format!(
                "invalid parameter \"match[]\": {s}: vector selector must contain at least one non-empty matcher"
            ));
        }
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
