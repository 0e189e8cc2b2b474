//! Label sets, Alertmanager's label-set fingerprint and the Go string renderings that end up in
//! group keys and webhook payloads.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A label set: name → value, iterated in name order (the order every upstream rendering
/// uses). Stored as one sorted vector rather than a `BTreeMap`: a map's node holds 11 entries
/// whatever the count, so the 5–10 labels of an alert would take ~640 bytes where the vector
/// takes what they need. Lookups are binary searches over a handful of names.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelSet(Vec<(String, String)>);

impl LabelSet {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&String> {
        self.find(name).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets `name`; returns the value it replaces.
    pub fn insert(&mut self, name: String, value: String) -> Option<String> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.find(name).ok().map(|i| self.0.remove(i).1)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut String) -> bool) {
        self.0.retain_mut(|(n, v)| keep(n, v));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &String)> + ExactSizeIterator {
        self.0.iter().map(|(n, v)| (n, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(n, _)| n)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(_, v)| v)
    }

    /// The same pairs as a map, for code that wants one (template values).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().cloned().collect()
    }
}

impl std::fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl std::ops::Index<&str> for LabelSet {
    type Output = String;

    fn index(&self, name: &str) -> &String {
        self.get(name)
            .unwrap_or_else(|| panic!("label {name:?} not in the set"))
    }
}

impl FromIterator<(String, String)> for LabelSet {
    /// Like collecting into a map: sorted by name, the last of equal names wins.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut v: Vec<(String, String)> = iter.into_iter().collect();
        // Stable: among equal names the input order stays, and the last one is kept below.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(v.len());
        for (n, val) in v {
            match out.last_mut() {
                Some(last) if last.0 == n => last.1 = val,
                _ => out.push((n, val)),
            }
        }
        out.shrink_to_fit();
        Self(out)
    }
}

impl<const N: usize> From<[(String, String); N]> for LabelSet {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl From<BTreeMap<String, String>> for LabelSet {
    fn from(map: BTreeMap<String, String>) -> Self {
        // Already sorted and unique.
        Self(map.into_iter().collect())
    }
}

impl IntoIterator for LabelSet {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a LabelSet {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(n, v)| (n, v))
    }
}

impl Extend<(String, String)> for LabelSet {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, iter: I) {
        for (n, v) in iter {
            self.insert(n, v);
        }
    }
}

impl serde::Serialize for LabelSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for LabelSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(d).map(Self::from)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const SEPARATOR: u8 = 0xff;

/// The 64-bit fingerprint Alertmanager (prometheus/common `LabelSet.Fingerprint`) gives a label
/// set: FNV-1a 64 over `name 0xff value 0xff` for every label in name order.
///
/// Hand-written rather than taken from the `fnv` crate: that crate exposes a `Hasher`, whose
/// `write_str`/`write` framing would have to be avoided carefully anyway, and the loop below is
/// the whole algorithm.
pub fn fingerprint(labels: &LabelSet) -> u64 {
    let mut h = FNV_OFFSET;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
    };
    for (name, value) in labels {
        feed(name.as_bytes());
        feed(&[SEPARATOR]);
        feed(value.as_bytes());
        feed(&[SEPARATOR]);
    }
    h
}

/// A fingerprint as upstream prints it (`%016x`).
pub fn fingerprint_string(fp: u64) -> String {
    format!("{fp:016x}")
}

/// Whether `name` is a valid (classic) Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// prometheus/common `LabelSet.String()`: `{a="x", b="y"}` with Go `strconv.Quote`d values.
pub fn label_set_string(labels: &LabelSet) -> String {
    let mut out = String::with_capacity(2 + labels.len() * 16);
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push('=');
        go_quote_into(&mut out, value);
    }
    out.push('}');
    out
}

pub use strata_template::go_quote_into;

/// Appends `s` as a JSON string exactly as Go's `encoding/json` (Go 1.19, HTML escaping on, as
/// Alertmanager 0.25's webhook encoder uses it) writes it.
pub fn go_json_string_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a string map as a Go JSON object (keys sorted, as Go marshals maps).
pub fn go_json_map_into(out: &mut String, map: &LabelSet) {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        go_json_string_into(out, k);
        out.push(':');
        go_json_string_into(out, v);
    }
    out.push('}');
}

/// Go's `regexp.QuoteMeta`, which upstream applies to the receiver name in template data.
pub fn regexp_quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fingerprints_match_alertmanager_0_25_captures() {
        // Values from the lab captures (webhook payloads of Alertmanager 0.25) and lab/fp.py.
        let node_down = ls(&[
            ("alertname", "NodeDown"),
            ("cluster", "c1"),
            ("severity", "critical"),
        ]);
        assert_eq!(
            fingerprint_string(fingerprint(&node_down)),
            "a20be2b7fa5b4816"
        );
        let latency = ls(&[
            ("alertname", "HighLatency"),
            ("team", "db"),
            ("cluster", "c2"),
            ("severity", "warning"),
        ]);
        assert_eq!(
            fingerprint_string(fingerprint(&latency)),
            "7f78b0c1c0dd7579"
        );
        assert_eq!(fingerprint(&LabelSet::new()), FNV_OFFSET);
    }

    #[test]
    fn label_set_behaves_like_a_sorted_map() {
        let mut l: LabelSet = [
            ("b".to_string(), "1".to_string()),
            ("a".to_string(), "x".to_string()),
            ("b".to_string(), "2".to_string()),
        ]
        .into();
        assert_eq!(l.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(l["b"], "2", "the last of equal names wins, as in a map");
        assert_eq!(l.0.capacity(), 2, "no spare capacity kept");
        assert_eq!(l.insert("c".into(), "3".into()), None);
        assert_eq!(l.insert("a".into(), "y".into()), Some("x".into()));
        assert_eq!(l.remove("b"), Some("2".into()));
        assert_eq!(l.get("b"), None);
        l.retain(|k, _| k != "c");
        assert_eq!(l.len(), 1);
        let map: BTreeMap<String, String> = [
            ("z".to_string(), "1".to_string()),
            ("m".to_string(), "2".to_string()),
        ]
        .into();
        let from_map = LabelSet::from(map.clone());
        assert_eq!(from_map.to_map(), map);
        let json = serde_json::to_string(&from_map).unwrap();
        assert_eq!(json, r#"{"m":"2","z":"1"}"#);
        assert_eq!(serde_json::from_str::<LabelSet>(&json).unwrap(), from_map);
        assert_eq!(format!("{from_map:?}"), r#"{"m": "2", "z": "1"}"#);
    }

    #[test]
    fn label_set_string_is_go_format() {
        let l = ls(&[("cluster", "c2"), ("alertname", "HighLatency")]);
        assert_eq!(
            label_set_string(&l),
            r#"{alertname="HighLatency", cluster="c2"}"#
        );
        assert_eq!(label_set_string(&LabelSet::new()), "{}");
        let l = ls(&[("a", "x\"y\\z\n\u{1}é\u{a0}")]);
        assert_eq!(label_set_string(&l), r#"{a="x\"y\\z\n\x01é\u00a0"}"#);
    }

    #[test]
    fn go_json_escapes_html_characters() {
        let mut s = String::new();
        go_json_string_into(&mut s, "a<b>&\"\u{8}\u{2028}é");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\u0008\u2028é""#);
    }

    #[test]
    fn label_names() {
        assert!(is_valid_label_name("alertname"));
        assert!(is_valid_label_name("_a1"));
        assert!(!is_valid_label_name("1a"));
        assert!(!is_valid_label_name("a-b"));
        assert!(!is_valid_label_name(""));
    }

    #[test]
    fn quote_meta() {
        assert_eq!(regexp_quote_meta("team.db(x)"), r"team\.db\(x\)");
    }
}
