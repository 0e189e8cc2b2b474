//! Expanding alert label and annotation templates as Prometheus does: each text runs with
//! `$labels`, `$externalLabels`, `$externalURL` and `$value` declared, and `query` asks the
//! engine at the evaluation's time; a failing template expands to
//! `<error expanding template: ...>` instead of failing the rule.

use std::collections::BTreeMap;
use strata_template::{Dialect, TemplateQuerier, Templates, Value};

/// The values a rule's templates see.
#[derive(Clone)]
pub struct TemplateData<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
    pub value: f64,
    /// Answers `query` calls; without it they fail.
    pub querier: Option<&'a dyn TemplateQuerier>,
}

impl std::fmt::Debug for TemplateData<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateData")
            .field("labels", self.labels)
            .field("value", &self.value)
            .field("querier", &self.querier.is_some())
            .finish_non_exhaustive()
    }
}

const PRELUDE: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Expands `text` for alert `alert_name`.
pub fn expand(alert_name: &str, text: &str, data: &TemplateData<'_>) -> String {
    // Texts without actions are by far the most common; they expand to themselves.
    if !text.contains("{{") {
        return text.to_string();
    }
    let value = Value::Struct(BTreeMap::from([
        ("Labels", Value::Kv(data.labels.clone())),
        ("ExternalLabels", Value::Kv(data.external_labels.clone())),
        ("ExternalURL", Value::Str(data.external_url.to_string())),
        ("Value", Value::Float(data.value)),
    ]));
    let set = Templates::new(Dialect::Prometheus);
    match set.render_text_with(&format!("{PRELUDE}{text}"), &value, data.querier) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(alert = alert_name, error = %e, "expanding alert template failed");
            format!("<error expanding template: {e}>")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, value: f64) -> String {
        let labels = BTreeMap::from([
            ("instance".to_string(), "node1:9100".to_string()),
            ("job".to_string(), "node".to_string()),
        ]);
        let ext = BTreeMap::from([("cluster".to_string(), "eu1".to_string())]);
        expand(
            "A",
            text,
            &TemplateData {
                labels: &labels,
                external_labels: &ext,
                external_url: "http://strata:9009/prometheus",
                value,
                querier: None,
            },
        )
    }

    #[test]
    fn variables_and_functions() {
        assert_eq!(
            ex("{{ $labels.instance }} is down", 0.0),
            "node1:9100 is down"
        );
        assert_eq!(ex("{{ $value }}", 1234567.0), "1.234567e+06");
        assert_eq!(ex("{{ $value }}", 0.25), "0.25");
        assert_eq!(ex("{{ $value | humanize }}", 1234567.0), "1.235M");
        assert_eq!(ex("{{ humanizePercentage $value }}", 0.256), "25.6%");
        assert_eq!(ex("{{ $externalLabels.cluster }}", 0.0), "eu1");
        assert_eq!(
            ex("{{ $externalURL }}{{ pathPrefix }}", 0.0),
            "http://strata:9009/prometheus/prometheus"
        );
        assert_eq!(ex("{{ $labels.instance | stripPort }}", 0.0), "node1");
        assert_eq!(
            ex("{{ if gt $value 1.0 }}high{{ else }}low{{ end }}", 2.0),
            "high"
        );
        assert_eq!(ex("{{ printf \"%.1f\" $value }}", 2.25), "2.2");
        assert_eq!(ex("{{ $labels.missing }}", 0.0), "");
        assert_eq!(ex("plain", 0.0), "plain");
    }

    /// Answers `up` with two series (out of instance order) and anything else with none.
    struct FakeEngine;

    impl TemplateQuerier for FakeEngine {
        fn query(&self, q: &str) -> Result<Vec<strata_template::QuerySample>, String> {
            let series = |instance: &str, v: f64| {
                let l = [
                    ("__name__", "up"),
                    ("instance", instance),
                    ("__value__", "s"),
                ];
                (
                    l.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    v,
                )
            };
            match q {
                "up" => Ok(vec![series("b:9100", 0.0), series("a:9100", 1234.5)]),
                "bad(" => Err("parse error: unclosed left parenthesis".into()),
                _ => Ok(Vec::new()),
            }
        }
    }

    fn ex_query(text: &str) -> String {
        let labels = BTreeMap::new();
        expand(
            "A",
            text,
            &TemplateData {
                labels: &labels,
                external_labels: &labels,
                external_url: "",
                value: 0.0,
                querier: Some(&FakeEngine),
            },
        )
    }

    #[test]
    fn templates_query_the_engine() {
        assert_eq!(
            ex_query("{{ with query \"up\" }}{{ . | first | value | humanize }}{{ end }}"),
            "0"
        );
        assert_eq!(
            ex_query(
                "{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}={{ .Value }};{{ end }}"
            ),
            "a:9100=1234.5;b:9100=0;"
        );
        assert_eq!(
            ex_query("{{ query \"up\" | first | label \"instance\" }}"),
            "b:9100"
        );
        assert_eq!(ex_query("{{ query \"up\" | first | strvalue }}"), "s");
        assert_eq!(
            ex_query("{{ with query \"none\" }}some{{ else }}none{{ end }}"),
            "none"
        );
        let e = ex_query("{{ query \"none\" | first | value }}");
        assert!(
            e.contains("first() called on vector with no elements"),
            "{e}"
        );
        let e = ex_query("{{ query \"bad(\" }}");
        assert!(e.contains("unclosed left parenthesis"), "{e}");
        let e = ex_query("{{ value 1.5 }}");
        assert!(e.contains("expected *template.sample"), "{e}");
    }

    #[test]
    fn failures_expand_to_an_error_text() {
        let s = ex("{{ query \"up\" }}", 0.0);
        assert!(s.starts_with("<error expanding template: "), "{s}");
    }
}
