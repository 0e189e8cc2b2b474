//! Notification templates: the subset of Go's `text/template` that Alertmanager templates use,
//! Alertmanager's data model (`.Receiver`, `.Status`, `.Alerts` with `.Firing`/`.Resolved`,
//! label sets with `.SortedPairs`/`.Names`/`.Values`/`.Remove`, ...) and functions, and
//! Strata's own default templates under the names upstream's notifiers look up.
//!
//! Why not the `gtmpl` crate (0.7.1, passively maintained): its values cannot carry methods
//! next to their data: `.Alerts` must be a list for `range`/`len` and answer `.Firing`, but
//! gtmpl resolves fields only on maps and objects; a map with a `.SortedPairs` entry would show
//! that entry to `range`; methods taking arguments (`.CommonLabels.Remove .GroupLabels.Names`)
//! are refused; `range` over a map walks a `HashMap` in arbitrary order where Go sorts the
//! keys (notifications would change from one send to the next); and its parse tree is private,
//! so another executor cannot be put behind its parser.

use crate::alert::Alert;
use crate::labels::{fingerprint_string, regexp_quote_meta, LabelSet};
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A template that does not parse or load.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: line {line}: {message}")]
    Parse {
        name: String,
        line: usize,
        message: String,
    },
    #[error("invalid template glob {pattern:?}: {source}")]
    Glob {
        pattern: String,
        #[source]
        source: glob::PatternError,
    },
    #[error("cannot read template file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list template files of {pattern:?}: {source}")]
    List {
        pattern: String,
        #[source]
        source: glob::GlobError,
    },
}

/// A template that fails while rendering a notification.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template: no template {0:?} defined")]
    Undefined(String),
    #[error("template {template}: {message}")]
    Exec { template: String, message: String },
    #[error(transparent)]
    Parse(#[from] TemplateError),
    #[error("template {0}: nested too deeply (recursion?)")]
    TooDeep(String),
}

// ---------------------------------------------------------------------------------------------
// Values

/// A value inside a template: Go's dynamic values restricted to what the data model holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    /// Alertmanager's `Alerts`: a list with the `Firing` and `Resolved` methods.
    Alerts(Vec<Value>),
    /// Alertmanager's `KV` (labels, annotations): a string map with `SortedPairs`, `Names`,
    /// `Values` and `Remove`.
    Kv(BTreeMap<String, String>),
    /// `Pairs`, the result of `SortedPairs`: a list of `{Name, Value}` with `Names`/`Values`.
    Pairs(Vec<(String, String)>),
    /// A struct: fields by name.
    Struct(BTreeMap<&'static str, Value>),
}

impl Value {
    fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(v) | Value::Alerts(v) => !v.is_empty(),
            Value::Kv(m) => !m.is_empty(),
            Value::Pairs(p) => !p.is_empty(),
            Value::Struct(_) => true,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "slice",
            Value::Alerts(_) => "template.Alerts",
            Value::Kv(_) => "template.KV",
            Value::Pairs(_) => "template.Pairs",
            Value::Struct(_) => "struct",
        }
    }

    fn pair(name: &str, value: &str) -> Value {
        Value::Struct(BTreeMap::from([
            ("Name", Value::Str(name.to_string())),
            ("Value", Value::Str(value.to_string())),
        ]))
    }

    /// Items for `range`, `index` and `len`: (key, value).
    fn items(&self) -> Option<Vec<(Value, Value)>> {
        let indexed = |v: &[Value]| {
            v.iter()
                .enumerate()
                .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                .collect()
        };
        match self {
            Value::List(v) | Value::Alerts(v) => Some(indexed(v)),
            Value::Pairs(p) => Some(
                p.iter()
                    .enumerate()
                    .map(|(i, (n, v))| (Value::Int(i as i64), Value::pair(n, v)))
                    .collect(),
            ),
            // Go ranges over maps in key order; BTreeMap iterates in that order.
            Value::Kv(m) => Some(
                m.iter()
                    .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone())))
                    .collect(),
            ),
            Value::Nil => Some(Vec::new()),
            _ => None,
        }
    }
}

/// Go's `fmt` `%v` rendering, which is what `{{ . }}` prints.
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Nil => f.write_str("<no value>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::List(v) | Value::Alerts(v) => {
                f.write_str("[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
            Value::Kv(m) => {
                f.write_str("map[")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("]")
            }
            Value::Pairs(p) => {
                f.write_str("[")?;
                for (i, (k, v)) in p.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{{{k} {v}}}")?;
                }
                f.write_str("]")
            }
            Value::Struct(m) => {
                f.write_str("{")?;
                for (i, v) in m.values().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Go's `time.Time.String()` form, which templates print for `.StartsAt`/`.EndsAt`.
fn go_time_string(t: &Timestamp) -> String {
    let base = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    format!("{base}{frac} +0000 UTC")
}

/// Alertmanager's template data for one notification.
pub fn data(
    receiver: &str,
    group_labels: &LabelSet,
    external_url: &str,
    alerts: &[Alert],
    now: Timestamp,
) -> Value {
    let mut list = Vec::with_capacity(alerts.len());
    for a in alerts {
        let resolved = a.resolved_at(now);
        list.push(Value::Struct(BTreeMap::from([
            (
                "Status",
                Value::Str(if resolved { "resolved" } else { "firing" }.into()),
            ),
            ("Labels", Value::Kv(a.labels.to_map())),
            ("Annotations", Value::Kv(a.annotations.to_map())),
            ("StartsAt", Value::Str(go_time_string(&a.starts_at))),
            (
                "EndsAt",
                Value::Str(go_time_string(&if resolved {
                    a.ends_at
                } else {
                    crate::time::zero_time()
                })),
            ),
            ("GeneratorURL", Value::Str(a.generator_url.clone())),
            (
                "Fingerprint",
                Value::Str(fingerprint_string(a.fingerprint())),
            ),
        ])));
    }
    let all_resolved = alerts.iter().all(|a| a.resolved_at(now));
    let (mut common_labels, mut common_annotations) = match alerts.first() {
        Some(a) => (LabelSet::clone(&a.labels), LabelSet::clone(&a.annotations)),
        None => (LabelSet::new(), LabelSet::new()),
    };
    for a in alerts.iter().skip(1) {
        common_labels.retain(|k, v| a.labels.get(k) == Some(v));
        common_annotations.retain(|k, v| a.annotations.get(k) == Some(v));
    }
    Value::Struct(BTreeMap::from([
        // Upstream quotes the receiver name as a regular expression in the data model.
        ("Receiver", Value::Str(regexp_quote_meta(receiver))),
        (
            "Status",
            Value::Str(if all_resolved { "resolved" } else { "firing" }.into()),
        ),
        ("Alerts", Value::Alerts(list)),
        ("GroupLabels", Value::Kv(group_labels.to_map())),
        ("CommonLabels", Value::Kv(common_labels.to_map())),
        ("CommonAnnotations", Value::Kv(common_annotations.to_map())),
        ("ExternalURL", Value::Str(external_url.to_string())),
    ]))
}

// ---------------------------------------------------------------------------------------------
// Lexer and parser

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `.A.B` (empty for `.`).
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone has the name "$").
    Var(String, Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    LParen,
    /// `)` with the fields that follow it: `(...).A.B`.
    RParen(Vec<String>),
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
enum Arg {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Lit(Value),
    Func(String),
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Command {
    args: Vec<Arg>,
}

#[derive(Debug, Clone, Default)]
struct Pipeline {
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Template(String, Option<Pipeline>),
}

/// One `{{ }}` action or a text run, with its line for messages.
enum Piece {
    Text(String),
    Action(String, usize),
}

/// The templates a text defines, by name.
type Defines = Vec<(String, Vec<Node>)>;

struct Parser<'a> {
    name: &'a str,
    pieces: Vec<Piece>,
    pos: usize,
    defines: Defines,
}

fn split_pieces(name: &str, text: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut line = 1;
    let mut trim_next_text = false;
    while let Some(start) = rest.find("{{") {
        let mut before = &rest[..start];
        if trim_next_text {
            before = before.trim_start();
        }
        let after_open = &rest[start + 2..];
        let trim_left = after_open.starts_with("- ")
            || after_open.starts_with("-\t")
            || after_open.starts_with("-\n");
        if trim_left {
            before = before.trim_end();
        }
        line += rest[..start].matches('\n').count();
        if !before.is_empty() {
            out.push(Piece::Text(before.to_string()));
        }
        let body_start = if trim_left { 1 } else { 0 };
        let inner = &after_open[body_start..];
        // A comment may contain "}}".
        let end = if inner.trim_start().starts_with("/*") {
            inner
                .find("*/")
                .and_then(|c| inner[c..].find("}}").map(|e| c + e))
        } else {
            find_close(inner)
        }
        .ok_or_else(|| TemplateError::Parse {
            name: name.to_string(),
            line,
            message: "unclosed action".into(),
        })?;
        let mut body = &inner[..end];
        trim_next_text = body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-");
        if trim_next_text {
            body = &body[..body.len() - 1];
        }
        let body_trim = body.trim();
        if !(body_trim.starts_with("/*") && body_trim.ends_with("*/")) {
            out.push(Piece::Action(body.to_string(), line));
        }
        line += body.matches('\n').count();
        rest = &inner[end + 2..];
    }
    let mut tail = rest;
    if trim_next_text {
        tail = tail.trim_start();
    }
    if !tail.is_empty() {
        out.push(Piece::Text(tail.to_string()));
    }
    Ok(out)
}

/// The `}}` closing an action, skipping over quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'\'' => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let ident_char = |c: char| c.is_alphanumeric() || c == '_';
    let fields = |i: &mut usize| -> Vec<String> {
        let mut out = Vec::new();
        while *i < chars.len() && chars[*i] == '.' {
            let start = *i + 1;
            let mut j = start;
            while j < chars.len() && ident_char(chars[j]) {
                j += 1;
            }
            if j == start {
                break;
            }
            out.push(chars[start..j].iter().collect());
            *i = j;
        }
        out
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                i += 1;
                toks.push(Tok::RParen(fields(&mut i)));
            }
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            '.' => {
                if chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
                    let (t, n) = number(&chars[i..])?;
                    toks.push(t);
                    i += n;
                } else {
                    let f = fields(&mut i);
                    if f.is_empty() {
                        i += 1;
                    }
                    toks.push(Tok::Field(f));
                }
            }
            '$' => {
                let start = i;
                i += 1;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                toks.push(Tok::Var(name, fields(&mut i)));
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("unterminated quoted string".into());
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let e = chars.get(i).copied().ok_or("unterminated quoted string")?;
                            i += 1;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '\\' => '\\',
                                '"' => '"',
                                '\'' => '\'',
                                other => return Err(format!("unknown escape sequence \\{other}")),
                            });
                        }
                        c => s.push(c),
                    }
                }
                toks.push(Tok::Str(s));
            }
            '`' => {
                let start = i + 1;
                let end = chars[start..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or("unterminated raw quoted string")?;
                toks.push(Tok::Str(chars[start..start + end].iter().collect()));
                i = start + end + 1;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let (t, n) = number(&chars[i..])?;
                toks.push(t);
                i += n;
            }
            c if ident_char(c) => {
                let start = i;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                toks.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected {other:?} in action")),
        }
    }
    Ok(toks)
}

fn number(chars: &[char]) -> Result<(Tok, usize), String> {
    let n = chars
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_')))
        .unwrap_or(chars.len());
    let s: String = chars[..n].iter().collect();
    if let Ok(i) = s.parse::<i64>() {
        return Ok((Tok::Int(i), n));
    }
    if let Some(h) = s.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(h, 16) {
            return Ok((Tok::Int(i), n));
        }
    }
    s.parse::<f64>()
        .map(|f| (Tok::Float(f), n))
        .map_err(|_| format!("bad number syntax: {s:?}"))
}

fn parse_pipeline(toks: &[Tok], allow_decl: bool) -> Result<Pipeline, String> {
    let mut p = Pipeline::default();
    let mut rest = toks;
    if allow_decl {
        // `$x :=`, `$x =`, or `$k, $v :=`.
        let decl_end = rest
            .iter()
            .position(|t| matches!(t, Tok::Declare | Tok::Assign));
        if let Some(e) = decl_end {
            let names: Vec<&Tok> = rest[..e].iter().filter(|t| **t != Tok::Comma).collect();
            if !names.is_empty()
                && names
                    .iter()
                    .all(|t| matches!(t, Tok::Var(_, f) if f.is_empty()))
            {
                p.decl = names
                    .iter()
                    .filter_map(|t| match t {
                        Tok::Var(n, _) => Some(n.clone()),
                        _ => None,
                    })
                    .collect();
                p.assign = rest[e] == Tok::Assign;
                rest = &rest[e + 1..];
            }
        }
    }
    let mut i = 0;
    let mut cmd = Command { args: Vec::new() };
    while i < rest.len() {
        match &rest[i] {
            Tok::Pipe => {
                if cmd.args.is_empty() {
                    return Err("missing command before |".into());
                }
                p.cmds
                    .push(std::mem::replace(&mut cmd, Command { args: Vec::new() }));
                i += 1;
                continue;
            }
            Tok::LParen => {
                let mut depth = 0;
                let mut j = i;
                let close = loop {
                    match rest.get(j) {
                        Some(Tok::LParen) => depth += 1,
                        Some(Tok::RParen(_)) => {
                            depth -= 1;
                            if depth == 0 {
                                break j;
                            }
                        }
                        Some(_) => {}
                        None => return Err("unclosed left paren".into()),
                    }
                    j += 1;
                };
                let Tok::RParen(fields) = &rest[close] else {
                    return Err("unclosed left paren".into());
                };
                let inner = parse_pipeline(&rest[i + 1..close], false)?;
                cmd.args.push(Arg::Sub(Box::new(inner), fields.clone()));
                i = close + 1;
                continue;
            }
            Tok::RParen(_) => return Err("unexpected right paren".into()),
            Tok::Field(f) => cmd.args.push(Arg::Field(f.clone())),
            Tok::Var(n, f) => cmd.args.push(Arg::Var(n.clone(), f.clone())),
            Tok::Str(s) => cmd.args.push(Arg::Lit(Value::Str(s.clone()))),
            Tok::Int(n) => cmd.args.push(Arg::Lit(Value::Int(*n))),
            Tok::Float(n) => cmd.args.push(Arg::Lit(Value::Float(*n))),
            Tok::Ident(id) => cmd.args.push(match id.as_str() {
                "true" => Arg::Lit(Value::Bool(true)),
                "false" => Arg::Lit(Value::Bool(false)),
                "nil" => Arg::Lit(Value::Nil),
                // Go refuses unknown functions when parsing, so a bad file fails at load.
                f if FUNCTIONS.contains(&f) => Arg::Func(id.clone()),
                f => return Err(format!("function {f:?} not defined")),
            }),
            Tok::Declare | Tok::Assign | Tok::Comma => {
                return Err("unexpected declaration in command".into())
            }
        }
        i += 1;
    }
    if cmd.args.is_empty() {
        return Err("missing value for command".into());
    }
    p.cmds.push(cmd);
    Ok(p)
}

/// What ends a list: `{{end}}`, `{{else}}`, `{{else if ...}}`, or the end of the text.
enum Stop {
    End,
    Else,
    ElseIf(Pipeline),
    Eof,
}

impl<'a> Parser<'a> {
    fn err(&self, line: usize, message: impl Into<String>) -> TemplateError {
        TemplateError::Parse {
            name: self.name.to_string(),
            line,
            message: message.into(),
        }
    }

    fn list(&mut self) -> Result<(Vec<Node>, Stop, usize), TemplateError> {
        let mut nodes = Vec::new();
        while self.pos < self.pieces.len() {
            let idx = self.pos;
            self.pos += 1;
            let (body, line) = match &self.pieces[idx] {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Piece::Action(b, l) => (b.trim().to_string(), *l),
            };
            let (keyword, rest) = match body.split_once(char::is_whitespace) {
                Some((k, r)) => (k, r.trim()),
                None => (body.as_str(), ""),
            };
            let toks = |s: &str| lex(s).map_err(|m| self.err(line, m));
            match keyword {
                "end" => return Ok((nodes, Stop::End, line)),
                "else" => {
                    if let Some(cond) = rest.strip_prefix("if") {
                        let p =
                            parse_pipeline(&toks(cond)?, true).map_err(|m| self.err(line, m))?;
                        return Ok((nodes, Stop::ElseIf(p), line));
                    }
                    return Ok((nodes, Stop::Else, line));
                }
                "if" | "range" | "with" => {
                    let pipe = parse_pipeline(&toks(rest)?, true).map_err(|m| self.err(line, m))?;
                    let node = self.branch(keyword, pipe, line)?;
                    nodes.push(node);
                }
                "define" | "block" => {
                    let t = toks(rest)?;
                    let Some(Tok::Str(name)) = t.first().cloned() else {
                        return Err(self.err(line, format!("{keyword} needs a quoted name")));
                    };
                    let (body, stop, _) = self.list()?;
                    if !matches!(stop, Stop::End) {
                        return Err(self.err(line, format!("unterminated {keyword} {name:?}")));
                    }
                    self.defines.push((name.clone(), body));
                    if keyword == "block" {
                        let pipe = if t.len() > 1 {
                            Some(parse_pipeline(&t[1..], false).map_err(|m| self.err(line, m))?)
                        } else {
                            None
                        };
                        nodes.push(Node::Template(name, pipe));
                    }
                }
                "template" => {
                    let t = toks(rest)?;
                    let Some(Tok::Str(name)) = t.first().cloned() else {
                        return Err(self.err(line, "template needs a quoted name"));
                    };
                    let pipe = if t.len() > 1 {
                        Some(parse_pipeline(&t[1..], false).map_err(|m| self.err(line, m))?)
                    } else {
                        None
                    };
                    nodes.push(Node::Template(name, pipe));
                }
                _ => {
                    let p = parse_pipeline(&toks(&body)?, true).map_err(|m| self.err(line, m))?;
                    nodes.push(Node::Action(p));
                }
            }
        }
        Ok((nodes, Stop::Eof, 0))
    }

    fn branch(
        &mut self,
        keyword: &str,
        pipe: Pipeline,
        line: usize,
    ) -> Result<Node, TemplateError> {
        let (then, stop, _) = self.list()?;
        let otherwise = match stop {
            Stop::End => Vec::new(),
            Stop::Else => {
                let (e, stop, l) = self.list()?;
                if !matches!(stop, Stop::End) {
                    return Err(self.err(l.max(line), format!("unexpected else in {keyword}")));
                }
                e
            }
            // `else if` nests an `if` that shares the outer `end`.
            Stop::ElseIf(p) => vec![self.branch("if", p, line)?],
            Stop::Eof => return Err(self.err(line, format!("unexpected EOF in {keyword}"))),
        };
        Ok(match keyword {
            "if" => Node::If(pipe, then, otherwise),
            "range" => Node::Range(pipe, then, otherwise),
            _ => Node::With(pipe, then, otherwise),
        })
    }
}

/// Parses `text`: its body and the templates it defines.
fn parse(name: &str, text: &str) -> Result<(Vec<Node>, Defines), TemplateError> {
    let mut p = Parser {
        name,
        pieces: split_pieces(name, text)?,
        pos: 0,
        defines: Vec::new(),
    };
    let (body, stop, line) = p.list()?;
    match stop {
        Stop::Eof => Ok((body, p.defines)),
        Stop::End => Err(p.err(line, "unexpected {{end}}")),
        Stop::Else | Stop::ElseIf(_) => Err(p.err(line, "unexpected {{else}}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Execution

const MAX_DEPTH: usize = 100;

struct Exec<'a> {
    set: &'a Templates,
    name: String,
    vars: Vec<(String, Value)>,
    depth: usize,
}

impl Exec<'_> {
    fn err(&self, message: impl Into<String>) -> RenderError {
        RenderError::Exec {
            template: self.name.clone(),
            message: message.into(),
        }
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), RenderError> {
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        let _ = write!(out, "{v}");
                    }
                }
                Node::If(p, then, otherwise) | Node::With(p, then, otherwise) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    let with = matches!(n, Node::With(..));
                    if v.truth() {
                        self.walk(then, if with { &v } else { dot }, out)?;
                    } else {
                        self.walk(otherwise, dot, out)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(p, body, otherwise) => {
                    let mark = self.vars.len();
                    // The declared variables receive each element, not the collection.
                    let mut bare = p.clone();
                    let decl = std::mem::take(&mut bare.decl);
                    let v = self.pipeline(&bare, dot)?;
                    let items = v
                        .items()
                        .ok_or_else(|| self.err(format!("range can't iterate over {v}")))?;
                    if items.is_empty() {
                        self.walk(otherwise, dot, out)?;
                    }
                    for (k, item) in items {
                        let inner = self.vars.len();
                        match decl.as_slice() {
                            [] => {}
                            [v] => self.vars.push((v.clone(), item.clone())),
                            [kn, vn, ..] => {
                                self.vars.push((kn.clone(), k));
                                self.vars.push((vn.clone(), item.clone()));
                            }
                        }
                        self.walk(body, &item, out)?;
                        self.vars.truncate(inner);
                    }
                    self.vars.truncate(mark);
                }
                Node::Template(name, p) => {
                    let arg = match p {
                        Some(p) => self.pipeline(p, dot)?,
                        None => Value::Nil,
                    };
                    out.push_str(&self.set.run(name, &arg, self.depth + 1)?);
                }
            }
        }
        Ok(())
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, RenderError> {
        let mut last: Option<Value> = None;
        for c in &p.cmds {
            last = Some(self.command(c, dot, last)?);
        }
        let v = last.unwrap_or(Value::Nil);
        for name in &p.decl {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return Err(self.err(format!("undefined variable: {name}"))),
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn var(&self, name: &str) -> Result<Value, RenderError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.err(format!("undefined variable: {name}")))
    }

    fn command(
        &mut self,
        c: &Command,
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, RenderError> {
        let first = &c.args[0];
        // A field chain with arguments is a method call (e.g. `.Labels.Remove $names`).
        let mut extra = Vec::new();
        for a in &c.args[1..] {
            extra.push(self.arg(a, dot)?);
        }
        extra.extend(piped);
        match first {
            Arg::Func(name) => self.call(name, extra),
            Arg::Field(f) => self.chain(dot.clone(), f, extra),
            Arg::Var(n, f) => {
                let base = self.var(n)?;
                self.chain(base, f, extra)
            }
            Arg::Sub(p, f) => {
                let base = self.pipeline(p, dot)?;
                self.chain(base, f, extra)
            }
            Arg::Lit(v) => {
                if !extra.is_empty() {
                    return Err(self.err(format!("can't give argument to non-function {v}")));
                }
                Ok(v.clone())
            }
        }
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, RenderError> {
        match a {
            Arg::Func(name) => self.call(name, Vec::new()),
            _ => self.command(
                &Command {
                    args: vec![a.clone()],
                },
                dot,
                None,
            ),
        }
    }

    fn chain(
        &self,
        mut v: Value,
        fields: &[String],
        args: Vec<Value>,
    ) -> Result<Value, RenderError> {
        if fields.is_empty() {
            if !args.is_empty() {
                return Err(self.err("can't give argument to non-function"));
            }
            return Ok(v);
        }
        let last = fields.len() - 1;
        for (i, f) in fields.iter().enumerate() {
            let a = if i == last { args.clone() } else { Vec::new() };
            v = self.field(&v, f, a)?;
        }
        Ok(v)
    }

    fn field(&self, v: &Value, name: &str, args: Vec<Value>) -> Result<Value, RenderError> {
        let no_args = |r: Value| {
            if args.is_empty() {
                Ok(r)
            } else {
                Err(self.err(format!("{name} takes no arguments")))
            }
        };
        match (v, name) {
            (Value::Alerts(list), "Firing" | "Resolved") => {
                let want = if name == "Firing" {
                    "firing"
                } else {
                    "resolved"
                };
                no_args(Value::Alerts(
                    list.iter()
                        .filter(|a| {
                            matches!(a, Value::Struct(m) if m.get("Status") == Some(&Value::Str(want.into())))
                        })
                        .cloned()
                        .collect(),
                ))
            }
            (Value::Kv(m), "SortedPairs") => no_args(Value::Pairs(
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            )),
            (Value::Kv(m), "Names") => no_args(Value::List(
                m.keys().map(|k| Value::Str(k.clone())).collect(),
            )),
            (Value::Kv(m), "Values") => no_args(Value::List(
                m.values().map(|k| Value::Str(k.clone())).collect(),
            )),
            (Value::Kv(m), "Remove") => {
                let [Value::List(names)] = args.as_slice() else {
                    return Err(self.err("Remove takes one list of names"));
                };
                let mut out = m.clone();
                for n in names {
                    out.remove(&n.to_string());
                }
                Ok(Value::Kv(out))
            }
            (Value::Pairs(p), "Names") => no_args(Value::List(
                p.iter().map(|(k, _)| Value::Str(k.clone())).collect(),
            )),
            (Value::Pairs(p), "Values") => no_args(Value::List(
                p.iter().map(|(_, v)| Value::Str(v.clone())).collect(),
            )),
            // A missing key of a string map is the empty string, as in Go.
            (Value::Kv(m), key) => no_args(Value::Str(m.get(key).cloned().unwrap_or_default())),
            (Value::Struct(m), f) => match m.get(f) {
                Some(x) => no_args(x.clone()),
                None => Err(self.err(format!(
                    "can't evaluate field {f} in type {}",
                    v.type_name()
                ))),
            },
            (other, f) => Err(self.err(format!(
                "can't evaluate field {f} in type {}",
                other.type_name()
            ))),
        }
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, RenderError> {
        call_function(name, args).map_err(|m| self.err(format!("error calling {name}: {m}")))
    }
}

fn want_args(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!("wrong number of args: want {n} got {}", args.len()))
    }
}

fn string_arg(v: &Value) -> String {
    v.to_string()
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x
            .partial_cmp(y)
            .ok_or_else(|| "incomparable NaN".to_string()),
        (Value::Int(x), Value::Float(y)) => (*x as f64)
            .partial_cmp(y)
            .ok_or_else(|| "incomparable NaN".to_string()),
        (Value::Float(x), Value::Int(y)) => x
            .partial_cmp(&(*y as f64))
            .ok_or_else(|| "incomparable NaN".to_string()),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        )),
    }
}

/// A tiny `fmt.Sprintf`: `%s`, `%v`, `%d`, `%q`, `%f`, `%%`.
fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(verb) => match it.next() {
                Some(v) => match verb {
                    'q' => {
                        crate::labels::go_quote_into(&mut out, &v.to_string());
                    }
                    'f' => {
                        let f = match v {
                            Value::Int(i) => *i as f64,
                            Value::Float(f) => *f,
                            _ => f64::NAN,
                        };
                        let _ = write!(out, "{f:.6}");
                    }
                    _ => {
                        let _ = write!(out, "{v}");
                    }
                },
                None => {
                    let _ = write!(out, "%!{verb}(MISSING)");
                }
            },
            None => out.push_str("%!(NOVERB)"),
        }
    }
    out
}

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Every function `call_function` knows.
const FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "println",
    "printf",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "urlquery",
    "js",
    "toUpper",
    "toLower",
    "title",
    "trimSpace",
    "join",
    "match",
    "safeHtml",
    "reReplaceAll",
    "stringSlice",
];

fn call_function(name: &str, args: Vec<Value>) -> Result<Value, String> {
    let s = |i: usize| args.get(i).map(string_arg).unwrap_or_default();
    Ok(match name {
        "and" => {
            let mut last = Value::Nil;
            for a in args {
                if !a.truth() {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "or" => {
            let mut last = Value::Nil;
            for a in args {
                if a.truth() {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "not" => {
            want_args(&args, 1)?;
            Value::Bool(!args[0].truth())
        }
        "len" => {
            want_args(&args, 1)?;
            Value::Int(match &args[0] {
                Value::Str(x) => x.len(),
                Value::List(v) | Value::Alerts(v) => v.len(),
                Value::Kv(m) => m.len(),
                Value::Pairs(p) => p.len(),
                other => return Err(format!("len of type {}", other.type_name())),
            } as i64)
        }
        "index" => {
            let (first, keys) = args.split_first().ok_or("wrong number of args for index")?;
            let mut v = first.clone();
            for k in keys {
                v = match (&v, k) {
                    (Value::Kv(m), key) => {
                        Value::Str(m.get(&key.to_string()).cloned().unwrap_or_default())
                    }
                    (_, Value::Int(i)) => {
                        let items = v
                            .items()
                            .ok_or_else(|| format!("can't index item of type {}", v.type_name()))?;
                        items
                            .into_iter()
                            .nth(usize::try_from(*i).map_err(|_| "negative index")?)
                            .map(|(_, x)| x)
                            .ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    _ => return Err(format!("can't index item of type {}", v.type_name())),
                };
            }
            v
        }
        "print" => {
            // Go's Sprint puts spaces only between operands that are not both strings.
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
                    out.push(' ');
                }
                let _ = write!(out, "{a}");
            }
            Value::Str(out)
        }
        "println" => Value::Str(
            args.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" ")
                + "\n",
        ),
        "printf" => {
            let (f, rest) = args
                .split_first()
                .ok_or("wrong number of args for printf")?;
            Value::Str(sprintf(&f.to_string(), rest))
        }
        "eq" => {
            let (first, rest) = args
                .split_first()
                .ok_or("missing argument for comparison")?;
            if rest.is_empty() {
                return Err("missing argument for comparison".into());
            }
            let mut any = false;
            for b in rest {
                any |= compare(first, b)? == std::cmp::Ordering::Equal;
            }
            Value::Bool(any)
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want_args(&args, 2)?;
            let o = compare(&args[0], &args[1])?;
            use std::cmp::Ordering::*;
            Value::Bool(match name {
                "ne" => o != Equal,
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            })
        }
        "html" => Value::Str(html_escape(&s(0))),
        "urlquery" => Value::Str(form_urlencoded::byte_serialize(s(0).as_bytes()).collect()),
        "js" => Value::Str(
            s(0).replace('\\', "\\\\")
                .replace('\'', "\\'")
                .replace('"', "\\\"")
                .replace('<', "\\u003C")
                .replace('>', "\\u003E"),
        ),
        // Alertmanager's functions.
        "toUpper" => {
            want_args(&args, 1)?;
            Value::Str(s(0).to_uppercase())
        }
        "toLower" => {
            want_args(&args, 1)?;
            Value::Str(s(0).to_lowercase())
        }
        "title" => {
            want_args(&args, 1)?;
            Value::Str(title_case(&s(0)))
        }
        "trimSpace" => {
            want_args(&args, 1)?;
            Value::Str(s(0).trim().to_string())
        }
        // `join sep list` (Alertmanager's argument order, so that `list | join ","` works).
        "join" => {
            want_args(&args, 2)?;
            let items = args[1]
                .items()
                .ok_or_else(|| format!("join of type {}", args[1].type_name()))?;
            Value::Str(
                items
                    .into_iter()
                    .map(|(_, v)| v.to_string())
                    .collect::<Vec<_>>()
                    .join(&s(0)),
            )
        }
        "match" => {
            want_args(&args, 2)?;
            let re = regex::Regex::new(&s(0)).map_err(|e| e.to_string())?;
            Value::Bool(re.is_match(&s(1)))
        }
        // Text output is never escaped, so marking HTML as safe is the identity here.
        "safeHtml" => {
            want_args(&args, 1)?;
            Value::Str(s(0))
        }
        "reReplaceAll" => {
            want_args(&args, 3)?;
            let re = regex::Regex::new(&s(0)).map_err(|e| e.to_string())?;
            let repl = go_expand_to_rust(&s(1));
            Value::Str(re.replace_all(&s(2), repl.as_str()).into_owned())
        }
        "stringSlice" => Value::List(args.iter().map(|a| Value::Str(a.to_string())).collect()),
        other => return Err(format!("function {other:?} not defined")),
    })
}

/// Go's `$1`/`${name}` expansion is Rust's except that Rust reads `$1a` as the group `1a`;
/// braces keep Go's meaning for the numeric form.
fn go_expand_to_rust(repl: &str) -> String {
    let mut out = String::with_capacity(repl.len());
    let b: Vec<char> = repl.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '$' && b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            out.push_str("${");
            out.extend(&b[i + 1..j]);
            out.push('}');
            i = j;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Template sets

/// Named templates: Strata's defaults, then those of the `templates:` files (a file may
/// redefine a default).
#[derive(Debug, Clone)]
pub struct Templates {
    defs: HashMap<String, Vec<Node>>,
}

/// Strata's default templates, under the names Alertmanager's notifiers look up.
pub const DEFAULT_TEMPLATES: &str = include_str!("default.tmpl");

impl Templates {
    /// The default templates only.
    pub fn defaults() -> Self {
        let mut t = Templates {
            defs: HashMap::new(),
        };
        if let Err(e) = t.add("default.tmpl", DEFAULT_TEMPLATES) {
            // Covered by a unit test; a broken built-in is a build defect.
            panic!("built-in default templates do not parse: {e}");
        }
        t
    }

    /// Adds the templates `text` defines (its body outside `define` is ignored, as upstream
    /// ignores it for files).
    pub fn add(&mut self, name: &str, text: &str) -> Result<(), TemplateError> {
        let (_, defines) = parse(name, text)?;
        self.defs.extend(defines);
        Ok(())
    }

    /// The defaults plus every file matched by `patterns`, relative to `base` unless absolute,
    /// in the order of the patterns and, within one, of the file names.
    pub fn load(base: &Path, patterns: &[String]) -> Result<Self, TemplateError> {
        let mut t = Self::defaults();
        for pattern in patterns {
            let full = if Path::new(pattern).is_absolute() {
                PathBuf::from(pattern)
            } else {
                base.join(pattern)
            };
            let full_str = full.to_string_lossy().into_owned();
            let paths = glob::glob(&full_str).map_err(|source| TemplateError::Glob {
                pattern: pattern.clone(),
                source,
            })?;
            let mut files = Vec::new();
            for p in paths {
                files.push(p.map_err(|source| TemplateError::List {
                    pattern: pattern.clone(),
                    source,
                })?);
            }
            files.sort();
            for path in files {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                        path: path.clone(),
                        source,
                    })?;
                t.add(&path.display().to_string(), &text)?;
            }
        }
        Ok(t)
    }

    pub fn has(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    fn run(&self, name: &str, dot: &Value, depth: usize) -> Result<String, RenderError> {
        if depth > MAX_DEPTH {
            return Err(RenderError::TooDeep(name.to_string()));
        }
        let body = self
            .defs
            .get(name)
            .ok_or_else(|| RenderError::Undefined(name.to_string()))?;
        let mut exec = Exec {
            set: self,
            name: name.to_string(),
            vars: vec![("$".to_string(), dot.clone())],
            depth,
        };
        let mut out = String::new();
        exec.walk(body, dot, &mut out)?;
        Ok(out)
    }

    /// Renders a named template.
    pub fn render(&self, name: &str, data: &Value) -> Result<String, RenderError> {
        self.run(name, data, 0)
    }

    /// Renders a template text from a notifier setting (e.g. `title:`), which may call the
    /// named templates.
    pub fn render_text(&self, text: &str, data: &Value) -> Result<String, RenderError> {
        // Plain text is by far the most common setting; skip parsing it.
        if !text.contains("{{") {
            return Ok(text.to_string());
        }
        let (body, defines) = parse("setting", text)?;
        if defines.is_empty() {
            return self.render_text_body(&body, data);
        }
        let mut with = self.clone();
        with.defs.extend(defines);
        with.render_text_body(&body, data)
    }

    fn render_text_body(&self, body: &[Node], data: &Value) -> Result<String, RenderError> {
        let mut exec = Exec {
            set: self,
            name: "setting".to_string(),
            vars: vec![("$".to_string(), data.clone())],
            depth: 0,
        };
        let mut out = String::new();
        exec.walk(body, data, &mut out)?;
        Ok(out)
    }

    /// Checks that a setting's template text parses (at configuration load).
    pub fn check_text(text: &str) -> Result<(), TemplateError> {
        parse("setting", text).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_rfc3339, zero_time};
    use std::sync::Arc;

    fn alert(labels: &[(&str, &str)], ends: Option<&str>) -> Alert {
        Alert {
            labels: labels
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<LabelSet>()
                .into(),
            annotations: Arc::new(LabelSet::from([(
                "summary".to_string(),
                "disk full".to_string(),
            )])),
            starts_at: parse_rfc3339("2026-11-24T23:30:45.5Z").unwrap(),
            ends_at: ends.map_or_else(zero_time, |e| parse_rfc3339(e).unwrap()),
            generator_url: "http://prom/graph".into(),
            updated_at: zero_time(),
            timeout: false,
        }
    }

    fn sample() -> Value {
        let now = parse_rfc3339("2026-11-25T00:00:00Z").unwrap();
        data(
            "team.db",
            &[("alertname".to_string(), "DiskFull".to_string())].into(),
            "http://am:9093",
            &[
                alert(&[("alertname", "DiskFull"), ("instance", "a")], None),
                alert(
                    &[("alertname", "DiskFull"), ("instance", "b")],
                    Some("2026-11-24T23:50:00Z"),
                ),
            ],
            now,
        )
    }

    fn render(text: &str) -> String {
        Templates::defaults()
            .render_text(text, &sample())
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn data_model_fields_and_methods() {
        assert_eq!(render("{{ .Receiver }} {{ .Status }}"), r"team\.db firing");
        assert_eq!(
            render("{{ len .Alerts }}/{{ len .Alerts.Firing }}/{{ len .Alerts.Resolved }}"),
            "2/1/1"
        );
        assert_eq!(
            render("{{ range .Alerts.Resolved }}{{ .Labels.instance }} {{ .EndsAt }}{{ end }}"),
            "b 2026-11-24 23:50:00 +0000 UTC"
        );
        assert_eq!(
            render("{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}"),
            "alertname=DiskFull;"
        );
        assert_eq!(
            render("{{ (index .Alerts 0).Labels.SortedPairs.Names | join \",\" }}"),
            "alertname,instance"
        );
        assert_eq!(
            render("{{ ((index .Alerts 0).Labels.Remove .GroupLabels.Names).Values }}"),
            "[a]"
        );
        // Maps range in key order, with key and value variables.
        assert_eq!(
            render("{{ range $k, $v := (index .Alerts 1).Labels }}{{ $k }}:{{ $v }},{{ end }}"),
            "alertname:DiskFull,instance:b,"
        );
        assert_eq!(
            render("{{ .CommonAnnotations.summary }}|{{ .GroupLabels.nope }}|"),
            "disk full||"
        );
        assert_eq!(render("{{ .ExternalURL }}"), "http://am:9093");
    }

    #[test]
    fn functions() {
        assert_eq!(
            render(r#"{{ "abc" | toUpper }} {{ toLower "AbC" }}"#),
            "ABC abc"
        );
        assert_eq!(render(r#"{{ title "disk full-now" }}"#), "Disk Full-Now");
        assert_eq!(render(r#"{{ stringSlice "a" "b" | join "+" }}"#), "a+b");
        assert_eq!(
            render(r#"{{ reReplaceAll "(\\w+)-(\\d+)" "$2x$1" "host-42" }}"#),
            "42xhost"
        );
        assert_eq!(
            render(r#"{{ if match "^Disk" .CommonLabels.alertname }}y{{ end }}"#),
            "y"
        );
        assert_eq!(
            render(r#"{{ safeHtml "<b>" }} {{ html "<b>" }}"#),
            "<b> &lt;b&gt;"
        );
        assert_eq!(render(r#"{{ printf "%s=%d %q" "x" 3 "y" }}"#), "x=3 \"y\"");
        assert_eq!(
            render(r#"{{ if and (eq .Status "firing") (gt (len .Alerts) 1) }}ok{{ end }}"#),
            "ok"
        );
        assert_eq!(
            render(r#"{{ if eq .Status "resolved" "firing" }}any{{ end }}"#),
            "any"
        );
        assert_eq!(
            render(r#"{{ if not .Alerts.Resolved }}none{{ else }}some{{ end }}"#),
            "some"
        );
    }

    #[test]
    fn control_flow_trim_and_variables() {
        assert_eq!(
            render("{{- $n := len .Alerts -}}\n  {{ if gt $n 5 }}many{{ else if gt $n 1 }}few{{ else }}one{{ end }}  \n{{- /* note */ -}}!"),
            "few!"
        );
        assert_eq!(
            render("{{ with .GroupLabels.nope }}x{{ else }}empty{{ end }}"),
            "empty"
        );
        assert_eq!(
            render("{{ range .Alerts.Firing }}{{ $.Receiver }}{{ end }}"),
            r"team\.db"
        );
        assert_eq!(
            render("{{ range $i, $a := .Alerts }}{{ $i }}{{ end }}"),
            "01"
        );
        assert_eq!(
            render("{{ range .Alerts.Firing }}{{ else }}none{{ end }}x"),
            "x"
        );
        assert_eq!(
            render(r#"{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" .Status }}"#),
            "[firing]"
        );
    }

    #[test]
    fn parse_and_exec_errors_are_clear() {
        for (text, want) in [
            ("{{ if .Status }}x", "unexpected EOF in if"),
            ("{{ end }}", "unexpected {{end}}"),
            ("a\n{{ .Status", "line 2: unclosed action"),
            (r#"{{ "abc }}"#, "unclosed action"),
        ] {
            let e = Templates::check_text(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        let t = Templates::defaults();
        let e = t
            .render_text("{{ .Nope }}", &sample())
            .unwrap_err()
            .to_string();
        assert!(e.contains("can't evaluate field Nope"), "{e}");
        let e = t
            .render_text("{{ template \"missing\" . }}", &sample())
            .unwrap_err();
        assert!(
            matches!(e, RenderError::Undefined(ref n) if n == "missing"),
            "{e}"
        );
        let e = t
            .render_text("{{ nofunc 1 }}", &sample())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1: function \"nofunc\" not defined"), "{e}");
        let mut rec = Templates::defaults();
        rec.add(
            "r",
            r#"{{ define "loop" }}{{ template "loop" . }}{{ end }}"#,
        )
        .unwrap();
        assert!(matches!(
            rec.render("loop", &sample()),
            Err(RenderError::TooDeep(_))
        ));
    }

    #[test]
    fn defaults_render_for_every_notifier_name() {
        let t = Templates::defaults();
        for name in [
            "__subject",
            "__description",
            "slack.default.title",
            "slack.default.username",
            "slack.default.fallback",
            "slack.default.text",
            "slack.default.titlelink",
            "pagerduty.default.description",
            "pagerduty.default.client",
            "pagerduty.default.clientURL",
            "email.default.subject",
            "email.default.html",
        ] {
            assert!(t.has(name), "{name} not defined");
            t.render(name, &sample())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let subject = t.render("__subject", &sample()).unwrap();
        assert_eq!(subject, "[FIRING:1] DiskFull");
        // The alert list takes a list of alerts, as the notifier defaults pass it.
        let Value::Struct(fields) = sample() else {
            panic!("data is a struct")
        };
        let list = t.render("__text_alert_list", &fields["Alerts"]).unwrap();
        assert!(
            list.contains("instance = b") && list.contains("summary = disk full"),
            "{list}"
        );
        let html = t.render("email.default.html", &sample()).unwrap();
        assert!(
            html.contains("disk full") && html.contains("http://am:9093"),
            "{html}"
        );
    }

    #[test]
    fn files_load_by_glob_relative_to_base_and_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("t")).unwrap();
        std::fs::write(
            dir.path().join("t/a.tmpl"),
            r#"{{ define "__subject" }}custom {{ .Status }}{{ end }}{{ define "mine" }}{{ template "__subject" . }}!{{ end }}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("t/skip.txt"), "{{ broken").unwrap();
        let t = Templates::load(dir.path(), &["t/*.tmpl".to_string()]).unwrap();
        assert_eq!(t.render("mine", &sample()).unwrap(), "custom firing!");
        std::fs::write(dir.path().join("t/b.tmpl"), "{{ define \"x\" }}{{ if }}").unwrap();
        let e = Templates::load(dir.path(), &["t/*.tmpl".to_string()]).unwrap_err();
        assert!(e.to_string().contains("b.tmpl"), "{e}");
        // A pattern matching nothing is not an error (upstream's glob semantics).
        assert!(Templates::load(dir.path(), &["none/*.tmpl".to_string()]).is_ok());
    }
}
