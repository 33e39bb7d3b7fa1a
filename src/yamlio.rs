//! YAML files the toolkit writes (environment files): emitted from JSON values in a stable
//! form — keys in the value's order, strings double-quoted with JSON escapes (valid YAML) — and
//! read back through the same span-aware parser as mlops.yaml.

use anyhow::{anyhow, Result};
use serde_json::Value;

pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    emit(value, 0, &mut out, true);
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
        Value::String(s) => serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        _ => String::new(),
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty()) || matches!(v, Value::Object(o) if !o.is_empty())
}

fn emit(v: &Value, indent: usize, out: &mut String, top: bool) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, val) in map {
                let key = if k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                    && !k.is_empty()
                {
                    k.clone()
                } else {
                    scalar(&Value::String(k.clone()))
                };
                if is_block(val) {
                    out.push_str(&format!("{pad}{key}:\n"));
                    emit(val, indent + 2, out, false);
                } else {
                    out.push_str(&format!("{pad}{key}: {}\n", scalar(val)));
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_block(item) {
                    let mut inner = String::new();
                    emit(item, indent + 2, &mut inner, false);
                    // First line of the item goes after the dash.
                    let trimmed = inner.trim_start_matches(' ');
                    out.push_str(&format!("{pad}- {trimmed}"));
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => {
            let _ = top;
            out.push_str(&format!("{pad}{}\n", scalar(other)));
        }
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
}
