//! GitHub Actions expressions, as far as our workflows and actions use them: literals, context
//! paths (`github.event.pull_request.number`, `steps.train.outputs.run-id`), `!`, `==`, `!=`,
//! `&&`, `||`, parentheses and the functions `contains`, `startsWith`, `format`, `toJSON`,
//! `fromJSON`, `success`, `always`, `failure`. Anything else is an error naming it, and so is a
//! path into `steps`, `inputs`, `needs`, `matrix`, `env` or `github` that leads nowhere: a
//! misspelt output must fail the run, not become an empty string.

use serde_json::{json, Map, Value};

/// The contexts an expression can read. `vars` and `secrets` that are not set read as '' (as
/// on GitHub: a repository need not define them); every other miss is an error.
#[derive(Debug, Clone, Default)]
pub struct Contexts {
    pub roots: Map<String, Value>,
}

impl Contexts {
    fn lookup(&self, path: &[String]) -> Result<Value, String> {
        let root = &path[0];
        let Some(mut v) = self.roots.get(root) else {
            return Err(format!("unknown context {root:?} in {}", path.join(".")));
        };
        let lenient = root == "vars" || root == "secrets";
        for (i, key) in path.iter().enumerate().skip(1) {
            match v.get(key.as_str()) {
                Some(next) => v = next,
                None if lenient => return Ok(json!("")),
                None => {
                    return Err(format!(
                        "{} is not set (no {key:?} in {})",
                        path.join("."),
                        path[..i].join(".")
                    ))
                }
            }
        }
        Ok(v.clone())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Num(f64),
    Ident(String),
    Op(&'static str),
}

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated string in {text:?}")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        if let Some(op) = ["||", "&&", "==", "!="].into_iter().find(|o| *o == two) {
            out.push(Tok::Op(op));
            i += 2;
            continue;
        }
        if let Some(op) = ["!", "(", ")", ","].into_iter().find(|o| o.starts_with(c)) {
            out.push(Tok::Op(op));
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            out.push(Tok::Num(s.parse().map_err(|_| format!("bad number {s}"))?));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_-.".contains(chars[i]))
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        return Err(format!("the harness does not evaluate {c:?} in {text:?}"));
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    at: usize,
    /// Inside the side of `&&`/`||` that short-circuits: parsed, not evaluated (its misses are
    /// no error, as on GitHub).
    quiet: u32,
    cx: &'a Contexts,
    text: &'a str,
}

pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// A value as GitHub writes it into a string.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Value::Number(_), _)
        | (_, Value::Number(_))
        | (Value::Bool(_), _)
        | (_, Value::Bool(_)) => {
            let num = |v: &Value| match v {
                Value::Number(n) => n.as_f64(),
                Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
                Value::String(s) if s.is_empty() => Some(0.0),
                Value::String(s) => s.trim().parse().ok(),
                Value::Null => Some(0.0),
                _ => None,
            };
            num(a).is_some() && num(a) == num(b)
        }
        _ => a == b,
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<Value, String> {
        let mut left = self.and()?;
        while self.eat("||") {
            let skip = truthy(&left);
            self.quiet += u32::from(skip);
            let right = self.and();
            self.quiet -= u32::from(skip);
            let right = right?;
            if !skip {
                left = right;
            }
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Value, String> {
        let mut left = self.eq()?;
        while self.eat("&&") {
            let skip = !truthy(&left);
            self.quiet += u32::from(skip);
            let right = self.eq();
            self.quiet -= u32::from(skip);
            let right = right?;
            if !skip {
                left = right;
            }
        }
        Ok(left)
    }
    fn eq(&mut self) -> Result<Value, String> {
        let left = self.unary()?;
        if self.eat("==") {
            let right = self.unary()?;
            return Ok(json!(equal(&left, &right)));
        }
        if self.eat("!=") {
            let right = self.unary()?;
            return Ok(json!(!equal(&left, &right)));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Value, String> {
        if self.eat("!") {
            return Ok(json!(!truthy(&self.unary()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Value, String> {
        let tok = self
            .toks
            .get(self.at)
            .cloned()
            .ok_or_else(|| format!("expression ends early: {:?}", self.text))?;
        self.at += 1;
        match tok {
            Tok::Str(s) => Ok(json!(s)),
            Tok::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => Ok(json!(n as i64)),
            Tok::Num(n) => Ok(json!(n)),
            Tok::Op("(") => {
                let v = self.or()?;
                if !self.eat(")") {
                    return Err(format!("missing ) in {:?}", self.text));
                }
                Ok(v)
            }
            Tok::Ident(id) if self.peek() == Some(&Tok::Op("(")) => {
                self.at += 1;
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.or()?);
                        if self.eat(")") {
                            break;
                        }
                        if !self.eat(",") {
                            return Err(format!("expected , or ) in {:?}", self.text));
                        }
                    }
                }
                call(&id, &args)
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Ok(json!(true)),
                "false" => Ok(json!(false)),
                "null" => Ok(Value::Null),
                _ => {
                    let path: Vec<String> = id.split('.').map(str::to_string).collect();
                    match self.cx.lookup(&path) {
                        Err(_) if self.quiet > 0 => Ok(Value::Null),
                        other => other,
                    }
                }
            },
            Tok::Op(op) => Err(format!("unexpected {op} in {:?}", self.text)),
        }
    }
}

fn call(name: &str, args: &[Value]) -> Result<Value, String> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
    Ok(match name {
        "success" | "always" => json!(true),
        "failure" | "cancelled" => json!(false),
        "contains" => match arg(0) {
            Value::Array(items) => json!(items.iter().any(|x| equal(x, &arg(1)))),
            v => json!(text_of(&v)
                .to_lowercase()
                .contains(&text_of(&arg(1)).to_lowercase())),
        },
        "startsWith" => json!(text_of(&arg(0))
            .to_lowercase()
            .starts_with(&text_of(&arg(1)).to_lowercase())),
        "format" => {
            let mut s = text_of(&arg(0));
            for (i, a) in args.iter().enumerate().skip(1) {
                s = s.replace(&format!("{{{}}}", i - 1), &text_of(a));
            }
            json!(s)
        }
        "toJSON" => json!(serde_json::to_string_pretty(&arg(0)).unwrap_or_default()),
        "fromJSON" => serde_json::from_str(&text_of(&arg(0)))
            .map_err(|e| format!("fromJSON({:?}): {e}", text_of(&arg(0))))?,
        other => {
            return Err(format!(
                "the harness does not evaluate the function {other}()"
            ))
        }
    })
}

/// Evaluates one expression (the text between `${{` and `}}`).
pub fn eval(text: &str, cx: &Contexts) -> Result<Value, String> {
    let mut p = Parser {
        toks: lex(text)?,
        at: 0,
        quiet: 0,
        cx,
        text,
    };
    let v = p.or()?;
    if p.at != p.toks.len() {
        return Err(format!("cannot evaluate the rest of {text:?}"));
    }
    Ok(v)
}

/// A string with `${{ … }}` in it: one whole expression keeps its value's type; otherwise
/// each is written into the text.
pub fn interpolate(text: &str, cx: &Contexts) -> Result<Value, String> {
    let trimmed = text.trim();
    if trimmed.starts_with("${{") && trimmed.ends_with("}}") && trimmed.matches("${{").count() == 1
    {
        return eval(&trimmed[3..trimmed.len() - 2], cx);
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unterminated ${{{{ in {text:?}"))?;
        out.push_str(&text_of(&eval(&after[..end], cx)?));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(json!(out))
}

/// Every string inside `v` interpolated.
pub fn interpolate_all(v: &Value, cx: &Contexts) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => interpolate(s, cx)?,
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| interpolate_all(x, cx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => {
            let mut m = Map::new();
            for (k, x) in o {
                m.insert(k.clone(), interpolate_all(x, cx)?);
            }
            Value::Object(m)
        }
        other => other.clone(),
    })
}

#[test]
fn expressions_evaluate_as_github_does_and_misses_are_errors() {
    let mut cx = Contexts::default();
    cx.roots.insert("github".into(), json!({"repository": "acme/churn", "event": {"pull_request": {"head": {"repo": {"full_name": "acme/churn"}}}}}));
    cx.roots
        .insert("inputs".into(), json!({"environment": "", "run-id": "r1"}));
    cx.roots.insert(
        "steps".into(),
        json!({"train": {"outputs": {"run-id": "r1"}}}),
    );
    cx.roots.insert("vars".into(), json!({}));
    let ev = |t: &str| eval(t, &cx);
    assert_eq!(
        ev("github.event.pull_request.head.repo.full_name == github.repository").unwrap(),
        json!(true)
    );
    assert_eq!(
        ev("inputs.environment || 'staging'").unwrap(),
        json!("staging")
    );
    assert_eq!(ev("!(inputs.environment != '')").unwrap(), json!(true));
    assert_eq!(
        ev("contains(fromJSON('[\"a\",\"b\"]'), 'B')").unwrap(),
        json!(true)
    );
    assert_eq!(ev("format('{0}-{1}', 'a', 1)").unwrap(), json!("a-1"));
    assert_eq!(ev("vars.MLOPS_BUILD_ARGS").unwrap(), json!(""));
    assert!(ev("steps.train.outputs.run_id")
        .unwrap_err()
        .contains("steps.train.outputs.run_id"));
    assert!(ev("steps.tran.outputs.run-id").is_err());
    assert!(ev("hashFiles('x')").unwrap_err().contains("hashFiles"));
    assert!(ev("a < b").is_err());
    // The side that short-circuits is not evaluated.
    assert_eq!(ev("false && steps.nope.outputs.x").unwrap(), json!(false));
    assert_eq!(ev("'a' || steps.nope.outputs.x").unwrap(), json!("a"));
    assert!(ev("true && steps.nope.outputs.x").is_err());
    assert_eq!(
        interpolate("mlops-${{ inputs.run-id }}-x", &cx).unwrap(),
        json!("mlops-r1-x")
    );
}
