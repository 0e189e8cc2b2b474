//! Label matchers with Alertmanager 0.25's syntax (`name op value`, value optionally quoted,
//! anchored RE2-style regexes) and its canonical rendering, which is part of every group key.

use crate::labels::{is_valid_label_name, LabelSet};
use regex::Regex;
use std::cmp::Ordering;
use std::fmt;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
    pub fn is_regex(self) -> bool {
        matches!(self, MatchOp::Regex | MatchOp::NotRegex)
    }
    pub fn is_equal(self) -> bool {
        matches!(self, MatchOp::Equal | MatchOp::Regex)
    }
    pub fn from_flags(is_regex: bool, is_equal: bool) -> Self {
        match (is_regex, is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MatcherError {
    #[error("bad matcher format: {0}")]
    BadFormat(String),
    #[error("matcher value contains unescaped double quote: {0}")]
    UnescapedQuote(String),
    #[error("invalid label name {0:?}")]
    InvalidName(String),
    #[error("invalid regular expression {value:?}: {reason}")]
    InvalidRegex { value: String, reason: String },
}

/// One matcher. Equality on name, op and value (the compiled regex follows from those).
#[derive(Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Matcher({self})")
    }
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}
impl Eq for Matcher {}

impl PartialOrd for Matcher {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Upstream's `Matchers.Less`: by name, then value, then type.
impl Ord for Matcher {
    fn cmp(&self, o: &Self) -> Ordering {
        self.name
            .cmp(&o.name)
            .then_with(|| self.value.cmp(&o.value))
            .then_with(|| self.op.cmp(&o.op))
    }
}

impl Matcher {
    /// Builds a matcher; regexes are anchored (`^(?:value)$`) like upstream.
    pub fn new(op: MatchOp, name: &str, value: &str) -> Result<Self, MatcherError> {
        let re = if op.is_regex() {
            Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| MatcherError::InvalidRegex {
                    value: value.to_string(),
                    reason: e.to_string(),
                })?,
            )
        } else {
            None
        };
        Ok(Self {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Matches a label set; a missing label is the empty string.
    pub fn matches_labels(&self, labels: &LabelSet) -> bool {
        self.matches(labels.get(&self.name).map(String::as_str).unwrap_or(""))
    }
}

/// `name<op>"value"` with OpenMetrics escaping of the value (`\`, `"`, newline).
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op.as_str())?;
        for c in self.value.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// A conjunction of matchers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.0.iter().all(|m| m.matches_labels(labels))
    }
    pub fn sort(&mut self) {
        self.0.sort();
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `{a="b",c=~"d"}`: no space after the comma, as upstream.
impl fmt::Display for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

fn matcher_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // Upstream 0.25's classic form: name, operator, rest of the token as the value.
        Regex::new(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*((?s).*?)\s*$")
            .unwrap_or_else(|e| panic!("static matcher regex: {e}"))
    })
}

/// Parses one matcher (`name="value"`, `name=~value`, …).
pub fn parse_matcher(s: &str) -> Result<Matcher, MatcherError> {
    let caps = matcher_re()
        .captures(s)
        .ok_or_else(|| MatcherError::BadFormat(s.to_string()))?;
    let name = &caps[1];
    let op = match &caps[2] {
        "=" => MatchOp::Equal,
        "!=" => MatchOp::NotEqual,
        "=~" => MatchOp::Regex,
        _ => MatchOp::NotRegex,
    };
    let raw_full = &caps[3];
    let (raw, mut expect_quote) = match raw_full.strip_prefix('"') {
        Some(r) => (r, true),
        None => (raw_full, false),
    };
    let mut value = String::with_capacity(raw.len());
    let mut escaped = false;
    let last = raw.len().saturating_sub(1);
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                other => {
                    value.push('\\');
                    value.push(other);
                }
            }
            continue;
        }
        match c {
            '\\' if i < last => escaped = true,
            '\\' => value.push('\\'),
            '"' => {
                if !expect_quote || i < last {
                    return Err(MatcherError::UnescapedQuote(raw_full.to_string()));
                }
                expect_quote = false;
            }
            c => value.push(c),
        }
    }
    if expect_quote {
        return Err(MatcherError::UnescapedQuote(raw_full.to_string()));
    }
    if !is_valid_label_name(name) && !name.contains(':') {
        return Err(MatcherError::InvalidName(name.to_string()));
    }
    Matcher::new(op, name, &value)
}

/// Parses a matcher list (`{a="b", c=~"d"}`, braces optional; commas inside quotes kept).
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, MatcherError> {
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut in_quotes, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            ',' if !in_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            ',' => {}
            '"' => {
                if escaped {
                    escaped = false;
                } else {
                    in_quotes = !in_quotes;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    let tail = token.trim();
    if !tail.is_empty() {
        tokens.push(tail.to_string());
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_classic_and_quoted() {
        let m = parse_matcher(r#"team="db""#).unwrap();
        assert_eq!(
            (m.name.as_str(), m.op, m.value.as_str()),
            ("team", MatchOp::Equal, "db")
        );
        let m = parse_matcher("team=~db|web").unwrap();
        assert_eq!(m.op, MatchOp::Regex);
        assert_eq!(m.value, "db|web");
        let m = parse_matcher(r#" a != "x\"y\\z\n" "#).unwrap();
        assert_eq!(m.value, "x\"y\\z\n");
        assert_eq!(m.to_string(), r#"a!="x\"y\\z\n""#);
        assert!(matches!(
            parse_matcher("{foo"),
            Err(MatcherError::BadFormat(_))
        ));
        assert!(matches!(
            parse_matcher(r#"a="b"c""#),
            Err(MatcherError::UnescapedQuote(_))
        ));
        assert!(matches!(
            parse_matcher(r#"a="b"#),
            Err(MatcherError::UnescapedQuote(_))
        ));
        assert!(matches!(
            parse_matcher("a=~(("),
            Err(MatcherError::InvalidRegex { .. })
        ));
    }

    #[test]
    fn parses_lists() {
        let ms = parse_matchers(r#"{a="1,2", b=~"x|y",}"#).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].value, "1,2");
        let mut ms = Matchers(parse_matchers(r#"team=~"db|web", env!="dev""#).unwrap());
        ms.sort();
        assert_eq!(ms.to_string(), r#"{env!="dev",team=~"db|web"}"#);
    }

    #[test]
    fn anchored_regex_and_missing_labels() {
        let m = parse_matcher("a=~b.*").unwrap();
        assert!(m.matches("bcd"));
        assert!(!m.matches("abc"));
        let ls: LabelSet = [("x".to_string(), "1".to_string())].into();
        assert!(parse_matcher(r#"a="""#).unwrap().matches_labels(&ls));
        assert!(parse_matcher(r#"a!="1""#).unwrap().matches_labels(&ls));
    }
}
