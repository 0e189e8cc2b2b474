//! Prometheus's relabelling (`relabel_configs`, `alert_relabel_configs`): rules applied in order
//! to a label set, each of which may rewrite it or drop it. Semantics of Prometheus 2.42's
//! `model/relabel`: regular expressions are anchored at both ends, `source_labels` are joined
//! with `separator` (a missing label is the empty string), and `$1`/`${name}` in `replacement`
//! and `target_label` expand to the match's groups.

use crate::labels::{Label, Labels};
use crate::ModelError;
use md5::{Digest, Md5};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// What a rule does (`action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// `target_label` = `replacement` expanded with the match (an empty result deletes it).
    #[default]
    Replace,
    /// Keeps the set only if the joined source values match.
    Keep,
    /// Drops the set if the joined source values match.
    Drop,
    /// Keeps the set only if the joined source values equal `target_label`'s value.
    KeepEqual,
    /// Drops the set if the joined source values equal `target_label`'s value.
    DropEqual,
    /// `target_label` = MD5 of the joined source values, modulo `modulus`.
    HashMod,
    /// Copies every label whose name matches to the name `replacement` expands to.
    LabelMap,
    /// Removes every label whose name matches.
    LabelDrop,
    /// Removes every label whose name does not match.
    LabelKeep,
    /// `target_label` = the joined source values in lower case.
    Lowercase,
    /// `target_label` = the joined source values in upper case.
    Uppercase,
}

fn default_separator() -> String {
    ";".into()
}
fn default_regex() -> String {
    "(.*)".into()
}
fn default_replacement() -> String {
    "$1".into()
}

/// One relabelling rule as written in YAML, with Prometheus's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default)]
    pub source_labels: Vec<String>,
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default)]
    pub target_label: String,
    #[serde(default = "default_regex")]
    pub regex: String,
    #[serde(default)]
    pub modulus: u64,
    #[serde(default = "default_replacement")]
    pub replacement: String,
    #[serde(default)]
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        Self {
            source_labels: Vec::new(),
            separator: default_separator(),
            target_label: String::new(),
            regex: default_regex(),
            modulus: 0,
            replacement: default_replacement(),
            action: Action::Replace,
        }
    }
}

/// A checked rule, its regular expression compiled.
#[derive(Debug, Clone)]
pub struct Relabel {
    cfg: RelabelConfig,
    regex: Regex,
}

/// Whether `s` is a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl RelabelConfig {
    /// Checks the rule as Prometheus does when loading it and compiles it; errors name
    /// `field` (e.g. `ruler.alert_relabel_configs[2]`).
    pub fn compile(&self, field: &str) -> Result<Relabel, ModelError> {
        let bad = |reason: &'static str| ModelError::InvalidLimit {
            field: field.to_string(),
            reason,
        };
        let regex = Regex::new(&format!("^(?s:{})$", self.regex)).map_err(|e| {
            ModelError::InvalidRegex {
                label: format!("{field}.regex"),
                pattern: self.regex.clone(),
                source: Box::new(e),
            }
        })?;
        use Action::*;
        let needs_target = matches!(
            self.action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            return Err(bad("`target_label` is required for this action"));
        }
        if matches!(
            self.action,
            Lowercase | Uppercase | KeepEqual | DropEqual | HashMod
        ) && !is_label_name(&self.target_label)
        {
            return Err(bad(
                "`target_label` must be a valid label name for this action",
            ));
        }
        if self.action == Replace
            && !self.target_label.contains('$')
            && !is_label_name(&self.target_label)
        {
            return Err(bad("`target_label` is not a valid label name"));
        }
        if self.action == HashMod && self.modulus == 0 {
            return Err(bad("`modulus` must be > 0 for hashmod"));
        }
        if matches!(self.action, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != default_separator()
                || self.replacement != default_replacement())
        {
            return Err(bad("labeldrop and labelkeep take only `regex`"));
        }
        if matches!(self.action, KeepEqual | DropEqual)
            && (self.regex != default_regex()
                || self.modulus != 0
                || self.separator != default_separator()
                || self.replacement != default_replacement())
        {
            return Err(bad(
                "keepequal and dropequal take only `source_labels` and `target_label`",
            ));
        }
        Ok(Relabel {
            cfg: self.clone(),
            regex,
        })
    }
}

/// Checks and compiles a list of rules; errors name `field[i]`.
pub fn compile_all(cfgs: &[RelabelConfig], field: &str) -> Result<Vec<Relabel>, ModelError> {
    cfgs.iter()
        .enumerate()
        .map(|(i, c)| c.compile(&format!("{field}[{i}]")))
        .collect()
}

fn get<'a>(labels: &'a [Label], name: &str) -> &'a str {
    labels
        .iter()
        .find(|l| l.name == name)
        .map_or("", |l| l.value.as_str())
}

fn set(labels: &mut Vec<Label>, name: &str, value: String) {
    labels.retain(|l| l.name != name);
    if !value.is_empty() {
        labels.push(Label::new(name, value));
    }
}

/// Applies `rules` in order; `None` when one of them dropped the set. An empty result is
/// dropped too (as Prometheus drops an alert whose labels relabelling emptied).
pub fn process(labels: &Labels, rules: &[Relabel]) -> Option<Labels> {
    let mut l: Vec<Label> = labels.iter().cloned().collect();
    for r in rules {
        if !apply(&mut l, r) {
            return None;
        }
    }
    if l.is_empty() {
        return None;
    }
    l.sort_by(|a, b| a.name.cmp(&b.name));
    Some(Labels::from_sorted(l))
}

/// One rule; false when it drops the set.
fn apply(labels: &mut Vec<Label>, r: &Relabel) -> bool {
    let c = &r.cfg;
    let val = c
        .source_labels
        .iter()
        .map(|n| get(labels, n))
        .collect::<Vec<_>>()
        .join(&c.separator);
    match c.action {
        Action::Keep => r.regex.is_match(&val),
        Action::Drop => !r.regex.is_match(&val),
        Action::KeepEqual => val == get(labels, &c.target_label),
        Action::DropEqual => val != get(labels, &c.target_label),
        Action::Replace => {
            let Some(caps) = r.regex.captures(&val) else {
                return true;
            };
            let mut target = String::new();
            caps.expand(&c.target_label, &mut target);
            if !is_label_name(&target) {
                return true;
            }
            let mut value = String::new();
            caps.expand(&c.replacement, &mut value);
            set(labels, &target, value);
            true
        }
        Action::Lowercase => {
            set(labels, &c.target_label, val.to_lowercase());
            true
        }
        Action::Uppercase => {
            set(labels, &c.target_label, val.to_uppercase());
            true
        }
        Action::HashMod => {
            let sum = Md5::digest(val.as_bytes());
            // Go's `sum64` over the 16 bytes: shifts past 63 bits drop out, leaving the last 8
            // bytes, big-endian.
            let mut last = [0u8; 8];
            last.copy_from_slice(&sum[8..16]);
            let m = u64::from_be_bytes(last) % c.modulus;
            set(labels, &c.target_label, m.to_string());
            true
        }
        Action::LabelMap => {
            let mut added = Vec::new();
            for l in labels.iter() {
                if let Some(caps) = r.regex.captures(&l.name) {
                    let mut name = String::new();
                    caps.expand(&c.replacement, &mut name);
                    added.push((name, l.value.clone()));
                }
            }
            for (name, value) in added {
                set(labels, &name, value);
            }
            true
        }
        Action::LabelDrop => {
            labels.retain(|l| !r.regex.is_match(&l.name));
            true
        }
        Action::LabelKeep => {
            labels.retain(|l| r.regex.is_match(&l.name));
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml_like: &[RelabelConfig]) -> Vec<Relabel> {
        compile_all(yaml_like, "t").unwrap()
    }

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn replace_with_groups_and_anchoring() {
        let r = rules(&[RelabelConfig {
            source_labels: vec!["instance".into()],
            regex: "([^:]+):\\d+".into(),
            target_label: "host".into(),
            ..Default::default()
        }]);
        let out = process(&ls(&[("instance", "db1:9100")]), &r).unwrap();
        assert_eq!(out.get("host"), Some("db1"));
        // Anchored: a partial match does not count.
        let out = process(&ls(&[("instance", "x db1:9100 y")]), &r).unwrap();
        assert_eq!(out.get("host"), None);
        // An empty replacement deletes the target.
        let r = rules(&[RelabelConfig {
            source_labels: vec!["a".into()],
            target_label: "b".into(),
            replacement: "".into(),
            ..Default::default()
        }]);
        let out = process(&ls(&[("a", "1"), ("b", "2")]), &r).unwrap();
        assert_eq!(out.get("b"), None);
    }

    #[test]
    fn keep_drop_and_equality() {
        let keep = rules(&[RelabelConfig {
            source_labels: vec!["severity".into()],
            regex: "page|critical".into(),
            action: Action::Keep,
            ..Default::default()
        }]);
        assert!(process(&ls(&[("severity", "page")]), &keep).is_some());
        assert!(process(&ls(&[("severity", "warning")]), &keep).is_none());
        let drop = rules(&[RelabelConfig {
            source_labels: vec!["env".into(), "team".into()],
            regex: "dev;.*".into(),
            action: Action::Drop,
            ..Default::default()
        }]);
        assert!(process(&ls(&[("env", "dev"), ("team", "a")]), &drop).is_none());
        assert!(process(&ls(&[("env", "prod"), ("team", "a")]), &drop).is_some());
        let eq = rules(&[RelabelConfig {
            source_labels: vec!["a".into()],
            target_label: "b".into(),
            action: Action::KeepEqual,
            ..Default::default()
        }]);
        assert!(process(&ls(&[("a", "x"), ("b", "x")]), &eq).is_some());
        assert!(process(&ls(&[("a", "x"), ("b", "y")]), &eq).is_none());
    }

    #[test]
    fn label_map_drop_keep_and_case() {
        let r = rules(&[
            RelabelConfig {
                regex: "meta_(.+)".into(),
                action: Action::LabelMap,
                ..Default::default()
            },
            RelabelConfig {
                regex: "meta_.+".into(),
                action: Action::LabelDrop,
                replacement: default_replacement(),
                ..Default::default()
            },
            RelabelConfig {
                source_labels: vec!["zone".into()],
                target_label: "zone".into(),
                action: Action::Uppercase,
                ..Default::default()
            },
        ]);
        let out = process(&ls(&[("meta_zone", "eu1"), ("alertname", "A")]), &r).unwrap();
        assert_eq!(out.get("zone"), Some("EU1"));
        assert_eq!(out.get("meta_zone"), None);
        assert_eq!(out.get("alertname"), Some("A"));
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8: Prometheus's `sum64` keeps the last
        // 8 bytes, big-endian.
        let r = rules(&[RelabelConfig {
            source_labels: vec!["a".into()],
            target_label: "shard".into(),
            modulus: 1000,
            action: Action::HashMod,
            ..Default::default()
        }]);
        let out = process(&ls(&[("a", "foo")]), &r).unwrap();
        assert_eq!(
            out.get("shard").map(str::to_owned),
            Some((0xedef_654f_ccc4_a4d8u64 % 1000).to_string())
        );
    }

    #[test]
    fn invalid_rules_name_the_field() {
        let e = compile_all(
            &[
                RelabelConfig::default(),
                RelabelConfig {
                    action: Action::HashMod,
                    target_label: "x".into(),
                    ..Default::default()
                },
            ],
            "ruler.alert_relabel_configs",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("ruler.alert_relabel_configs[0]"),
            "{e}"
        );
        let e = RelabelConfig {
            regex: "(".into(),
            action: Action::Keep,
            ..Default::default()
        }
        .compile("f")
        .unwrap_err();
        assert!(e.to_string().contains("f.regex"), "{e}");
    }
}
