//! The lexical pieces of the test-script language: durations, numbers, quoted strings and
//! series descriptions (`metric{l="v"} 1+2x3 _ stale {{schema:0 sum:1 count:1}}`).
//!
//! Semantics follow Prometheus's series-description grammar as used by its promqltest runner:
//! `_` is one missing point, `_xN` is N missing points, `v` is one point, `vxN` is N+1 points
//! of `v`, `v+dxN` / `v-dxN` are N+1 points starting at `v` with `d` added (by repeated float
//! addition) after each one, `stale` is a staleness marker and `{{...}}` a native histogram.

use strata_model::{Labels, STALE_NAN};

/// One point of a series description.
#[derive(Debug, Clone)]
pub enum SeqValue {
    /// `_`: no sample at this position.
    Omitted,
    Float(f64),
    Histogram(Box<HistogramDesc>),
}

impl SeqValue {
    pub fn fmt_value(&self) -> String {
        match self {
            SeqValue::Omitted => "_".into(),
            SeqValue::Float(v) => fmt_float(*v),
            SeqValue::Histogram(h) => h.text.clone(),
        }
    }
}

/// A native histogram literal. The engine under test returns floats only, so histograms are
/// kept as validated text (for messages) plus the explicitly given counter-reset hint.
#[derive(Debug, Clone)]
pub struct HistogramDesc {
    pub text: String,
    pub counter_reset_hint: Option<String>,
}

/// Formats a float the way the report prints values (`NaN`, `+Inf`, `-Inf`, shortest repr).
pub fn fmt_float(v: f64) -> String {
    if strata_model::is_stale_nan(v) {
        "stale".into()
    } else if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

// ---------------------------------------------------------------------------------------------
// Durations

/// Parses a Prometheus duration (`1h30m`, `100s`, `5ms`, `0`) into milliseconds. Units must
/// appear at most once each, from largest to smallest: y (365d), w, d, h, m, s, ms.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let b = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0; // index into UNITS of the smallest unit still allowed
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        let n: i64 = s[start..i]
            .parse()
            .map_err(|_| format!("duration out of range: {s:?}"))?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let pos = UNITS
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(|| format!("not a valid duration string: {s:?}"))?;
        if pos < next_unit {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        next_unit = pos + 1;
        total = n
            .checked_mul(UNITS[pos].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration out of range: {s:?}"))?;
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// Numbers

/// Parses a number the way the Go runner does: first as an integer with base prefixes
/// (`0x1f`, `0o17`, `0b11`, and a leading `0` meaning octal), then as a float (which accepts
/// `Inf`, `+Inf`, `NaN`, `infinity` in any case, exponents, `.5`).
pub fn parse_number(s: &str) -> Result<f64, String> {
    if let Some(v) = parse_go_int(s) {
        return Ok(v as f64);
    }
    parse_go_float(s).ok_or_else(|| format!("error parsing number: {s:?}"))
}

fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    // Go allows underscores between digits when the base is inferred.
    let digits = if digits.contains('_') {
        if digits.starts_with('_') && !prefixed || digits.ends_with('_') || digits.contains("__") {
            return None;
        }
        digits.replace('_', "")
    } else {
        digits
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = i128::from_str_radix(&digits, radix).ok()?;
    let v = if neg { -mag } else { mag };
    i64::try_from(v).ok()
}

fn parse_go_float(s: &str) -> Option<f64> {
    let (sign, body) = match s.as_bytes().first()? {
        b'-' => (-1.0, &s[1..]),
        b'+' => (1.0, &s[1..]),
        _ => (1.0, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(sign * f64::INFINITY);
    }
    if lower == "nan" {
        return Some(f64::NAN);
    }
    // Decimal float: digits [. digits] [e [+-] digits], at least one digit in the mantissa.
    let b = lower.as_bytes();
    let mut i = 0;
    let mut mant_digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        mant_digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            mant_digits += 1;
        }
    }
    if mant_digits == 0 {
        return None;
    }
    if i < b.len() && b[i] == b'e' {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let es = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == es {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    lower.parse::<f64>().ok().map(|v| sign * v)
}

// ---------------------------------------------------------------------------------------------
// Strings

/// Unquotes a PromQL string literal in double quotes, single quotes or backticks.
pub fn unquote(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    if b.len() < 2 {
        return Err(format!("invalid quoted string {s:?}"));
    }
    let q = b[0];
    if b[b.len() - 1] != q || !matches!(q, b'"' | b'\'' | b'`') {
        return Err(format!("invalid quoted string {s:?}"));
    }
    let inner = &s[1..s.len() - 1];
    if q == b'`' {
        if inner.contains('`') {
            return Err(format!("invalid quoted string {s:?}"));
        }
        return Ok(inner.to_string());
    }
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == q as char {
            return Err(format!("unescaped quote in {s:?}"));
        }
        if c == '\n' {
            return Err(format!("newline in string {s:?}"));
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let (_, e) = chars.next().ok_or_else(|| format!("bad escape in {s:?}"))?;
        let mut take_hex = |n: usize| -> Result<u32, String> {
            let mut v = 0u32;
            for _ in 0..n {
                let (_, h) = chars.next().ok_or_else(|| format!("bad escape in {s:?}"))?;
                v = v * 16
                    + h.to_digit(16)
                        .ok_or_else(|| format!("bad escape in {s:?}"))?;
            }
            Ok(v)
        };
        match e {
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            '"' | '\'' if e as u32 == q as u32 => out.push(q),
            'x' => out.push(take_hex(2)? as u8),
            'u' | 'U' => {
                let v = take_hex(if e == 'u' { 4 } else { 8 })?;
                let c = char::from_u32(v).ok_or_else(|| format!("bad escape in {s:?}"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let (_, d) = chars.next().ok_or_else(|| format!("bad escape in {s:?}"))?;
                    v = v * 8
                        + d.to_digit(8)
                            .ok_or_else(|| format!("bad escape in {s:?}"))?;
                }
                if v > 255 {
                    return Err(format!("bad escape in {s:?}"));
                }
                out.push(v as u8);
            }
            _ => return Err(format!("unknown escape sequence in {s:?}")),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Length in bytes of the quoted string starting at the beginning of `s` (quote included).
fn quoted_len(s: &str) -> Result<usize, String> {
    let b = s.as_bytes();
    let q = b[0];
    let mut i = 1;
    while i < b.len() {
        if b[i] == b'\\' && q != b'`' {
            i += 2;
            continue;
        }
        if b[i] == q {
            return Ok(i + 1);
        }
        i += 1;
    }
    Err(format!("unterminated string in {s:?}"))
}

// ---------------------------------------------------------------------------------------------
// Series descriptions

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

fn skip_ws(s: &str, mut i: usize) -> usize {
    let b = s.as_bytes();
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// Parses the metric part of a series description (`name`, `name{a="b"}`, `{__name__="n"}`,
/// `{"utf8.name", a="b"}`); returns the labels and the byte offset after it.
pub fn parse_metric(s: &str) -> Result<(Labels, usize), String> {
    let b = s.as_bytes();
    let mut i = skip_ws(s, 0);
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut any = false;
    if i < b.len() && is_ident_start(b[i]) {
        let st = i;
        while i < b.len() && is_ident_char(b[i]) {
            i += 1;
        }
        pairs.push(("__name__".into(), s[st..i].to_string()));
        any = true;
    }
    if i < b.len() && b[i] == b'{' && !s[i..].starts_with("{{") {
        any = true;
        i += 1;
        loop {
            i = skip_ws(s, i);
            if i >= b.len() {
                return Err(format!("unterminated label set in {s:?}"));
            }
            if b[i] == b'}' {
                i += 1;
                break;
            }
            // A label name (identifier or quoted) or a quoted metric name on its own.
            let (name, quoted) = if matches!(b[i], b'"' | b'\'' | b'`') {
                let n = quoted_len(&s[i..])?;
                let v = unquote(&s[i..i + n])?;
                i += n;
                (v, true)
            } else if is_ident_start(b[i]) {
                let st = i;
                while i < b.len() && is_ident_char(b[i]) {
                    i += 1;
                }
                (s[st..i].to_string(), false)
            } else {
                return Err(format!(
                    "unexpected character {:?} in label set of {s:?}",
                    b[i] as char
                ));
            };
            i = skip_ws(s, i);
            if i < b.len() && b[i] == b'=' && !s[i..].starts_with("=~") {
                i = skip_ws(s, i + 1);
                if i >= b.len() || !matches!(b[i], b'"' | b'\'' | b'`') {
                    return Err(format!("expected quoted label value in {s:?}"));
                }
                let n = quoted_len(&s[i..])?;
                let v = unquote(&s[i..i + n])?;
                i += n;
                pairs.push((name, v));
            } else if quoted {
                pairs.push(("__name__".into(), name));
            } else {
                return Err(format!("expected '=' after label name {name:?} in {s:?}"));
            }
            i = skip_ws(s, i);
            if i < b.len() && b[i] == b',' {
                i += 1;
            } else if i < b.len() && b[i] == b'}' {
                i += 1;
                break;
            } else {
                return Err(format!("expected ',' or '}}' in label set of {s:?}"));
            }
        }
    }
    if !any {
        return Err(format!("missing metric name or label set in {s:?}"));
    }
    Ok((Labels::from_pairs(pairs), i))
}

/// Parses a whole series description line: labels plus the expanded point sequence.
pub fn parse_series_desc(s: &str) -> Result<(Labels, Vec<SeqValue>), String> {
    let (labels, end) = parse_metric(s)?;
    let rest = &s[end..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return Err(format!("unexpected {rest:?} after metric in {s:?}"));
    }
    Ok((labels, parse_values(rest)?))
}

/// Splits the value part into items: whitespace-separated words, where a histogram item
/// (`{{...}}`, `{{...}}xN`, `{{...}}+{{...}}xN`) may contain spaces.
fn split_items(s: &str) -> Result<Vec<&str>, String> {
    let b = s.as_bytes();
    let mut items = Vec::new();
    let mut i = 0;
    while i < b.len() {
        i = skip_ws(s, i);
        if i >= b.len() {
            break;
        }
        let st = i;
        if s[i..].starts_with("{{") {
            i = end_of_histogram(s, i)?;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') && s[i + 1..].starts_with("{{") {
                i = end_of_histogram(s, i + 1)?;
            }
            while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                i += 1;
            }
        } else {
            while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                i += 1;
            }
        }
        items.push(&s[st..i]);
    }
    Ok(items)
}

fn end_of_histogram(s: &str, st: usize) -> Result<usize, String> {
    s[st..]
        .find("}}")
        .map(|p| st + p + 2)
        .ok_or_else(|| format!("unterminated histogram in {s:?}"))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Blank,
    Add,
    Sub,
    Times,
    Num(String),
    Ident(String),
}

/// Tokenizes one non-histogram item the way Prometheus lexes series values.
fn lex_item(item: &str) -> Result<Vec<Tok>, String> {
    let b = item.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'_' => {
                toks.push(Tok::Blank);
                i += 1;
            }
            b'+' => {
                toks.push(Tok::Add);
                i += 1;
            }
            b'-' => {
                toks.push(Tok::Sub);
                i += 1;
            }
            b'x' => {
                toks.push(Tok::Times);
                i += 1;
            }
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let st = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i < b.len() && b[i] == b'.' {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                    let save = i;
                    i += 1;
                    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                        i += 1;
                    }
                    let es = i;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    if i == es {
                        i = save;
                    }
                }
                // Only the repetition operator may follow a number directly.
                if i < b.len() && b[i] != b'x' && is_ident_char(b[i]) {
                    return Err(format!("bad number or duration syntax: {item:?}"));
                }
                toks.push(Tok::Num(item[st..i].to_string()));
            }
            c if c.is_ascii_alphabetic() => {
                let st = i;
                while i < b.len() && is_ident_char(b[i]) {
                    i += 1;
                }
                let w = &item[st..i];
                let lw = w.to_ascii_lowercase();
                if lw == "inf" || lw == "nan" {
                    toks.push(Tok::Num(w.to_string()));
                } else {
                    toks.push(Tok::Ident(w.to_string()));
                }
            }
            _ => {
                return Err(format!(
                    "unexpected character {:?} in series values {item:?}",
                    c as char
                ))
            }
        }
    }
    Ok(toks)
}

fn parse_uint(t: Option<&Tok>, item: &str) -> Result<u64, String> {
    match t {
        Some(Tok::Num(n)) => n
            .parse::<u64>()
            .map_err(|_| format!("invalid repetition in {item:?}")),
        _ => Err(format!("expected repetition count in {item:?}")),
    }
}

/// Parses the value part of a series description into the expanded point sequence.
pub fn parse_values(s: &str) -> Result<Vec<SeqValue>, String> {
    let mut out = Vec::new();
    for item in split_items(s)? {
        if item.starts_with("{{") {
            parse_histogram_item(item, &mut out)?;
            continue;
        }
        let toks = lex_item(item)?;
        let mut p = 0;
        if toks.first() == Some(&Tok::Blank) {
            match toks.len() {
                1 => out.push(SeqValue::Omitted),
                3 if toks[1] == Tok::Times => {
                    let n = parse_uint(toks.get(2), item)?;
                    out.extend((0..n).map(|_| SeqValue::Omitted));
                }
                _ => return Err(format!("invalid series item {item:?}")),
            }
            continue;
        }
        // series_value: number | signed number | `stale`
        let read_value = |p: &mut usize, allow_stale: bool| -> Result<f64, String> {
            let sign = match toks.get(*p) {
                Some(Tok::Add) => {
                    *p += 1;
                    1.0
                }
                Some(Tok::Sub) => {
                    *p += 1;
                    -1.0
                }
                _ => 0.0,
            };
            match toks.get(*p) {
                Some(Tok::Num(n)) => {
                    *p += 1;
                    let v = parse_number(n)?;
                    Ok(if sign < 0.0 { -v } else { v })
                }
                Some(Tok::Ident(w)) if w == "stale" && sign == 0.0 && allow_stale => {
                    *p += 1;
                    Ok(STALE_NAN)
                }
                _ => Err(format!(
                    "invalid series value in {item:?}: expected number or \"stale\""
                )),
            }
        };
        let mut v = read_value(&mut p, true)?;
        match toks.get(p) {
            None => out.push(SeqValue::Float(v)),
            Some(Tok::Times) => {
                let n = parse_uint(toks.get(p + 1), item)?;
                if p + 2 != toks.len() {
                    return Err(format!("invalid series item {item:?}"));
                }
                out.extend((0..=n).map(|_| SeqValue::Float(v)));
            }
            Some(Tok::Add) | Some(Tok::Sub) => {
                let d = read_value(&mut p, false)?;
                if toks.get(p) != Some(&Tok::Times) || p + 2 != toks.len() {
                    return Err(format!("invalid series item {item:?}"));
                }
                let n = parse_uint(toks.get(p + 1), item)?;
                for _ in 0..=n {
                    out.push(SeqValue::Float(v));
                    v += d;
                }
            }
            _ => return Err(format!("invalid series item {item:?}")),
        }
    }
    Ok(out)
}

/// `{{...}}`, `{{...}}xN`, `{{a}}+{{b}}xN`, `{{a}}-{{b}}xN`.
fn parse_histogram_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    let first_end = end_of_histogram(item, 0)?;
    let base = parse_histogram(&item[..first_end])?;
    let rest = &item[first_end..];
    if rest.is_empty() {
        out.push(SeqValue::Histogram(Box::new(base)));
        return Ok(());
    }
    let times = |r: &str| -> Result<u64, String> {
        r.strip_prefix('x')
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| format!("invalid histogram series item {item:?}"))
    };
    if rest.starts_with('x') {
        let n = times(rest)?;
        out.extend((0..=n).map(|_| SeqValue::Histogram(Box::new(base.clone()))));
        return Ok(());
    }
    let op = &rest[..1];
    if op != "+" && op != "-" {
        return Err(format!("invalid histogram series item {item:?}"));
    }
    let second_end = end_of_histogram(rest, 1)?;
    let inc = parse_histogram(&rest[1..second_end])?;
    let n = times(&rest[second_end..])?;
    for k in 0..=n {
        let text = if k == 0 {
            base.text.clone()
        } else {
            format!("({} {op} {k}*{})", base.text, inc.text)
        };
        out.push(SeqValue::Histogram(Box::new(HistogramDesc {
            text,
            counter_reset_hint: base.counter_reset_hint.clone(),
        })));
    }
    Ok(())
}

/// Validates a `{{key:value ...}}` histogram literal.
pub fn parse_histogram(s: &str) -> Result<HistogramDesc, String> {
    let inner = s
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .ok_or_else(|| format!("invalid histogram {s:?}"))?;
    let mut hint = None;
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() {
        i = skip_ws(inner, i);
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] != b':' {
            i += 1;
        }
        let key = inner[ks..i].trim();
        if i >= b.len() {
            return Err(format!("missing ':' after {key:?} in histogram {s:?}"));
        }
        i = skip_ws(inner, i + 1);
        let vs = i;
        if i < b.len() && b[i] == b'[' {
            let close = inner[i..]
                .find(']')
                .ok_or_else(|| format!("unterminated list in histogram {s:?}"))?;
            i += close + 1;
        } else {
            while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                i += 1;
            }
        }
        let val = &inner[vs..i];
        match key {
            "schema" | "offset" | "n_offset" => {
                val.parse::<i64>()
                    .map_err(|_| format!("invalid {key} {val:?} in histogram {s:?}"))?;
            }
            "sum" | "count" | "z_bucket" | "z_bucket_w" => {
                parse_number(val)
                    .map_err(|_| format!("invalid {key} {val:?} in histogram {s:?}"))?;
            }
            "buckets" | "n_buckets" | "custom_values" => {
                let list = val
                    .strip_prefix('[')
                    .and_then(|v| v.strip_suffix(']'))
                    .ok_or_else(|| format!("invalid {key} {val:?} in histogram {s:?}"))?;
                for n in list.split([' ', '\t', ',']).filter(|x| !x.is_empty()) {
                    parse_number(n)
                        .map_err(|_| format!("invalid {key} element {n:?} in histogram {s:?}"))?;
                }
            }
            "counter_reset_hint" => match val {
                "unknown" | "reset" | "not_reset" | "gauge" => hint = Some(val.to_string()),
                _ => {
                    return Err(format!(
                        "invalid counter_reset_hint {val:?} in histogram {s:?}"
                    ))
                }
            },
            _ => return Err(format!("unknown histogram field {key:?} in {s:?}")),
        }
    }
    Ok(HistogramDesc {
        text: s.to_string(),
        counter_reset_hint: hint,
    })
}

/// Quick self-checks of the parsers, run at start-up so a broken change shows at once.
pub fn selftest() -> Result<(), String> {
    fn vals(s: &str) -> Vec<String> {
        parse_values(s)
            .map(|v| v.iter().map(SeqValue::fmt_value).collect())
            .unwrap_or_else(|e| vec![e])
    }
    let check = |got: Vec<String>, want: &[&str], what: &str| -> Result<(), String> {
        if got.iter().map(String::as_str).eq(want.iter().copied()) {
            Ok(())
        } else {
            Err(format!("selftest {what}: got {got:?}, want {want:?}"))
        }
    };
    check(
        vals(" 5 2+3x2 _ stale"),
        &["5", "2", "5", "8", "_", "stale"],
        "expanding",
    )?;
    check(
        vals("1-1x2 _x3 -2x1 Inf -Inf NaN 1e3 .5"),
        &[
            "1", "0", "-1", "_", "_", "_", "-2", "-2", "+Inf", "-Inf", "NaN", "1000", "0.5",
        ],
        "forms",
    )?;
    check(vals("-1-1x1 +2"), &["-1", "-2", "2"], "signed")?;
    check(
        vals("{{schema:1 sum:3 count:22 buckets:[5 10 7]}}x1 1"),
        &[
            "{{schema:1 sum:3 count:22 buckets:[5 10 7]}}",
            "{{schema:1 sum:3 count:22 buckets:[5 10 7]}}",
            "1",
        ],
        "histogram",
    )?;
    let (l, v) = parse_series_desc(r#"my_metric{env="prod", x="a\"b"} 1"#)?;
    if l.get("__name__") != Some("my_metric") || l.get("x") != Some("a\"b") || v.len() != 1 {
        return Err(format!("selftest metric: {l} {v:?}"));
    }
    let (l, _) = parse_series_desc(r#"{"my.metric", "a.b"="c"} 1"#)?;
    if l.get("__name__") != Some("my.metric") || l.get("a.b") != Some("c") {
        return Err(format!("selftest utf8 metric: {l}"));
    }
    for (s, ms) in [
        ("0", 0),
        ("1m", 60_000),
        ("1h30m", 5_400_000),
        ("100s", 100_000),
        ("10s53ms", 10_053),
        ("1d", 86_400_000),
    ] {
        if parse_duration(s)? != ms {
            return Err(format!("selftest duration {s}"));
        }
    }
    for bad in ["", "1x", "-1m", "30m1h", "1.5m"] {
        if parse_duration(bad).is_ok() {
            return Err(format!("selftest duration {bad:?} should fail"));
        }
    }
    if parse_number("010")? != 8.0
        || parse_number("0x10")? != 16.0
        || !parse_number("NaN")?.is_nan()
        || parse_number("-Inf")? != f64::NEG_INFINITY
    {
        return Err("selftest numbers".into());
    }
    if parse_number("{} 1").is_ok() || parse_number("foo").is_ok() {
        return Err("selftest non-numbers".into());
    }
    Ok(())
}
