//! Prometheus's rule-file format (`groups:` of recording and alerting rules) and its
//! validation, giving the verdicts of `promtool check rules` with errors that name the file,
//! the group and the rule.
//!
//! Beyond Prometheus 2.42 the format accepts the group fields later versions added
//! (`query_offset`, group `labels`), which the Mimir ruler also accepts.

use crate::duration::PromDuration;
use crate::error::{RuleError, RuleErrorKind, RuleFileError};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use strata_template::{Dialect, Templates};

/// A rule file: a list of groups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroups {
    #[serde(default)]
    pub groups: Vec<RuleGroup>,
}

/// A group of rules evaluated in order at one timestamp per interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroup {
    /// Unique within a file (within a namespace, for the ruler's API).
    #[serde(default, deserialize_with = "scalar_string")]
    pub name: String,
    /// Time between evaluations; the ruler's `evaluation_interval` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<PromDuration>,
    /// Evaluate this long in the past, so that late samples are in (the ruler's default when
    /// absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_offset: Option<PromDuration>,
    /// Most series (recording rule) or alerts (alerting rule) one evaluation of a rule may
    /// produce; 0 = no limit. Exceeding it fails the whole rule evaluation.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: i64,
    /// Labels added to every rule of the group; a rule's own labels win.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub rules: Vec<RuleNode>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// One rule as written: recording (`record`) or alerting (`alert`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleNode {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_scalar_string"
    )]
    pub record: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_scalar_string"
    )]
    pub alert: Option<String>,
    #[serde(default, deserialize_with = "scalar_string")]
    pub expr: String,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<PromDuration>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub annotations: BTreeMap<String, String>,
}

impl RuleNode {
    /// The rule's name: the alert name or the recorded metric name.
    pub fn name(&self) -> &str {
        self.alert
            .as_deref()
            .filter(|a| !a.is_empty())
            .or(self.record.as_deref())
            .unwrap_or("")
    }

    /// Whether this is an alerting rule.
    pub fn is_alert(&self) -> bool {
        self.alert.as_deref().is_some_and(|a| !a.is_empty())
    }
}

/// A YAML scalar as Go's YAML decoder reads it into a string: strings, numbers and booleans
/// alike (`for: 0`, `severity: 1`).
pub(crate) fn scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::de::Error;
    match serde_yaml::Value::deserialize(d)? {
        serde_yaml::Value::String(s) => Ok(s),
        serde_yaml::Value::Number(n) => Ok(n.to_string()),
        serde_yaml::Value::Bool(b) => Ok(b.to_string()),
        serde_yaml::Value::Null => Ok(String::new()),
        other => Err(D::Error::custom(format!(
            "expected a string, found {}",
            yaml_kind(&other)
        ))),
    }
}

fn opt_scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    scalar_string(d).map(Some)
}

fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::de::Error;
    match serde_yaml::Value::deserialize(d)? {
        serde_yaml::Value::Null => Ok(BTreeMap::new()),
        serde_yaml::Value::Mapping(m) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let k = scalar_string(k).map_err(D::Error::custom)?;
                let v = scalar_string(v).map_err(D::Error::custom)?;
                out.insert(k, v);
            }
            Ok(out)
        }
        other => Err(D::Error::custom(format!(
            "expected a map of strings, found {}",
            yaml_kind(&other)
        ))),
    }
}

fn yaml_kind(v: &serde_yaml::Value) -> &'static str {
    match v {
        serde_yaml::Value::Null => "null",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a map",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

/// Variables Prometheus declares before a rule's label and annotation templates.
pub const TEMPLATE_VARIABLES: &[&str] = &["$labels", "$externalLabels", "$externalURL", "$value"];

/// Parses a rule file's text (YAML) without validating the rules. An empty document is a file
/// without groups, as in Prometheus.
pub fn parse(file: &str, text: &str) -> Result<RuleGroups, RuleFileError> {
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|source| RuleFileError::Yaml {
            file: file.to_string(),
            source,
        })?;
    if value.is_null() {
        return Ok(RuleGroups::default());
    }
    serde_yaml::from_value(value).map_err(|source| RuleFileError::Yaml {
        file: file.to_string(),
        source,
    })
}

/// Parses and validates a rule file.
pub fn parse_and_validate(file: &str, text: &str) -> Result<RuleGroups, RuleFileError> {
    let groups = parse(file, text)?;
    validate(file, &groups)?;
    Ok(groups)
}

/// Validates every group and rule of a file as Prometheus does at load (and `promtool check
/// rules`, lints aside): all problems are reported, not only the first.
pub fn validate(file: &str, groups: &RuleGroups) -> Result<(), RuleFileError> {
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for g in &groups.groups {
        errors.extend(validate_group(g));
        if !g.name.is_empty() && !seen.insert(g.name.as_str()) {
            errors.push(RuleError::group(
                &g.name,
                RuleErrorKind::DuplicateGroup(g.name.clone()),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RuleFileError::Invalid {
            file: file.to_string(),
            errors,
        })
    }
}

/// Validates one group on its own (name, labels, every rule).
pub fn validate_group(g: &RuleGroup) -> Vec<RuleError> {
    let mut errors = Vec::new();
    if g.name.is_empty() {
        errors.push(RuleError::group("", RuleErrorKind::EmptyGroupName));
    }
    for k in g.labels.keys() {
        if !is_valid_label_name(k) || k == "__name__" {
            errors.push(RuleError::group(
                &g.name,
                RuleErrorKind::LabelName(k.clone()),
            ));
        }
    }
    for (i, r) in g.rules.iter().enumerate() {
        for kind in validate_rule(r) {
            errors.push(RuleError {
                group: g.name.clone(),
                rule: Some((i + 1, r.name().to_string())),
                kind,
            });
        }
    }
    errors
}

/// Problems of one rule.
pub fn validate_rule(r: &RuleNode) -> Vec<RuleErrorKind> {
    let mut out = Vec::new();
    let record = r.record.as_deref().unwrap_or("");
    let alert = r.alert.as_deref().unwrap_or("");
    match (record.is_empty(), alert.is_empty()) {
        (false, false) => out.push(RuleErrorKind::BothRecordAndAlert),
        (true, true) => out.push(RuleErrorKind::NeitherRecordNorAlert),
        _ => {}
    }
    if r.expr.is_empty() {
        out.push(RuleErrorKind::MissingExpr);
    } else if let Err(e) = strata_promql::parse(&r.expr) {
        out.push(RuleErrorKind::Expr(e));
    }
    if !record.is_empty() {
        if !r.annotations.is_empty() {
            out.push(RuleErrorKind::RecordingField("annotations"));
        }
        if r.for_.is_some_and(|d| !d.0.is_zero()) {
            out.push(RuleErrorKind::RecordingField("for"));
        }
        if r.keep_firing_for.is_some_and(|d| !d.0.is_zero()) {
            out.push(RuleErrorKind::RecordingField("keep_firing_for"));
        }
        if !is_valid_metric_name(record) {
            out.push(RuleErrorKind::RecordName(record.to_string()));
        }
    }
    for k in r.labels.keys() {
        if !is_valid_label_name(k) || k == "__name__" {
            out.push(RuleErrorKind::LabelName(k.clone()));
        }
    }
    for k in r.annotations.keys() {
        if !is_valid_label_name(k) {
            out.push(RuleErrorKind::AnnotationName(k.clone()));
        }
    }
    if !alert.is_empty() {
        // Prometheus parses the templates with its variables declared, under this name.
        let name = format!("__alert_{alert}");
        for (kind, map) in [("label", &r.labels), ("annotation", &r.annotations)] {
            for (k, text) in map {
                if let Err(e) = Templates::check_text_strict(
                    Dialect::Prometheus,
                    &name,
                    text,
                    TEMPLATE_VARIABLES,
                ) {
                    out.push(RuleErrorKind::Template {
                        kind,
                        name: k.clone(),
                        source: e,
                    });
                }
            }
        }
    }
    out
}

/// Rules that `promtool check rules` reports as duplicates (its default lint): the same
/// name (alert or record) with the same labels, anywhere in the file.
pub fn duplicate_rules(groups: &RuleGroups) -> Vec<(String, BTreeMap<String, String>)> {
    let mut all: Vec<(&str, &BTreeMap<String, String>)> = groups
        .groups
        .iter()
        .flat_map(|g| g.rules.iter().map(|r| (r.name(), &r.labels)))
        .collect();
    all.sort();
    let mut out: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for w in all.windows(2) {
        if w[0] == w[1] && out.last().map(|(n, l)| (n.as_str(), l)) != Some(w[0]) {
            out.push((w[0].0.to_string(), w[0].1.clone()));
        }
    }
    out
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn is_valid_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse_and_validate("f.yml", text) {
            Ok(_) => Vec::new(),
            Err(RuleFileError::Invalid { errors, .. }) => {
                errors.iter().map(|e| e.to_string()).collect()
            }
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn scalars_of_any_type_read_as_strings() {
        let g = parse(
            "f",
            "groups: [{name: 1, rules: [{alert: A, expr: 1, for: 0, labels: {sev: 2, x: true}}]}]",
        )
        .unwrap();
        let r = &g.groups[0].rules[0];
        assert_eq!(g.groups[0].name, "1");
        assert_eq!(r.expr, "1");
        assert_eq!(r.for_, Some(PromDuration::default()));
        assert_eq!(r.labels["sev"], "2");
        assert_eq!(r.labels["x"], "true");
    }

    #[test]
    fn errors_name_group_rule_and_problem() {
        assert_eq!(
            errors("groups: [{name: g, rules: [{record: a, alert: A, expr: up}]}]"),
            vec![r#"group "g", rule 1, "A": only one of 'record' and 'alert' must be set"#]
        );
        assert_eq!(
            errors("groups: [{name: g, rules: [{record: ok, expr: up}, {record: 'a-b', expr: up, for: 1m}]}]"),
            vec![
                r#"group "g", rule 2, "a-b": invalid field 'for' in recording rule"#,
                r#"group "g", rule 2, "a-b": invalid recording rule name: a-b"#,
            ]
        );
        let e = errors(
            "groups: [{name: g, rules: [{alert: A, expr: up, annotations: {s: '{{ $nope }}'}}]}]",
        );
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with(r#"group "g", rule 1, "A": annotation "s": "#),
            "{e:?}"
        );
        assert!(e[0].contains("undefined variable"), "{e:?}");
    }

    #[test]
    fn round_trips_through_yaml() {
        let text = "groups:\n- name: g\n  interval: 1m\n  query_offset: 30s\n  limit: 5\n  labels:\n    team: a\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 5m\n    keep_firing_for: 1m\n    labels:\n      sev: page\n    annotations:\n      s: '{{ $value }}'\n";
        let g = parse_and_validate("f", text).unwrap();
        let back = serde_yaml::to_string(&g).unwrap();
        assert_eq!(parse("f", &back).unwrap(), g);
        assert!(back.contains("for: 5m"), "{back}");
    }

    #[test]
    fn duplicate_rules_lint() {
        let g = parse(
            "f",
            "groups: [{name: a, rules: [{record: x, expr: up}]}, {name: b, rules: [{record: x, expr: down}, {record: x, expr: up, labels: {l: v}}]}]",
        )
        .unwrap();
        assert_eq!(
            duplicate_rules(&g),
            vec![("x".to_string(), BTreeMap::new())]
        );
    }
}
