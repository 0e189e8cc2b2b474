//! Size limits checked before a query is parsed and evaluated: its length and its nesting
//! depth. The parser and the evaluator recurse over the expression, and a request runs on a
//! thread with a small stack: a few thousand nested parentheses overflow it and abort the
//! whole process, and long operator chains take quadratic time to parse.
//!
//! Depth is the height of the parsed expression tree (every parenthesis, call, aggregation,
//! subquery, matrix selector and operator is a level). To keep the parser itself safe, an upper
//! bound of it is computed on the text first; a text whose bound exceeds [`PARSE_GUARD`] times
//! the limit is refused without parsing, one whose bound is within the limit is parsed without
//! measuring, and anything between is parsed and measured exactly.

use crate::EvalError;
use lrpar::{Lexeme, Lexer, NonStreamingLexer};
use promql_parser::parser::token::{T_ADD, T_COLON, T_LEFT_BRACKET, T_NUMBER, T_OFFSET, T_SUB};
use promql_parser::parser::{self, Expr};

/// Texts whose bound exceeds this many times the depth limit are refused unparsed.
pub const PARSE_GUARD: usize = 4;

/// Which limit a query exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryLimit {
    /// Its length in bytes.
    Bytes,
    /// Its nesting depth.
    Depth,
}

/// Parses `query` after checking it against `max_bytes` and `max_depth`.
pub fn parse_checked(query: &str, max_bytes: usize, max_depth: usize) -> Result<Expr, EvalError> {
    let too_large = |limit| EvalError::QueryTooLarge {
        limit,
        max: match limit {
            QueryLimit::Bytes => max_bytes,
            QueryLimit::Depth => max_depth,
        },
    };
    if query.len() > max_bytes {
        return Err(too_large(QueryLimit::Bytes));
    }
    let bound = depth_bound(query);
    if bound > max_depth.saturating_mul(PARSE_GUARD) {
        return Err(too_large(QueryLimit::Depth));
    }
    let expr = parse(query).map_err(EvalError::Parse)?;
    if bound > max_depth && depth(&expr) > max_depth {
        return Err(too_large(QueryLimit::Depth));
    }
    Ok(expr)
}

/// Longest duration a plain number may give, in seconds: Go's `time.Duration` range, as in
/// Prometheus (about 292 years).
pub const MAX_NUMBER_DURATION_SECS: f64 = 9_223_372_036.0;

/// `promql_parser::parser::parse`, after refusing numbers used as durations (`x[300]`,
/// `x[5m:30]`, `offset 1e3`) that are not a duration: promql-parser 0.11 converts them with
/// `Duration::from_secs_f64`, which panics on NaN, infinities and values past `u64::MAX`
/// seconds (`rate(x[Inf])` panicked the request; found by the `promql` fuzz target). The
/// parser's own lexer decides what is a number, so the check cannot disagree with the parse.
/// Every parse of untrusted PromQL goes through here.
pub fn parse(query: &str) -> Result<Expr, String> {
    check_number_durations(query)?;
    parser::parse(query)
}

fn check_number_durations(query: &str) -> Result<(), String> {
    // A text that does not lex is the parser's to report.
    let Ok(lexer) = parser::lex::lexer(query) else {
        return Ok(());
    };
    let mut prev: [Option<u16>; 2] = [None, None];
    for lexeme in lexer.iter().flatten() {
        let id = lexeme.tok_id();
        let duration_position = matches!(
            prev,
            [_, Some(T_LEFT_BRACKET | T_COLON | T_OFFSET)] | [Some(T_OFFSET), Some(T_ADD | T_SUB)]
        );
        if id == T_NUMBER && duration_position {
            let text = lexer.span_str(lexeme.span());
            if let Ok(secs) = promql_parser::util::parse_str_radix(text) {
                if !(0.0..=MAX_NUMBER_DURATION_SECS).contains(&secs) {
                    return Err(format!(
                        "duration out of range: {text} (a number of seconds must be between 0 and {MAX_NUMBER_DURATION_SECS})"
                    ));
                }
            }
        }
        prev = [prev[1], Some(id)];
    }
    Ok(())
}

/// The height of an expression tree. Recursive: call it only on trees whose text bound passed
/// the parse guard.
pub fn depth(e: &Expr) -> usize {
    1 + match e {
        Expr::Aggregate(a) => depth(&a.expr).max(a.param.as_deref().map_or(0, depth)),
        Expr::Unary(u) => depth(&u.expr),
        Expr::Binary(b) => depth(&b.lhs).max(depth(&b.rhs)),
        Expr::Paren(p) => depth(&p.expr),
        Expr::Subquery(s) => depth(&s.expr),
        Expr::MatrixSelector(_) => 1,
        Expr::Call(c) => c.args.args.iter().map(|a| depth(a)).max().unwrap_or(0),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::Extension(_) => 0,
    }
}

/// One bracket level of the text being scanned.
struct Frame {
    /// Operators directly at this level (a chain of n operators nests n deep).
    ops: usize,
    /// The largest bound of a bracket group inside.
    child: usize,
    /// Inside `{...}`: label matchers, whose `=`, `!=`, `=~` are not operators.
    braces: bool,
}

impl Frame {
    fn new(braces: bool) -> Self {
        Self {
            ops: 0,
            child: 0,
            braces,
        }
    }

    fn bound(&self) -> usize {
        1 + self.ops + self.child.max(1)
    }
}

/// An upper bound of the expression tree's height, from the text alone: each bracket group
/// counts the operators directly in it plus the deepest group inside. Strings and comments are
/// skipped; unbalanced text gets a bound too (the parser then reports it).
pub fn depth_bound(query: &str) -> usize {
    let b = query.as_bytes();
    let mut frames = vec![Frame::new(false)];
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let top = frames.len() - 1;
        match c {
            b'"' | b'\'' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    if b[i] == b'\\' && c != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                // A range or subquery wraps what precedes it: one more level here.
                if c == b'[' {
                    frames[top].ops += 1;
                }
                frames.push(Frame::new(c == b'{'));
            }
            // An unbalanced closer is left to the parser to report.
            b')' | b']' | b'}' if frames.len() > 1 => {
                let done = frames.pop().map_or(0, |f| f.bound());
                let parent = frames.len() - 1;
                frames[parent].child = frames[parent].child.max(done);
            }
            _ if frames[top].braces => {}
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' => frames[top].ops += 1,
            b'=' | b'!' | b'<' | b'>' => {
                frames[top].ops += 1;
                if b.get(i + 1) == Some(&b'=') {
                    i += 1;
                }
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i + 1 < b.len()
                    && (b[i + 1].is_ascii_alphanumeric() || matches!(b[i + 1], b'_' | b':'))
                {
                    i += 1;
                }
                let word = &query[start..=i];
                if ["and", "or", "unless", "atan2"]
                    .iter()
                    .any(|k| word.eq_ignore_ascii_case(k))
                {
                    frames[top].ops += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    // Unclosed groups fold into their parents.
    while frames.len() > 1 {
        let done = frames.pop().map_or(0, |f| f.bound());
        let parent = frames.len() - 1;
        frames[parent].child = frames[parent].child.max(done);
    }
    frames[0].bound()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_that_are_no_duration_are_refused_not_panicked_on() {
        // Each of these panicked inside promql-parser 0.11 (the fuzz target's finding first).
        for q in [
            r#"sum_over_time(metric{job="1"}[9223372036854775807100] @ 100 offset 50)"#,
            "x[5m:1e30]",
            "x offset 1e30",
            "x offset -Inf",
            "max_over_time(x[1e300:])",
        ] {
            let e = parse(q).expect_err(q);
            assert!(e.contains("duration out of range"), "{q}: {e}");
            assert!(matches!(
                parse_checked(q, 1 << 20, 100),
                Err(EvalError::Parse(_))
            ));
        }
        // Infinities and NaN do not lex inside brackets: an error, no panic.
        for q in ["rate(x[Inf])", "rate(x[NaN])"] {
            assert!(parse(q).is_err(), "{q}");
        }
        // Numbers as durations within range, and numbers elsewhere, still parse.
        for q in [
            "rate(x[300])",
            "x[5m:30]",
            "x offset 1e3",
            "x offset -60",
            "x > Inf",
            "x[9223372036]",
            "topk(1e30, x)",
        ] {
            assert!(parse(q).is_ok(), "{q}: {:?}", parse(q).err());
        }
    }

    #[test]
    fn the_text_bound_is_never_below_the_tree_height() {
        for q in [
            "up",
            "1",
            "-1",
            "up + up",
            "a + b + c * d - e / f ^ g",
            "sum by (job) (rate(http_requests_total{code=~\"5..\", job!=\"x\"}[5m]))",
            "max_over_time(deriv(rate(x[5m])[30m:1m])[1h:])",
            "(a or b) unless on(x) (c and d)",
            "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m]))) > bool 1",
            "topk(5, -(-(-x)))",
            "a == b != c >= d <= e > f < g",
            "x offset -5m @ end()",
            "label_replace(up, \"a(\", \"((\", \"b\", \"(.*\")",
            "a atan2 b atan2 c",
        ] {
            let e = parser::parse(q).unwrap_or_else(|err| panic!("{q}: {err}"));
            let (d, b) = (depth(&e), depth_bound(q));
            assert!(b >= d, "{q}: bound {b} < depth {d}");
        }
    }

    #[test]
    fn limits_refuse_before_parsing() {
        let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        // Unchecked, this text overflows a request thread's stack in the parser.
        let e = parse_checked(&deep, usize::MAX, 128).unwrap_err();
        assert!(
            matches!(
                e,
                EvalError::QueryTooLarge {
                    limit: QueryLimit::Depth,
                    max: 128
                }
            ),
            "{e}"
        );
        let chain = format!("1{}", "+1".repeat(20_000));
        assert!(matches!(
            parse_checked(&chain, usize::MAX, 128),
            Err(EvalError::QueryTooLarge {
                limit: QueryLimit::Depth,
                ..
            })
        ));
        let e = parse_checked("up", 1, 128).unwrap_err();
        assert!(matches!(
            e,
            EvalError::QueryTooLarge {
                limit: QueryLimit::Bytes,
                max: 1
            }
        ));
        // Exactly at the limit passes; one more level does not.
        let at = |n: usize| format!("{}x{}", "(".repeat(n), ")".repeat(n));
        assert!(parse_checked(&at(127), 1 << 20, 128).is_ok());
        assert!(parse_checked(&at(128), 1 << 20, 128).is_err());
        // Operators spread over several arguments: the bound is above the limit, the tree is
        // not, and the exact measure lets it through.
        let chain = |n: usize| format!("1{}", "+1".repeat(n));
        let wide = format!("clamp(up, {}, {})", chain(70), chain(70));
        let e = parser::parse(&wide).unwrap();
        assert!(depth_bound(&wide) > 128 && depth(&e) < 128);
        assert!(parse_checked(&wide, 1 << 20, 128).is_ok());
    }
}
