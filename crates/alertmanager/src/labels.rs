//! Label sets, Alertmanager's label-set fingerprint and the Go string renderings that end up in
//! group keys and webhook payloads.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A label set; a `BTreeMap` keeps names sorted, which is the order every upstream rendering uses.
pub type LabelSet = BTreeMap<String, String>;

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

/// Go's `strconv.Quote`: double-quoted, with Go escapes for `"`, `\`, control characters and
/// characters Go does not consider printable.
pub fn go_quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_ascii() || go_is_print(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// An approximation of Go's `unicode.IsPrint` for non-ASCII characters: everything except
/// control, format and separator characters other than the ASCII space. Exact for the characters
/// label values contain in practice; a rare unassigned code point may differ.
fn go_is_print(c: char) -> bool {
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'))
}

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
