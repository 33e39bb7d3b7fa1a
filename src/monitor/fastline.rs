//! A fast path for the common capture line: one flat JSON object whose strings have no escapes
//! and whose inputs are scalars, as serve.py writes it. It reads such a line into the same
//! [`Record`] as serde_json does, about twice as fast (no visitor machinery, one pass over the
//! bytes). Anything else — an escape, a nested value, a duplicate field, a number out of range,
//! a byte that is not JSON — answers None, and the caller parses the line with serde_json,
//! which decides and words the error. So the fast path can only be faster, never different:
//! its tests and the fuzz target `capture_line` compare the two on arbitrary lines.

use std::borrow::Cow;

use super::record::{Inputs, Record, Scalar, Text};

/// The record of a line, or None when the line is not of the simple kind this path reads.
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let text = std::str::from_utf8(line).ok()?;
    let mut p = Parser {
        s: text,
        b: line,
        i: 0,
    };
    let r = p.record()?;
    p.ws();
    (p.i == p.b.len()).then_some(r)
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

/// What a value position held.
enum Value<'a> {
    Null,
    Bool(bool),
    Str(&'a str),
    /// A number's text, checked against JSON's grammar.
    Number(&'a str),
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// A string with no escape and no control character; the opening quote not yet read.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let s = self.s.get(start..self.i)?;
        self.i += 1;
        Some(s)
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word.as_bytes()).then(|| self.i = end)
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<&'a str> {
        let start = self.i;
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        let n = self.digits();
        if n == 0 || (n > 1 && self.b[int_start] == b'0') {
            return None;
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        self.s.get(start..self.i)
    }

    /// A scalar value; None for an object, an array or anything malformed.
    fn value(&mut self) -> Option<Value<'a>> {
        self.ws();
        match *self.b.get(self.i)? {
            b'"' => self.string().map(Value::Str),
            b'n' => self.literal("null").map(|_| Value::Null),
            b't' => self.literal("true").map(|_| Value::Bool(true)),
            b'f' => self.literal("false").map(|_| Value::Bool(false)),
            b'-' | b'0'..=b'9' => self.number().map(Value::Number),
            _ => None,
        }
    }

    fn record(&mut self) -> Option<Record<'a>> {
        let mut r = Record::default();
        let mut seen = [false; 8];
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(r);
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            let field = [
                "id",
                "time",
                "digest",
                "inputs",
                "prediction",
                "score",
                "latency_ms",
                "status",
            ]
            .iter()
            .position(|k| *k == key);
            if let Some(f) = field {
                if std::mem::replace(&mut seen[f], true) {
                    return None; // serde: duplicate field
                }
            }
            match field {
                Some(3) => r.inputs = self.inputs()?,
                Some(f) => {
                    let v = self.value()?;
                    match f {
                        0 => r.id = nullable(v, scalar)?,
                        1 => r.time = nullable(v, text)?,
                        2 => r.digest = nullable(v, text)?,
                        4 => r.prediction = nullable(v, scalar)?,
                        5 => r.score = nullable(v, float)?,
                        6 => r.latency_ms = nullable(v, float)?,
                        _ => r.status = nullable(v, text)?,
                    }
                }
                // Another key: ignored, as serde ignores it; a nested value goes to serde.
                None => {
                    self.value()?;
                }
            }
            if self.eat(b',').is_some() {
                continue;
            }
            self.eat(b'}')?;
            return Some(r);
        }
    }

    fn inputs(&mut self) -> Option<Inputs<'a>> {
        let mut out = Vec::with_capacity(32);
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(Inputs(out));
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            let v = self.value()?;
            out.push((Cow::Borrowed(key), scalar(v)?));
            if self.eat(b',').is_some() {
                continue;
            }
            self.eat(b'}')?;
            return Some(Inputs(out));
        }
    }
}

/// An `Option<T>` field as serde reads it: null is None, anything else must convert (the
/// outer None: it does not, serde decides).
fn nullable<'a, T>(v: Value<'a>, convert: fn(Value<'a>) -> Option<T>) -> Option<Option<T>> {
    match v {
        Value::Null => Some(None),
        v => convert(v).map(Some),
    }
}

/// A scalar as [`Scalar`]'s visitor types it: an integer that fits i64 is Int, other numbers
/// Float; an integer out of i64 goes to serde (which has its own rules for those).
fn scalar(v: Value<'_>) -> Option<Scalar<'_>> {
    Some(match v {
        Value::Null => Scalar::Null,
        Value::Bool(b) => Scalar::Bool(b),
        Value::Str(s) => Scalar::Text(Cow::Borrowed(s)),
        // serde_json reads -0 as the float -0.0.
        Value::Number("-0") => Scalar::Float(-0.0),
        Value::Number(n) if is_integer(n) => Scalar::Int(n.parse().ok()?),
        Value::Number(n) => Scalar::Float(finite(n)?),
    })
}

fn text(v: Value<'_>) -> Option<Text<'_>> {
    match v {
        Value::Str(s) => Some(Text(Cow::Borrowed(s))),
        _ => None,
    }
}

fn float(v: Value<'_>) -> Option<f64> {
    match v {
        Value::Number("-0") => Some(-0.0),
        Value::Number(n) if is_integer(n) => n.parse::<i64>().ok().map(|i| i as f64),
        Value::Number(n) => finite(n),
        _ => None,
    }
}

fn is_integer(n: &str) -> bool {
    !n.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// serde_json refuses a number that overflows f64; so does this path (serde words the error).
fn finite(n: &str) -> Option<f64> {
    n.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Both parsers on one line (for the tests and the fuzz target; panics on a disagreement): the fast path either declines or agrees with serde_json
/// field by field (floats to the last bit but one: serde_json's default float parser is
/// not always correctly rounded, std's is).
#[doc(hidden)]
pub fn agree(line: &[u8]) {
    let Some(fast) = parse(line) else { return };
    let slow: Record = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => panic!(
            "the fast path read a line serde_json refuses ({e}): {:?}",
            String::from_utf8_lossy(line)
        ),
    };
    let close = |a: f64, b: f64| a == b || (a - b).abs() <= f64::EPSILON * a.abs().max(b.abs());
    let same_scalar = |a: &Scalar, b: &Scalar| match (a, b) {
        (Scalar::Float(x), Scalar::Float(y)) => close(*x, *y),
        _ => a == b,
    };
    let same_opt = |a: &Option<Scalar>, b: &Option<Scalar>| match (a, b) {
        (Some(x), Some(y)) => same_scalar(x, y),
        (None, None) => true,
        _ => false,
    };
    let same_f = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(x), Some(y)) => close(x, y),
        (None, None) => true,
        _ => false,
    };
    let what = String::from_utf8_lossy(line);
    assert!(same_opt(&fast.id, &slow.id), "id: {what}");
    assert_eq!(fast.time, slow.time, "{what}");
    assert_eq!(fast.digest, slow.digest, "{what}");
    assert_eq!(fast.status, slow.status, "{what}");
    assert!(same_opt(&fast.prediction, &slow.prediction), "{what}");
    assert!(same_f(fast.score, slow.score), "score: {what}");
    assert!(same_f(fast.latency_ms, slow.latency_ms), "latency: {what}");
    assert_eq!(fast.inputs.0.len(), slow.inputs.0.len(), "{what}");
    for ((ka, va), (kb, vb)) in fast.inputs.0.iter().zip(&slow.inputs.0) {
        assert_eq!(ka, kb, "{what}");
        assert!(same_scalar(va, vb), "{ka}: {va:?} vs {vb:?} in {what}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_capture_contract_line_as_serde_does() {
        let line = br#"{"id":"r1","time":"2026-12-01T10:00:00.000Z","digest":"sha256:00","inputs":{"x0":-0.25,"n":3,"big":1e300,"c":"plus","b":true,"z":null,"neg":-0,"e":2E-3},"prediction":1,"score":0.8125,"latency_ms":3,"status":"ok","extra":[1]}"#;
        assert!(
            parse(line).is_none(),
            "a nested unknown value goes to serde"
        );
        let line = br#" { "id" : 7 , "time":"t","inputs":{"x0":-0.25,"n":3,"big":1e300,"c":"plus","b":true,"z":null,"neg":-0,"e":2E-3,"":1},"prediction":null,"score":null,"latency_ms":3,"status":"ok","other":"x"} "#;
        let r = parse(line).expect("a simple line");
        assert_eq!(r.id, Some(Scalar::Int(7)));
        assert_eq!(r.prediction, None);
        assert_eq!(r.latency_ms, Some(3.0));
        assert_eq!(r.inputs.0.len(), 9);
        agree(line);
    }

    #[test]
    fn declines_what_it_does_not_read_and_never_disagrees() {
        let lines: &[&[u8]] = &[
            br#"{"id":"a\"b","inputs":{}}"#,
            br#"{"id":"a","inputs":{"x":[1]}}"#,
            br#"{"id":"a","id":"b","inputs":{}}"#,
            br#"{"id":"a","inputs":{"x":01}}"#,
            br#"{"id":"a","inputs":{"x":1.}}"#,
            br#"{"id":"a","inputs":{"x":-}}"#,
            br#"{"id":"a","inputs":{"x":1e}}"#,
            br#"{"id":"a","inputs":{"x":1e999}}"#,
            br#"{"id":"a","inputs":{"x":9223372036854775808}}"#,
            br#"{"id":"a","inputs":{"x":1}} x"#,
            br#"{"id":"a","inputs":{"x":1},}"#,
            br#"{"id":"a","inputs":null}"#,
            br#"{"score":"1","inputs":{}}"#,
            br#"{"time":1,"inputs":{}}"#,
            br#"{"id":"tab	here","inputs":{}}"#,
            b"{\"id\":\"\xff\",\"inputs\":{}}",
            br#"{"id":"a","inputs":{"x":tru}}"#,
            br#"[1]"#,
            br#""#,
        ];
        for line in lines {
            assert!(parse(line).is_none(), "{:?}", String::from_utf8_lossy(line));
        }
        for line in [
            &br#"{}"#[..],
            br#"{"inputs":{}}"#,
            br#"{"id":-9223372036854775808,"inputs":{"x":0.1,"y":-1.5e-7,"z":123456789.000001}}"#,
            br#"{"id":true,"prediction":"yes","status":null,"inputs":{"a":false}}"#,
        ] {
            assert!(parse(line).is_some(), "{:?}", String::from_utf8_lossy(line));
            agree(line);
        }
    }
}
