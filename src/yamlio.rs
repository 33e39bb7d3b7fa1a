//! YAML files the toolkit writes (environment files): emitted from JSON values in a stable
//! form — keys in the value's order; a key bare only when every YAML reader takes it for that
//! same string, anything else (and every string value) double-quoted with YAML escapes — and
//! read back through the same span-aware parser as mlops.yaml.

use anyhow::{anyhow, Result};
use serde_json::Value;

pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    emit(value, 0, &mut out);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quoted(s),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        _ => String::new(),
    }
}

/// Words that YAML 1.1 or 1.2 readers turn into booleans or null when written bare.
const RESERVED: &[&str] = &["true", "false", "null", "yes", "no", "on", "off", "y", "n"];

/// A key written bare: a letter or `_`, then letters, digits, `_`, `.` and `-`, and not a
/// reserved word. Such a plain scalar is a string for every YAML schema (no number, date, bool
/// or null starts with a letter except the reserved words), so it reads back as written.
/// Everything else is quoted: a stricter rule than an emitter's, and simpler to trust.
fn bare_key(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(k))
}

/// A double-quoted YAML scalar. Only printable characters (YAML's c-printable) are written as
/// they are, except those some readers take as line breaks or a byte-order mark; every other
/// character is an escape, so the text comes back byte for byte.
pub(crate) fn quoted(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if printable(c) => out.push(c),
            c if (c as u32) <= 0xFF => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// A value on one line in YAML's flow style (`{key: value}`, `[a, b]`), keys and strings
/// double-quoted: what a template gets for a map or list.
pub(crate) fn flow(v: &Value) -> String {
    match v {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(flow).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", quoted(k), flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => scalar(other),
    }
}

fn printable(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty()) || matches!(v, Value::Object(o) if !o.is_empty())
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, val) in map {
                let key = if bare_key(k) { k.clone() } else { quoted(k) };
                if is_block(val) {
                    out.push_str(&format!("{pad}{key}:\n"));
                    emit(val, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}{key}: {}\n", scalar(val)));
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_block(item) {
                    let mut inner = String::new();
                    emit(item, indent + 2, &mut inner);
                    // First line of the item goes after the dash.
                    let trimmed = inner.trim_start_matches(' ');
                    out.push_str(&format!("{pad}- {trimmed}"));
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

pub fn from_yaml(text: &str) -> Result<Value> {
    crate::config::yaml::parse(text)
        .map(|(v, _)| v)
        .map_err(|e| anyhow!("line {}:{}: {}", e.pos.0, e.pos.1, e.message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips() {
        let v = json!({
            "model": "churn",
            "image": "127.0.0.1:5000/acme/churn@sha256:ab",
            "metrics": {"f1": 0.91, "weird: key": -1},
            "data": [{"name": "train", "digest": "sha256:1"}, {"name": "test"}],
            "empty": [], "none": null, "text": "line1\nline2 \"q\" #x",
        });
        let y = to_yaml(&v);
        assert_eq!(from_yaml(&y).unwrap(), v, "{y}");
    }

    /// Pieces of text that mean something to a YAML reader (types, indicators, escapes,
    /// characters that are not printable or that some readers take as line breaks).
    const TRICKY: &[&str] = &[
        "",
        " ",
        "  a",
        "a ",
        "1e3",
        "1.50",
        "1",
        "-1",
        "+1",
        "0x1f",
        "0o17",
        "1_000",
        ".5",
        "5.",
        "True",
        "TRUE",
        "true",
        "False",
        "null",
        "Null",
        "NULL",
        "~",
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "n",
        ".inf",
        "-.Inf",
        ".NaN",
        "-",
        "--",
        "---",
        "...",
        ":x",
        "x:",
        "a: b",
        "a #b",
        "#a",
        "- x",
        "? x",
        "&a",
        "*a",
        "!a",
        "!!str",
        "|",
        ">",
        "%YAML",
        "@a",
        "`a",
        "{",
        "}",
        "[",
        "]",
        ",",
        "\"",
        "'",
        "\\",
        "\n",
        "\r",
        "\r\n",
        "\t",
        "\u{0}",
        "\u{7}",
        "\u{1b}",
        "\u{7f}",
        "\u{85}",
        "\u{a0}",
        "\u{2028}",
        "\u{2029}",
        "\u{feff}",
        "\u{fffe}",
        "\u{200b}",
        "é",
        "日本",
        "😀",
        "<<",
        "=",
        "f1",
        "a.b",
        "a/b",
        "a-b",
        "_",
        "2026-11-25",
        "12:30",
        "0.1",
        "1.0e+3",
        "0b101",
        "::error::x",
        "##[error]",
    ];

    fn round_trip(s: &str) {
        let v = json!({
            s: s,
            "list": [s, {s: [s]}],
            "nested": {s: {s: s}},
        });
        let y = to_yaml(&v);
        match from_yaml(&y) {
            Ok(back) => assert_eq!(back, v, "{s:?} came back changed from:\n{y}"),
            Err(e) => panic!("{s:?} does not read back: {e}\n{y}"),
        }
    }

    #[test]
    fn tricky_keys_and_strings_come_back_unchanged() {
        for s in TRICKY {
            round_trip(s);
        }
        // Random concatenations of up to four pieces, from a fixed seed.
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(14);
        for _ in 0..5000 {
            let n = rng.random_range(1..=4);
            let s: String = (0..n)
                .map(|_| TRICKY[rng.random_range(0..TRICKY.len())])
                .collect();
            round_trip(&s);
        }
    }

    #[test]
    fn numbers_come_back_unchanged() {
        for x in [
            0.0,
            -0.0,
            0.1,
            1.0,
            -2.5,
            1e300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let v = json!({"x": x, "l": [x]});
            assert_eq!(from_yaml(&to_yaml(&v)).unwrap(), v, "{x}");
        }
        for i in [0i64, 1, -1, i64::MAX, i64::MIN] {
            let v = json!({"i": i});
            assert_eq!(from_yaml(&to_yaml(&v)).unwrap(), v, "{i}");
        }
    }
}
