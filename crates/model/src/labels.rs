//! Owned label sets, sorted by name, as the query side hands them out.

use std::fmt;

/// The reserved label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A label set sorted by name with unique names; the identity of a series.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Builds a label set from pairs in any order; empty values are dropped because Prometheus
    /// treats a label with an empty value as absent. A later duplicate name wins.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label::new(n, v))
            .filter(|l| !l.value.is_empty())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        // Keep the last of equal names: stable sort keeps input order among equals.
        let mut out: Vec<Label> = Vec::with_capacity(v.len());
        for l in v {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        Self(out)
    }

    /// Wraps labels the caller guarantees are sorted by name and unique.
    pub fn from_sorted(labels: Vec<Label>) -> Self {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        Self(labels)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name, if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Formats label pairs the way Prometheus prints a series: `name{a="b", c="d"}`.
pub fn fmt_series<'a>(
    f: &mut impl fmt::Write,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> fmt::Result {
    let mut name = None;
    let mut rest = Vec::new();
    for (n, v) in pairs {
        if n == METRIC_NAME {
            name = Some(v);
        } else {
            rest.push((n, v));
        }
    }
    if let Some(n) = name {
        f.write_str(n)?;
    }
    f.write_char('{')?;
    for (i, (n, v)) in rest.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{n}={v:?}")?;
    }
    f.write_char('}')
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_series(
            f,
            self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pairs_sorts_dedups_and_drops_empty() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", ""), ("b", "3")]);
        assert_eq!(l.len(), 2);
        assert_eq!(l.get("a"), Some("1"));
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn display_matches_prometheus_style() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "h:9100")]);
        assert_eq!(l.to_string(), r#"up{instance="h:9100", job="node"}"#);
        assert_eq!(Labels::from_pairs([("a", "x")]).to_string(), r#"{a="x"}"#);
    }
}
