//! Labels that arrived after the predictions: `monitor.labels {path, key, target}`, a .csv or
//! .jsonl file or a directory of them, joined to the captured rows on `key` = the row's `id`.

use anyhow::{bail, Context, Result};

use super::record::Scalar;
use crate::config::monitor::LabelsConfig;

/// id → label, as numbers (true/false count as 1/0). A later file's label for the same id wins.
pub fn read(cfg: &LabelsConfig) -> Result<Vec<(String, f64)>> {
    let files = super::window::files(&cfg.path, false, chrono::DateTime::<chrono::Utc>::MIN_UTC)
        .context("monitor.labels.path")?;
    let mut out = indexmap::IndexMap::new();
    for file in files {
        let name = file.to_string_lossy();
        if name.ends_with(".csv") {
            read_csv(&file, cfg, &mut out)?;
        } else if name.ends_with(".jsonl") || name.ends_with(".json") {
            read_jsonl(&file, cfg, &mut out)?;
        } else {
            bail!(
                "{}: labels are read from .csv and .jsonl files",
                file.display()
            );
        }
    }
    Ok(out.into_iter().collect())
}

fn read_csv(
    path: &std::path::Path,
    cfg: &LabelsConfig,
    out: &mut indexmap::IndexMap<String, f64>,
) -> Result<()> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let header = csv.headers()?.clone();
    let col = |n: &str| header.iter().position(|h| h == n);
    let (Some(k), Some(t)) = (col(&cfg.key), col(&cfg.target)) else {
        bail!(
            "{}: the header must name the key column {:?} and the target column {:?} (monitor.labels.key, .target)",
            path.display(),
            cfg.key,
            cfg.target
        );
    };
    for rec in csv.records() {
        let rec = rec.with_context(|| format!("cannot read {}", path.display()))?;
        let (Some(id), Some(y)) = (rec.get(k), rec.get(t)) else {
            continue;
        };
        if let Some(y) = Scalar::from_field(y.trim()).as_f64() {
            out.insert(id.to_string(), y);
        }
    }
    Ok(())
}

fn read_jsonl(
    path: &std::path::Path,
    cfg: &LabelsConfig,
    out: &mut indexmap::IndexMap<String, f64>,
) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a JSON object", path.display(), i + 1))?;
        let id = match v.get(&cfg.key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        let y = match v.get(&cfg.target) {
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            Some(serde_json::Value::Bool(b)) => Some(if *b { 1.0 } else { 0.0 }),
            Some(serde_json::Value::String(s)) => Scalar::from_field(s).as_f64(),
            _ => None,
        };
        if let Some(y) = y {
            out.insert(id, y);
        }
    }
    Ok(())
}
