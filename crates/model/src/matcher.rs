//! Label matchers with Prometheus semantics: regexes are fully anchored and `.` matches newlines;
//! a label that is absent behaves as if its value were the empty string.

use crate::ModelError;
use regex::Regex;

/// The four PromQL matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }
}

/// One `name op "value"` matcher, with its regex compiled once.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
    /// For regexes that are a plain alternation of literals (`a|b|c`), the literals: the index
    /// can then look them up instead of scanning every value.
    literals: Option<Vec<String>>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    /// Builds a matcher, compiling the regex for `=~`/`!~`.
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, ModelError> {
        let name = name.into();
        let value = value.into();
        let (regex, literals) = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                let re = Regex::new(&format!("^(?s:{value})$")).map_err(|e| {
                    ModelError::InvalidRegex {
                        label: name.clone(),
                        pattern: value.clone(),
                        source: Box::new(e),
                    }
                })?;
                (Some(re), literal_alternation(&value))
            }
            _ => (None, None),
        };
        Ok(Self {
            name,
            op,
            value,
            regex,
            literals,
        })
    }

    /// `name="value"`; never fails.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            regex: None,
            literals: None,
        }
    }

    /// Whether a label value (empty string for an absent label) satisfies the matcher.
    #[inline]
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::RegexMatch => self.regex_matches(v),
            MatchOp::RegexNoMatch => !self.regex_matches(v),
        }
    }

    fn regex_matches(&self, v: &str) -> bool {
        if let Some(lits) = &self.literals {
            return lits.iter().any(|l| l == v);
        }
        self.regex.as_ref().is_some_and(|r| r.is_match(v))
    }

    /// Whether the empty string matches: such a matcher also selects series lacking the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=` and literal-alternation `=~`, the exact set of values that match.
    pub fn set_matches(&self) -> Option<Vec<&str>> {
        match self.op {
            MatchOp::Equal => Some(vec![self.value.as_str()]),
            MatchOp::RegexMatch => self
                .literals
                .as_ref()
                .map(|l| l.iter().map(String::as_str).collect()),
            _ => None,
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// `a|b|c` where every branch is a plain literal (no metacharacters) → the literals.
fn literal_alternation(pattern: &str) -> Option<Vec<String>> {
    const META: &[char] = &[
        '.', '+', '*', '?', '(', ')', '[', ']', '{', '}', '^', '$', '\\',
    ];
    if pattern.contains(META) {
        return None;
    }
    Some(pattern.split('|').map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: MatchOp, v: &str) -> Matcher {
        Matcher::new(op, "l", v).unwrap()
    }

    #[test]
    fn regex_is_anchored() {
        let re = m(MatchOp::RegexMatch, "foo");
        assert!(re.matches("foo"));
        assert!(!re.matches("foobar"));
        assert!(!re.matches("xfoo"));
        let re = m(MatchOp::RegexMatch, "fo+|bar");
        assert!(re.matches("fooo"));
        assert!(re.matches("bar"));
        assert!(!re.matches("foobar"));
    }

    #[test]
    fn dot_matches_newline() {
        assert!(m(MatchOp::RegexMatch, "a.b").matches("a\nb"));
    }

    #[test]
    fn empty_value_semantics() {
        assert!(m(MatchOp::Equal, "").matches_empty());
        assert!(!m(MatchOp::NotEqual, "").matches_empty());
        assert!(m(MatchOp::RegexMatch, ".*").matches_empty());
        assert!(!m(MatchOp::RegexMatch, ".+").matches_empty());
        assert!(m(MatchOp::RegexNoMatch, ".+").matches_empty());
        assert!(m(MatchOp::NotEqual, "x").matches_empty());
    }

    #[test]
    fn literal_alternation_fast_path_agrees_with_regex() {
        let fast = m(MatchOp::RegexMatch, "a|bc|");
        assert_eq!(fast.set_matches().unwrap(), vec!["a", "bc", ""]);
        let re = Regex::new("^(?s:a|bc|)$").unwrap();
        for v in ["a", "bc", "", "b", "abc", "a|bc"] {
            assert_eq!(fast.matches(v), re.is_match(v), "value {v:?}");
        }
        assert!(m(MatchOp::RegexMatch, "a.*").set_matches().is_none());
    }

    #[test]
    fn bad_regex_is_an_error_naming_the_label() {
        let e = Matcher::new(MatchOp::RegexMatch, "job", "(").unwrap_err();
        assert!(e.to_string().contains("job"), "{e}");
    }
}
