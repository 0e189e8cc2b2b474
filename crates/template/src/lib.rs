//! Go `text/template` for Strata: the subset of Go's template language that Alertmanager
//! notification templates and Prometheus rule templates use, in two [`Dialect`]s that differ in
//! their functions. Alertmanager's data model (`.Alerts` with `.Firing`/`.Resolved`, label sets
//! with `.SortedPairs`/`.Names`/`.Values`/`.Remove`, ...) is expressed with [`Value`]; the
//! Alertmanager crate builds its notification data and default templates on top, the ruler its
//! `$labels`/`$value` expansion.
//!
//! Why not the `gtmpl` crate (0.7.1, passively maintained): its values cannot carry methods
//! next to their data: `.Alerts` must be a list for `range`/`len` and answer `.Firing`, but
//! gtmpl resolves fields only on maps and objects; a map with a `.SortedPairs` entry would show
//! that entry to `range`; methods taking arguments (`.CommonLabels.Remove .GroupLabels.Names`)
//! are refused; `range` over a map walks a `HashMap` in arbitrary order where Go sorts the
//! keys (notifications would change from one send to the next); and its parse tree is private,
//! so another executor cannot be put behind its parser.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod prometheus;
pub use prometheus::go_g;

mod error;
pub use error::{RenderError, TemplateError};

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
            Value::Float(x) => f.write_str(&go_float(*x)),
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
    dialect: Dialect,
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

fn parse_pipeline(toks: &[Tok], allow_decl: bool, dialect: Dialect) -> Result<Pipeline, String> {
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
                let inner = parse_pipeline(&rest[i + 1..close], false, dialect)?;
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
                f if defined(dialect, f) => Arg::Func(id.clone()),
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
                        let p = parse_pipeline(&toks(cond)?, true, self.dialect)
                            .map_err(|m| self.err(line, m))?;
                        return Ok((nodes, Stop::ElseIf(p), line));
                    }
                    return Ok((nodes, Stop::Else, line));
                }
                "if" | "range" | "with" => {
                    let pipe = parse_pipeline(&toks(rest)?, true, self.dialect)
                        .map_err(|m| self.err(line, m))?;
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
                            Some(
                                parse_pipeline(&t[1..], false, self.dialect)
                                    .map_err(|m| self.err(line, m))?,
                            )
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
                        Some(
                            parse_pipeline(&t[1..], false, self.dialect)
                                .map_err(|m| self.err(line, m))?,
                        )
                    } else {
                        None
                    };
                    nodes.push(Node::Template(name, pipe));
                }
                _ => {
                    let p = parse_pipeline(&toks(&body)?, true, self.dialect)
                        .map_err(|m| self.err(line, m))?;
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
fn parse(name: &str, text: &str, dialect: Dialect) -> Result<(Vec<Node>, Defines), TemplateError> {
    let mut p = Parser {
        name,
        dialect,
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
    querier: Option<&'a dyn TemplateQuerier>,
}

/// Runs Prometheus's `query` template function: an instant PromQL query at the rule
/// evaluation's time, answered as its series' labels and values (a scalar as one series
/// without labels).
pub trait TemplateQuerier {
    fn query(&self, query: &str) -> Result<Vec<QuerySample>, String>;
}

/// One series of a template query's answer: its labels and value.
pub type QuerySample = (BTreeMap<String, String>, f64);

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
                    out.push_str(&self.set.run(name, &arg, self.depth + 1, self.querier)?);
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
        // Prometheus's `externalURL` and `pathPrefix` read the URL the expander was given,
        // which the rule expander declares as `$externalURL`.
        if self.set.dialect == Dialect::Prometheus && matches!(name, "externalURL" | "pathPrefix") {
            let url = self
                .var("$externalURL")
                .unwrap_or(Value::Str(String::new()));
            return Ok(Value::Str(if name == "externalURL" {
                url.to_string()
            } else {
                prometheus::url_path(&url.to_string())
            }));
        }
        if self.set.dialect == Dialect::Prometheus && name == "query" {
            if let Some(q) = self.querier {
                return prometheus::query(q, &args)
                    .map_err(|m| self.err(format!("error calling {name}: {m}")));
            }
        }
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

/// A small `fmt.Sprintf`: verbs `%s %v %d %q %f %e %g %x %%` with flags `-+ 0`, a width and a
/// precision (`%.2f`, `%5.1f`, `%-10s`).
fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero) = (false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(v) = it.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let num = || match v {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.parse::<f64>().ok(),
            _ => None,
        };
        let mut body = match verb {
            'q' => {
                let mut q = String::new();
                go_quote_into(&mut q, &v.to_string());
                q
            }
            'f' | 'F' => match num() {
                Some(f) => format!("{f:.*}", precision.unwrap_or(6)),
                None => format!("%!{verb}({} ={v})", v.type_name()),
            },
            'e' => match num() {
                Some(f) => {
                    let e = format!("{f:.*e}", precision.unwrap_or(6));
                    let (m, x) = e.split_once('e').unwrap_or((&e, "0"));
                    let x: i32 = x.parse().unwrap_or(0);
                    format!("{m}e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs())
                }
                None => format!("%!{verb}({} ={v})", v.type_name()),
            },
            'g' => match (num(), precision) {
                (Some(f), None) => go_float(f),
                (Some(f), Some(p)) => go_g(f, p),
                (None, _) => format!("%!{verb}({} ={v})", v.type_name()),
            },
            'd' => match v {
                Value::Int(i) => i.to_string(),
                _ => format!("%!d({}={v})", v.type_name()),
            },
            'x' => match v {
                Value::Int(i) => format!("{i:x}"),
                _ => v.to_string().bytes().map(|b| format!("{b:02x}")).collect(),
            },
            _ => {
                let s = v.to_string();
                match precision {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
        };
        if plus && num().is_some_and(|f| f >= 0.0) && verb != 's' && verb != 'q' {
            body.insert(0, '+');
        }
        let width: usize = width.parse().unwrap_or(0);
        let len = body.chars().count();
        if len < width {
            let pad = width - len;
            if minus {
                body.push_str(&" ".repeat(pad));
            } else if zero && num().is_some() && verb != 's' {
                let at = usize::from(body.starts_with(['-', '+']));
                body.insert_str(at, &"0".repeat(pad));
            } else {
                body.insert_str(0, &" ".repeat(pad));
            }
        }
        out.push_str(&body);
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

/// Go's builtins and Alertmanager's functions (`call_function` knows them all).
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

/// Whether `name` is a function of `dialect`.
fn defined(dialect: Dialect, name: &str) -> bool {
    match dialect {
        Dialect::Alertmanager => FUNCTIONS.contains(&name),
        Dialect::Prometheus => {
            (FUNCTIONS.contains(&name) && !AM_ONLY.contains(&name))
                || prometheus::FUNCTIONS.contains(&name)
        }
    }
}

/// Alertmanager's functions that Prometheus's rule templates do not define.
const AM_ONLY: &[&str] = &["trimSpace", "join", "stringSlice"];

fn call_function(name: &str, args: Vec<Value>) -> Result<Value, String> {
    if let Some(r) = prometheus::call(name, &args) {
        return r;
    }
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

/// Checks that every variable used in `nodes` is declared before, in scope (Go's parser
/// refuses the template otherwise). Returns the first undeclared name.
fn check_vars(nodes: &[Node], scope: &mut Vec<String>) -> Result<(), String> {
    fn pipeline(p: &Pipeline, scope: &mut Vec<String>, declare: bool) -> Result<(), String> {
        for c in &p.cmds {
            for a in &c.args {
                arg(a, scope)?;
            }
        }
        for d in &p.decl {
            if p.assign {
                if !scope.contains(d) {
                    return Err(d.clone());
                }
            } else if declare {
                scope.push(d.clone());
            }
        }
        Ok(())
    }
    fn arg(a: &Arg, scope: &mut Vec<String>) -> Result<(), String> {
        match a {
            Arg::Var(n, _) if !scope.contains(n) => Err(n.clone()),
            Arg::Sub(p, _) => pipeline(p, scope, false),
            _ => Ok(()),
        }
    }
    for n in nodes {
        match n {
            Node::Text(_) => {}
            Node::Action(p) => pipeline(p, scope, true)?,
            Node::If(p, a, b) | Node::With(p, a, b) | Node::Range(p, a, b) => {
                let mark = scope.len();
                pipeline(p, scope, true)?;
                check_vars(a, scope)?;
                check_vars(b, scope)?;
                scope.truncate(mark);
            }
            Node::Template(_, Some(p)) => pipeline(p, scope, false)?,
            Node::Template(_, None) => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Template sets

/// Which template dialect a set speaks: the functions its texts may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// Alertmanager's notification templates (Go's builtins plus `toUpper`, `join`, ...).
    #[default]
    Alertmanager,
    /// Prometheus's rule templates (Go's builtins plus `humanize*`, `title`, `match`,
    /// `reReplaceAll`, `stripPort`, ...).
    Prometheus,
}

/// Named templates, each set in one [`Dialect`]. Later definitions of a name replace earlier
/// ones, so files loaded after the built-ins may redefine them.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    defs: HashMap<String, Vec<Node>>,
    dialect: Dialect,
}

impl Templates {
    /// An empty set in `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        Self {
            defs: HashMap::new(),
            dialect,
        }
    }

    /// Adds the templates `text` defines (its body outside `define` is ignored, as upstream
    /// ignores it for files).
    pub fn add(&mut self, name: &str, text: &str) -> Result<(), TemplateError> {
        let (_, defines) = parse(name, text, self.dialect)?;
        self.defs.extend(defines);
        Ok(())
    }

    /// Adds every file matched by `patterns`, relative to `base` unless absolute, in the order
    /// of the patterns and, within one, of the file names.
    pub fn load_files(&mut self, base: &Path, patterns: &[String]) -> Result<(), TemplateError> {
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
                self.add(&path.display().to_string(), &text)?;
            }
        }
        Ok(())
    }

    pub fn has(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    fn run(
        &self,
        name: &str,
        dot: &Value,
        depth: usize,
        querier: Option<&dyn TemplateQuerier>,
    ) -> Result<String, RenderError> {
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
            querier,
        };
        let mut out = String::new();
        exec.walk(body, dot, &mut out)?;
        Ok(out)
    }

    /// Renders a named template.
    pub fn render(&self, name: &str, data: &Value) -> Result<String, RenderError> {
        self.run(name, data, 0, None)
    }

    /// Renders a template text from a notifier setting (e.g. `title:`), which may call the
    /// named templates.
    pub fn render_text(&self, text: &str, data: &Value) -> Result<String, RenderError> {
        self.render_text_with(text, data, None)
    }

    /// [`Templates::render_text`] for a rule template whose `query` calls run on `querier`
    /// (without one, `query` fails when called, as it has no engine to ask).
    pub fn render_text_with(
        &self,
        text: &str,
        data: &Value,
        querier: Option<&dyn TemplateQuerier>,
    ) -> Result<String, RenderError> {
        // Plain text is by far the most common setting; skip parsing it.
        if !text.contains("{{") {
            return Ok(text.to_string());
        }
        let (body, defines) = parse("setting", text, self.dialect)?;
        if defines.is_empty() {
            return self.render_text_body(&body, data, querier);
        }
        let mut with = self.clone();
        with.defs.extend(defines);
        with.render_text_body(&body, data, querier)
    }

    fn render_text_body(
        &self,
        body: &[Node],
        data: &Value,
        querier: Option<&dyn TemplateQuerier>,
    ) -> Result<String, RenderError> {
        let mut exec = Exec {
            set: self,
            name: "setting".to_string(),
            vars: vec![("$".to_string(), data.clone())],
            depth: 0,
            querier,
        };
        let mut out = String::new();
        exec.walk(body, data, &mut out)?;
        Ok(out)
    }

    /// Checks that a template text parses in `dialect` (at configuration load).
    pub fn check_text(dialect: Dialect, text: &str) -> Result<(), TemplateError> {
        parse("setting", text, dialect).map(|_| ())
    }

    /// Like [`Templates::check_text`], and also refuses variables used outside their scope,
    /// as Go's parser does: `predeclared` are the variables the caller defines before `text`
    /// (`$` is always defined). `name` appears in messages.
    pub fn check_text_strict(
        dialect: Dialect,
        name: &str,
        text: &str,
        predeclared: &[&str],
    ) -> Result<(), TemplateError> {
        let (body, defines) = parse(name, text, dialect)?;
        let mut scope: Vec<String> = predeclared.iter().map(|s| s.to_string()).collect();
        scope.push("$".into());
        check_vars(&body, &mut scope).map_err(|v| TemplateError::Parse {
            name: name.to_string(),
            line: 1,
            message: format!("undefined variable \"{v}\""),
        })?;
        for (_, nodes) in &defines {
            check_vars(nodes, &mut vec!["$".to_string()]).map_err(|v| TemplateError::Parse {
                name: name.to_string(),
                line: 1,
                message: format!("undefined variable \"{v}\""),
            })?;
        }
        Ok(())
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(x, 'g', -1, 64)`): the shortest digits that
/// read back exactly, in exponent form when the decimal exponent is below -4 or at least 6
/// (Go's threshold for the shortest form).
pub fn go_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as Go's shortest formatting does.
    let e = format!("{x:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{x}")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn render(dialect: Dialect, text: &str) -> Result<String, RenderError> {
        Templates::new(dialect).render_text(text, &Value::Nil)
    }

    #[test]
    fn dialects_define_their_own_functions() {
        assert_eq!(
            render(Dialect::Prometheus, "{{ humanize 1234567.0 }}").unwrap(),
            "1.235M"
        );
        assert!(render(Dialect::Alertmanager, "{{ humanize 1 }}").is_err());
        assert!(Templates::check_text(Dialect::Prometheus, "{{ join \",\" . }}").is_err());
        assert!(Templates::check_text(Dialect::Alertmanager, "{{ join \",\" . }}").is_ok());
        assert!(Templates::check_text(Dialect::Prometheus, "{{ query \"up\" }}").is_ok());
    }

    #[test]
    fn strict_check_refuses_undeclared_variables() {
        let vars = ["$labels", "$value"];
        let ok = |t: &str| Templates::check_text_strict(Dialect::Prometheus, "n", t, &vars);
        assert!(ok("{{ $labels.job }} {{ $value }} {{ $ }}").is_ok());
        assert!(ok("{{ range $k, $v := $labels }}{{ $k }}={{ $v }}{{ end }}").is_ok());
        let e = ok("{{ range $k, $v := $labels }}{{ end }}{{ $k }}").unwrap_err();
        assert!(e.to_string().contains("undefined variable \"$k\""), "{e}");
        assert!(ok("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}").is_ok());
        assert!(ok("{{ $y = 2 }}").is_err());
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.25), "0.25");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(f64::NAN), "NaN");
    }

    #[test]
    fn printf_flags_width_and_precision() {
        let p = |t: &str| render(Dialect::Prometheus, t).unwrap();
        assert_eq!(p("{{ printf \"%.2f\" 3.14159 }}"), "3.14");
        assert_eq!(p("{{ printf \"%6.1f|\" 2.25 }}"), "   2.2|");
        assert_eq!(p("{{ printf \"%-4s|\" \"ab\" }}"), "ab  |");
        assert_eq!(p("{{ printf \"%05d\" 42 }}"), "00042");
        assert_eq!(p("{{ printf \"%.3e\" 1234.5 }}"), "1.234e+03");
        assert_eq!(p("{{ printf \"%g\" 0.5 }}"), "0.5");
        assert_eq!(p("{{ printf \"%d%%\" 5 }}"), "5%");
    }
}
