//! Parsing of a whole `.test` script into commands (`load`, `clear`, `eval`), following the
//! upstream runner's line-oriented rules: lines are trimmed, `#` lines are blank, a blank line
//! ends a command's block, and the first word picks the command.

use crate::series::{parse_duration, parse_number, parse_series_desc, unquote, SeqValue};
use regex::Regex;
use std::sync::OnceLock;
use strata_model::Labels;

#[derive(Debug)]
pub enum Cmd {
    Load(Load),
    Clear,
    Eval(Box<Eval>),
}

#[derive(Debug)]
pub struct Load {
    pub interval_ms: i64,
    /// `load_with_nhcb`: classic histogram series are also converted to native histograms
    /// with custom buckets.
    pub with_nhcb: bool,
    /// In definition order; a later definition of the same series replaces an earlier one.
    pub series: Vec<(Labels, Vec<SeqValue>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectKind {
    Ordered,
    Fail,
    Warn,
    NoWarn,
    Info,
    NoInfo,
}

/// A message expectation: exact (`msg:`) or regex (`regex:`, or match-anything when bare).
#[derive(Debug, Clone)]
pub enum MsgMatch {
    Exact(String),
    Regex(Regex),
}

impl MsgMatch {
    pub fn matches(&self, s: &str) -> bool {
        match self {
            MsgMatch::Exact(m) => m == s,
            MsgMatch::Regex(r) => r.is_match(s),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            MsgMatch::Exact(m) => format!("message {m:?}"),
            MsgMatch::Regex(r) => format!("pattern {:?}", r.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExpectedSeries {
    /// 1-based position among the expected lines (for `expect ordered`).
    pub pos: usize,
    pub labels: Labels,
    pub vals: Vec<SeqValue>,
}

#[derive(Debug)]
pub struct Eval {
    /// 1-based line of the `eval` statement.
    pub line: usize,
    pub query: String,
    pub is_range: bool,
    /// Instant: the evaluation time. Range (or `expect range vector`): the range start.
    pub start: i64,
    /// Range end; `None` for an instant query without `expect range vector` (then any matrix
    /// point expectation is out of range, as upstream).
    pub end: Option<i64>,
    pub step: i64,
    /// Time of the instant query.
    pub eval_time: i64,
    /// Deprecated forms: `eval_fail`, `eval_warn`, `eval_info`, `eval_ordered`.
    pub legacy_fail: bool,
    pub legacy_warn: bool,
    pub legacy_info: bool,
    pub legacy_ordered: bool,
    pub expected_fail_message: Option<String>,
    pub expected_fail_regexp: Option<Regex>,
    pub expects: Vec<(ExpectKind, MsgMatch)>,
    pub expect_scalar: bool,
    pub scalar: Option<SeqValue>,
    /// Keyed by labels; a later line for the same labels replaces the earlier one.
    pub expected: Vec<ExpectedSeries>,
    pub expected_string: String,
    pub exclude_from_range_query: bool,
    /// The lines of the eval's block as written (expectations), for messages.
    pub block: Vec<String>,
}

impl Eval {
    pub fn is_ordered(&self) -> bool {
        self.legacy_ordered || self.has(ExpectKind::Ordered)
    }

    pub fn is_fail(&self) -> bool {
        self.legacy_fail || self.has(ExpectKind::Fail)
    }

    pub fn has(&self, k: ExpectKind) -> bool {
        self.expects.iter().any(|(kind, _)| *kind == k)
    }

    pub fn of(&self, k: ExpectKind) -> impl Iterator<Item = &MsgMatch> {
        self.expects
            .iter()
            .filter(move |(kind, _)| *kind == k)
            .map(|(_, m)| m)
    }

    pub fn expected_series(&self, l: &Labels) -> Option<&ExpectedSeries> {
        self.expected.iter().find(|e| &e.labels == l)
    }

    pub fn expects_histogram(&self) -> bool {
        self.block.iter().any(|l| l.contains("{{"))
    }

    fn expect_metric(&mut self, pos: usize, labels: Labels, vals: Vec<SeqValue>) {
        self.expect_scalar = false;
        if let Some(e) = self.expected.iter_mut().find(|e| e.labels == labels) {
            e.pos = pos;
            e.vals = vals;
        } else {
            self.expected.push(ExpectedSeries { pos, labels, vals });
        }
    }
}

struct Patterns {
    space: Regex,
    load: Regex,
    eval_instant: Regex,
    eval_range: Regex,
    expect: Regex,
    expect_range: Regex,
    match_any: Regex,
}

fn pats() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: &str| Regex::new(s).expect("static regex");
        Patterns {
            space: re(r"[\t ]+"),
            load: re(r"^load(?:_(with_nhcb))?\s+(.+?)$"),
            eval_instant: re(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$"),
            eval_range: re(r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$"),
            expect: re(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$"),
            expect_range: re(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$"),
            match_any: re(r"^.*$"),
        }
    })
}

const RANGE_VECTOR_PREFIX: &str = "expect range vector";
const EXPECT_STRING_PREFIX: &str = "expect string";

/// Parses a script. Errors name the 1-based line.
pub fn parse_script(input: &str) -> Result<Vec<(usize, Cmd)>, String> {
    let lines: Vec<String> = input
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let first = pats()
            .space
            .split(l)
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let start_line = i + 1;
        let cmd = if first == "clear" {
            Cmd::Clear
        } else if first.starts_with("load") {
            let (ni, c) = parse_load(&lines, i).map_err(|e| format!("line {}: {e}", start_line))?;
            i = ni;
            Cmd::Load(c)
        } else if first.starts_with("eval") {
            let (ni, c) = parse_eval(&lines, i)?;
            i = ni;
            Cmd::Eval(Box::new(c))
        } else {
            return Err(format!("line {start_line}: invalid command {l:?}"));
        };
        cmds.push((start_line, cmd));
        i += 1;
    }
    Ok(cmds)
}

fn is_st_line(l: &str) -> bool {
    match l.find([' ', '\t']) {
        Some(p) => l[..p].ends_with("@st"),
        None => false,
    }
}

/// Validates a start-timestamp line (`metric@st <offsets>` or `@st <offsets>`); the store has
/// no start timestamps, so the values are not kept. Returns the number of positions.
fn parse_st_line(l: &str) -> Result<usize, String> {
    let p = l
        .find([' ', '\t'])
        .ok_or("invalid @st line: missing value sequence")?;
    let metric = l[..p].trim_end_matches("@st");
    if !metric.is_empty() {
        crate::series::parse_metric(metric).map_err(|e| format!("invalid @st line metric: {e}"))?;
    }
    let mut n = 0usize;
    for item in l[p..].split_whitespace() {
        let count = |r: &str| {
            r.parse::<usize>()
                .map_err(|_| format!("invalid repeat count in @st item {item:?}"))
        };
        if item == "_" || item == "*" {
            n += 1;
        } else if let Some(r) = item.strip_prefix("_x") {
            n += count(r)?;
        } else if let Some(r) = item.strip_prefix("*x") {
            n += count(r)? + 1;
        } else {
            let (_, rest) = signed_duration_prefix(item)?;
            if rest.is_empty() {
                n += 1;
            } else if let Some(r) = rest.strip_prefix('x') {
                n += count(r)? + 1;
            } else if rest.starts_with(['+', '-']) {
                let (_, rest2) = signed_duration_prefix(&rest[1..])?;
                let r = rest2
                    .strip_prefix('x')
                    .ok_or_else(|| format!("expected 'x<count>' in @st item {item:?}"))?;
                n += count(r)? + 1;
            } else {
                return Err(format!("invalid @st item {item:?}"));
            }
        }
    }
    Ok(n)
}

fn signed_duration_prefix(s: &str) -> Result<(i64, &str), String> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == 0 {
        return Err(format!("expected digits in duration {s:?}"));
    }
    while i < b.len() && b[i].is_ascii_alphabetic() && b[i] != b'x' {
        i += 1;
    }
    let d = parse_duration(&body[..i])?;
    Ok((if neg { -d } else { d }, &body[i..]))
}

fn parse_load(lines: &[String], mut i: usize) -> Result<(usize, Load), String> {
    let caps = pats()
        .load
        .captures(&lines[i])
        .ok_or("invalid load command. (load[_with_nhcb] <step:duration>)")?;
    let with_nhcb = caps.get(1).is_some();
    let step = &caps[2];
    let interval_ms =
        parse_duration(step).map_err(|e| format!("invalid step definition {step:?}: {e}"))?;
    let mut load = Load {
        interval_ms,
        with_nhcb,
        series: Vec::new(),
    };
    let mut pending_st: Option<(usize, usize)> = None; // (line, positions)
    while i + 1 < lines.len() {
        i += 1;
        let l = &lines[i];
        if l.is_empty() {
            i -= 1;
            break;
        }
        if is_st_line(l) {
            if pending_st.is_some() {
                return Err(format!(
                    "line {}: @st line has no following sample line",
                    i + 1
                ));
            }
            let n = parse_st_line(l).map_err(|e| format!("line {}: {e}", i + 1))?;
            if !l.starts_with("@st") {
                pending_st = Some((i + 1, n));
            }
            continue;
        }
        let (labels, vals) = parse_series_desc(l).map_err(|e| format!("line {}: {e}", i + 1))?;
        if let Some((sl, n)) = pending_st.take() {
            if n != vals.len() {
                return Err(format!(
                    "line {sl}: @st line has {n} values but sample line has {}",
                    vals.len()
                ));
            }
        }
        if let Some(e) = load.series.iter_mut().find(|(l, _)| *l == labels) {
            e.1 = vals;
        } else {
            load.series.push((labels, vals));
        }
    }
    if let Some((sl, _)) = pending_st {
        return Err(format!("line {sl}: @st line has no following sample line"));
    }
    Ok((i, load))
}

fn parse_range_durations(from: &str, to: &str, step: &str) -> Result<(i64, i64, i64), String> {
    let f = parse_duration(from)
        .map_err(|e| format!("invalid start timestamp definition {from:?}: {e}"))?;
    let t =
        parse_duration(to).map_err(|e| format!("invalid end timestamp definition {to:?}: {e}"))?;
    if t < f {
        return Err(format!(
            "invalid test definition, end timestamp ({to}) is before start timestamp ({from})"
        ));
    }
    let s = parse_duration(step).map_err(|e| format!("invalid step definition {step:?}: {e}"))?;
    Ok((f, t, s))
}

fn parse_expect(l: &str) -> Result<(ExpectKind, MsgMatch), String> {
    let caps = pats().expect.captures(l.trim()).ok_or(
        "invalid expect statement, must match `expect <type> <match_type>: <string>` format",
    )?;
    let kind = match &caps[1] {
        "ordered" => ExpectKind::Ordered,
        "fail" => ExpectKind::Fail,
        "warn" => ExpectKind::Warn,
        "no_warn" => ExpectKind::NoWarn,
        "info" => ExpectKind::Info,
        _ => ExpectKind::NoInfo,
    };
    let m = match caps.get(2).map(|m| m.as_str()) {
        Some("msg") => MsgMatch::Exact(caps[3].trim().to_string()),
        Some(_) => {
            let p = caps[3].trim();
            MsgMatch::Regex(
                Regex::new(p).map_err(|_| format!("invalid regex {p} for {}", &caps[1]))?,
            )
        }
        None => MsgMatch::Regex(pats().match_any.clone()),
    };
    Ok((kind, m))
}

fn parse_eval(lines: &[String], mut i: usize) -> Result<(usize, Eval), String> {
    let line_no = i + 1;
    let l = &lines[i];
    let inst = pats().eval_instant.captures(l);
    let rng = pats().eval_range.captures(l);
    let err = |q: &str, e: String| format!("error in eval {q} (line {line_no}): {e}");
    let (modifier, query, is_range, start, end, step) = match (&inst, &rng) {
        (Some(c), _) => {
            let q = c[3].to_string();
            let at = c.get(2).map_or("", |m| m.as_str());
            let t = parse_duration(at).map_err(|e| err(&q, format!("invalid timestamp definition {at:?}: {e}")))?;
            (c.get(1).map(|m| m.as_str().to_string()), q, false, t, None, 0)
        }
        (None, Some(c)) => {
            let q = c[5].to_string();
            let (f, t, s) = parse_range_durations(&c[2], &c[3], &c[4]).map_err(|e| err(&q, e))?;
            (c.get(1).map(|m| m.as_str().to_string()), q, true, f, Some(t), s)
        }
        (None, None) => {
            return Err(format!(
                "line {line_no}: invalid evaluation command. Must be either 'eval[_fail|_warn|_ordered] instant [at <offset:duration>] <query>' or 'eval[_fail|_warn] range from <from> to <to> step <step> <query>'"
            ))
        }
    };
    let mut ev = Eval {
        line: line_no,
        query,
        is_range,
        start,
        end,
        step,
        eval_time: start,
        legacy_fail: modifier.as_deref() == Some("fail"),
        legacy_warn: modifier.as_deref() == Some("warn"),
        legacy_info: modifier.as_deref() == Some("info"),
        legacy_ordered: modifier.as_deref() == Some("ordered"),
        expected_fail_message: None,
        expected_fail_regexp: None,
        expects: Vec::new(),
        expect_scalar: false,
        scalar: None,
        expected: Vec::new(),
        expected_string: String::new(),
        exclude_from_range_query: false,
        block: Vec::new(),
    };
    let mut expect_range_vector = false;
    let mut j = 1usize;
    while i + 1 < lines.len() {
        i += 1;
        let d = &lines[i];
        if d.is_empty() {
            i -= 1;
            break;
        }
        ev.block.push(d.clone());
        let q = ev.query.clone();
        if ev.legacy_fail && d.starts_with("expected_fail_message") {
            ev.expected_fail_message = Some(d["expected_fail_message".len()..].trim().to_string());
            break;
        }
        if ev.legacy_fail && d.starts_with("expected_fail_regexp") {
            let p = d["expected_fail_regexp".len()..].trim();
            ev.expected_fail_regexp = Some(Regex::new(p).map_err(|e| {
                err(
                    &q,
                    format!("invalid regexp '{p}' for expected_fail_regexp: {e}"),
                )
            })?);
            break;
        }
        if d.starts_with(RANGE_VECTOR_PREFIX) {
            let c = pats()
                .expect_range
                .captures(d)
                .ok_or_else(|| err(&q, format!("invalid range vector definition {d:?}")))?;
            let (f, t, s) = parse_range_durations(&c[1], &c[2], &c[3]).map_err(|e| err(&q, e))?;
            expect_range_vector = true;
            ev.start = f;
            ev.end = Some(t);
            ev.step = s;
            ev.eval_time = t;
            ev.exclude_from_range_query = true;
            j += 1;
            continue;
        }
        if d.starts_with(EXPECT_STRING_PREFIX) {
            let bad = || {
                err(
                    &q,
                    "expected string literal not valid - a quoted string literal is required"
                        .into(),
                )
            };
            if d == EXPECT_STRING_PREFIX {
                return Err(bad());
            }
            let s = d.strip_prefix("expect string ").unwrap_or(d);
            if s.is_empty() {
                return Err(bad());
            }
            ev.expected_string = unquote(s).map_err(|_| {
                err(
                    &q,
                    "expected string literal not valid - check that the string is correctly quoted"
                        .into(),
                )
            })?;
            ev.exclude_from_range_query = true;
            j += 1;
            continue;
        }
        if d.split(' ').next() == Some("expect") {
            let (k, m) = parse_expect(d).map_err(|e| err(&q, e))?;
            ev.expects.push((k, m));
            let n = |k| ev.expects.iter().filter(|(x, _)| *x == k).count();
            if n(ExpectKind::Info) > 0 && n(ExpectKind::NoInfo) > 0 {
                return Err(err(
                    &q,
                    "invalid expect lines, info and no_info cannot be used together".into(),
                ));
            }
            if n(ExpectKind::Warn) > 0 && n(ExpectKind::NoWarn) > 0 {
                return Err(err(
                    &q,
                    "invalid expect lines, warn and no_warn cannot be used together".into(),
                ));
            }
            if n(ExpectKind::Fail) > 1 {
                return Err(err(
                    &q,
                    "invalid expect lines, multiple expect fail lines are not allowed".into(),
                ));
            }
            continue;
        }
        if let Ok(f) = parse_number(d) {
            ev.expect_scalar = true;
            ev.scalar = Some(SeqValue::Float(f));
            break;
        }
        let (labels, vals) = parse_series_desc(d).map_err(|e| format!("line {}: {e}", i + 1))?;
        if vals.len() > 1 && !ev.is_range && !expect_range_vector {
            return Err(err(
                &q,
                "expecting multiple values in instant evaluation not allowed. consider using 'expect range vector' directive to enable a range vector result for an instant query".into(),
            ));
        }
        ev.expect_metric(j, labels, vals);
        j += 1;
    }
    Ok((i, ev))
}
