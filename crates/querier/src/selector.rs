//! Series selectors (`match[]`) parsed with promql-parser and turned into model matchers.

use crate::config::QuerierConfig;
use crate::error::ApiError;
use promql_parser::parser::Expr;
use strata_model::Matcher;

/// Parses one `match[]` selector into matcher sets; several sets mean `or` alternatives whose
/// results are unioned. The query size limits apply (a selector is parsed as PromQL).
pub fn parse_selector(s: &str, cfg: &QuerierConfig) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let expr =
        strata_promql::parse_checked(s, cfg.max_query_bytes, cfg.max_query_depth).map_err(|e| {
            match e {
                strata_promql::EvalError::Parse(m) => {
                    ApiError::BadData(format!("1:1: parse error: {m}"))
                }
                other => other.into(),
            }
        })?;
    parse_parsed(s, expr).map_err(ApiError::BadData)
}

fn parse_parsed(s: &str, expr: Expr) -> Result<Vec<Vec<Matcher>>, String> {
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
        let cfg = QuerierConfig::default();
        let parse = |s: &str| parse_selector(s, &cfg);
        let s = parse(r#"up{job=~"a.*",x!="y"}"#).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].len(), 3);
        assert!(s[0].iter().any(|m| m.name == "__name__" && m.value == "up"));
        let s = parse(r#"{__name__=~".+"}"#).unwrap();
        assert_eq!(s[0].len(), 1);
        assert!(parse("rate(x[5m])").is_err());
        assert!(parse("{").is_err());
        for empty in [r#"{__name__=~".*"}"#, r#"{job=""}"#, r#"{a!="x"}"#] {
            let e = parse(empty).unwrap_err().to_string();
            assert!(e.contains("at least one non-empty matcher"), "{empty}: {e}");
        }
        let deep = format!("{}up{}", "(".repeat(5000), ")".repeat(5000));
        let e = parse(&deep).unwrap_err().to_string();
        assert!(e.contains("querier.max_query_depth"), "{e}");
    }
}
