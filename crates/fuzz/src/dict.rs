//! libFuzzer dictionaries (`fuzz/dict/<target>.dict`), read for the replay test's mutator so
//! that both fuzzers insert the same tokens.
//!
//! Format: one token per line as a double-quoted string, optionally preceded by `name=`;
//! `\\`, `\"` and `\xNN` escapes; blank lines and lines starting with `#` are ignored.

/// The tokens of a dictionary text. Lines that are not a quoted token are skipped.
pub fn parse(text: &str) -> Vec<Vec<u8>> {
    text.lines().filter_map(token).collect()
}

fn token(line: &str) -> Option<Vec<u8>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let start = line.find('"')?;
    let body = line[start + 1..].strip_suffix('"')?;
    let mut out = Vec::with_capacity(body.len());
    let mut bytes = body.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next()? {
            b'x' => {
                let hi = hex(bytes.next()?)?;
                let lo = hex(bytes.next()?)?;
                out.push(hi << 4 | lo);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_with_escapes_and_names() {
        let d =
            parse("# comment\n\nkw1=\"offset\"\n\"a\\\"b\"\n\"\\x00\\xff\"\n\"\\\\\"\nbroken\n");
        assert_eq!(
            d,
            vec![
                b"offset".to_vec(),
                b"a\"b".to_vec(),
                vec![0, 0xff],
                b"\\".to_vec()
            ]
        );
    }
}
