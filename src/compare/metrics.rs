//! metrics.json: a JSON object of numbers; nested objects flatten with dots (DVC's convention:
//! `{"per_class": {"1": {"f1": 0.9}}}` is the metric `per_class.1.f1`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use indexmap::IndexMap;
use serde_json::Value;

/// Reads and flattens a metrics file; any value that is not a finite number is an error naming
/// the file and the key. A step wrote it: it is opened as a step output (a regular file, no link
/// followed, at most 1 MiB).
pub fn load_metrics(path: &Path) -> Result<IndexMap<String, f64>> {
    use crate::outputs;
    let bytes =
        outputs::read_limited(path, outputs::METRICS_LIMIT, "metrics.json").map_err(|e| {
            if e.is_not_found() {
                anyhow::anyhow!(
                    "cannot read {}: the evaluation step must write metrics.json",
                    path.display()
                )
            } else {
                e.into()
            }
        })?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{} is not UTF-8 text: {e}", path.display()))?;
    parse_metrics(&text).with_context(|| format!("{} is not a valid metrics file", path.display()))
}

pub fn parse_metrics(text: &str) -> Result<IndexMap<String, f64>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "invalid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        )
    })?;
    let Value::Object(map) = value else {
        bail!("expected a JSON object of numbers, such as {{\"f1\": 0.91}}");
    };
    let mut out = IndexMap::new();
    flatten("", &map, &mut out)?;
    if out.is_empty() {
        bail!("no metrics in it: expected a JSON object of numbers, such as {{\"f1\": 0.91}}");
    }
    Ok(out)
}

fn flatten(
    prefix: &str,
    map: &serde_json::Map<String, Value>,
    out: &mut IndexMap<String, f64>,
) -> Result<()> {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Number(n) => {
                let x = n.as_f64().filter(|x| x.is_finite());
                match x {
                    Some(x) => {
                        out.insert(key, x);
                    }
                    None => bail!("metric {key:?} is not a finite number"),
                }
            }
            Value::Object(inner) => flatten(&key, inner, out)?,
            other => bail!(
                "metric {key:?} is {}, not a number (NaN and infinity are not metrics: fix the evaluation code)",
                match other {
                    Value::String(s) => format!("the string {s:?}"),
                    Value::Null => "null".into(),
                    Value::Bool(b) => format!("the boolean {b}"),
                    Value::Array(_) => "a list".into(),
                    _ => "something else".into(),
                }
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_nested_objects() {
        let m = parse_metrics(r#"{"f1": 0.9, "per_class": {"1": {"f1": 0.8}}, "n": 3}"#).unwrap();
        assert_eq!(m["f1"], 0.9);
        assert_eq!(m["per_class.1.f1"], 0.8);
        assert_eq!(m["n"], 3.0);
    }

    #[test]
    fn a_metrics_file_is_read_as_a_step_output() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret.json");
        std::fs::write(&secret, r#"{"SENTINEL": "SENTINEL"}"#).unwrap();
        let link = dir.path().join("metrics.json");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let e = format!("{:#}", load_metrics(&link).unwrap_err());
        assert!(e.contains("metrics.json is a symbolic link"), "{e}");
        assert!(!e.contains("SENTINEL"), "{e}");
        let e = format!(
            "{:#}",
            load_metrics(&dir.path().join("none.json")).unwrap_err()
        );
        assert!(
            e.contains("the evaluation step must write metrics.json"),
            "{e}"
        );
        std::fs::write(dir.path().join("big.json"), vec![b' '; (1 << 20) + 1]).unwrap();
        let e = format!(
            "{:#}",
            load_metrics(&dir.path().join("big.json")).unwrap_err()
        );
        assert!(e.contains("larger than the 1 MiB limit"), "{e}");
    }

    #[test]
    fn rejects_non_numbers() {
        let e = parse_metrics(r#"{"f1": "NaN"}"#).unwrap_err().to_string();
        assert!(e.contains("\"f1\""), "{e}");
        assert!(parse_metrics("[1]").is_err());
        assert!(parse_metrics("{}").is_err());
        assert!(parse_metrics(r#"{"a": null}"#).is_err());
        assert!(parse_metrics("{nope")
            .unwrap_err()
            .to_string()
            .contains("line 1"));
    }
}
