//! What the tracker writes, read from the run directory: params and tags in MLflow's
//! conventions, metrics, dataset inputs, the evidence files, the model version's tags.

use std::path::PathBuf;

use serde_json::json;

use super::api::{self, DatasetInput, Metric};
use crate::config::Config;
use crate::data::read::Kind;
use crate::oci::image::Packaged;
use crate::runs::{RunDir, RunRecord, Side};

/// The largest evidence file uploaded as an artifact (predictions of a big test set fit).
pub(crate) const MAX_ARTIFACT_BYTES: u64 = 256 << 20;
/// Sampled rows when a dataset has to be profiled for its input (no matching reference).
const PROFILE_SAMPLE: usize = 1000;

/// Keys and values: params, or tags.
pub(crate) type Pairs = Vec<(String, String)>;

fn pair(k: impl Into<String>, v: impl Into<String>) -> (String, String) {
    (k.into(), v.into())
}

/// A value as MLflow stores a param: text, at most its length limit.
fn param_value(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.chars().take(api::MAX_PARAM_VALUE).collect()
}

/// The tags a new MLflow run is created with: its name, the tag that finds it again, the
/// commit and the user.
pub(crate) fn create_tags(
    run_id: &str,
    record: Option<&RunRecord>,
    user: &str,
) -> Vec<(String, String)> {
    let mut tags = vec![
        pair("mlflow.runName", run_id),
        pair(api::RUN_ID_TAG, run_id),
    ];
    if !user.is_empty() {
        tags.push(pair("mlflow.user", user));
    }
    if let Some(r) = record.filter(|r| !r.git.commit.is_empty()) {
        tags.push(pair("mlflow.source.git.commit", &r.git.commit));
    }
    tags
}

/// The run's params (`train.params` with the overrides applied, as training saw them) and its
/// tags: MLflow's (`mlflow.source.*`, `mlflow.user`, `mlflow.runName`) and ours.
pub(crate) fn params_and_tags(config: &Config, record: &RunRecord, user: &str) -> (Pairs, Pairs) {
    let params = record
        .params
        .iter()
        .map(|(k, v)| (k.clone(), param_value(v)))
        .collect();
    let mut tags = create_tags(&record.run_id, Some(record), user);
    let source = config
        .file
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_else(|| "mlops.yaml".into());
    tags.push(pair("mlflow.source.name", source));
    tags.push(pair("mlflow.source.type", "PROJECT"));
    tags.push(pair("mlops.model", &record.model));
    tags.push(pair("mlops.git.dirty", record.git.dirty.to_string()));
    for (step, s) in &record.steps {
        if let Some(image) = &s.image {
            tags.push(pair(format!("mlops.image.{step}"), &image.reference));
            if !image.digest.is_empty() {
                tags.push(pair(format!("mlops.image.{step}.digest"), &image.digest));
            }
        }
        tags.push(pair(format!("mlops.step.{step}"), &s.outcome));
    }
    for (name, d) in &record.data {
        tags.push(pair(format!("mlops.data.{name}.digest"), &d.digest));
    }
    (params, tags)
}

fn metrics_of(path: &std::path::Path, prefix: &str, at: i64) -> Vec<Metric> {
    if !crate::outputs::present(path) {
        return Vec::new();
    }
    match crate::compare::metrics::load_metrics(path) {
        Ok(m) => m
            .into_iter()
            .map(|(k, value)| Metric {
                key: format!("{prefix}{k}"),
                value,
                timestamp_ms: at,
                step: 0,
            })
            .collect(),
        Err(e) => {
            tracing::warn!("tracking: {} is not logged: {e:#}", path.display());
            Vec::new()
        }
    }
}

/// The optional metrics.json of training, as `train.<metric>`.
pub(crate) fn train_metrics(run: &RunDir) -> Vec<Metric> {
    let at = chrono::Utc::now().timestamp_millis();
    metrics_of(&run.train_outputs().join("metrics.json"), "train.", at)
}

/// The challenger's metrics as they are, the champion's as `champion.<metric>`.
pub(crate) fn eval_metrics(run: &RunDir) -> Vec<Metric> {
    let at = chrono::Utc::now().timestamp_millis();
    let mut out = metrics_of(&run.metrics(Side::Challenger), "", at);
    out.extend(metrics_of(&run.metrics(Side::Champion), "champion.", at));
    out
}

/// MLflow's column type names (its `mlflow_colspec` schema).
fn colspec_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Integer => "long",
        Kind::Float => "double",
        Kind::Boolean => "boolean",
        Kind::Categorical => "string",
    }
}

/// MLflow stores at most 36 characters of a dataset digest; the full one is in the profile
/// and the input tag `mlops.digest`.
fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.chars().take(36).collect()
}

/// The profile of a dataset: the accepted reference's when it has this digest, else a scan.
fn profile_of(config: &Config, name: &str, digest: &str) -> Option<crate::data::profile::Profile> {
    if let Ok(Some(reference)) = crate::data::reference::load(&config.root, name) {
        if reference.digest == digest {
            return Some(reference.profile);
        }
    }
    let path = &config.data.datasets.get(name)?.abs_path;
    match crate::data::check::scan_dataset(path, PROFILE_SAMPLE, 0) {
        Ok(scanned) => Some(scanned.profile),
        Err(e) => {
            tracing::warn!("tracking: dataset {name} is logged without its profile: {e:#}");
            None
        }
    }
}

/// Each dataset of the run as an MLflow dataset input: digest, source, schema and profile;
/// `train` in context `training`, the others (the frozen test set) in `evaluation`.
pub(crate) fn datasets(config: &Config, record: &RunRecord) -> Vec<DatasetInput> {
    record
        .data
        .iter()
        .map(|(name, d)| {
            let profile = profile_of(config, name, &d.digest);
            let schema = profile.as_ref().map(|p| {
                let cols: Vec<_> = p
                    .columns
                    .iter()
                    .map(|(col, c)| json!({"type": colspec_type(c.kind), "name": col}))
                    .collect();
                json!({"mlflow_colspec": cols})
            });
            let profile_json = profile.as_ref().map(|p| {
                let columns: serde_json::Map<String, serde_json::Value> = p
                    .columns
                    .iter()
                    .map(|(col, c)| {
                        (
                            col.clone(),
                            json!({"type": colspec_type(c.kind), "nulls": c.nulls,
                            "min": c.min, "max": c.max, "mean": c.mean, "std": c.std}),
                        )
                    })
                    .collect();
                json!({"num_rows": p.rows, "num_elements": p.rows * p.columns.len() as u64,
                       "digest": d.digest, "columns": columns})
            });
            DatasetInput {
                name: format!("{}-{name}", record.model),
                digest: short_digest(&d.digest),
                source_type: "local".into(),
                source: json!({"uri": d.path}).to_string(),
                schema: schema.unwrap_or_else(|| json!({})).to_string(),
                profile: profile_json
                    .unwrap_or_else(|| json!({"digest": d.digest}))
                    .to_string(),
                context: if name == "train" {
                    "training"
                } else {
                    "evaluation"
                }
                .into(),
                tags: vec![pair("mlops.digest", &d.digest)],
            }
        })
        .collect()
}

/// The evidence files that exist, with their artifact names.
pub(crate) fn evidence_files(run: &RunDir) -> Vec<(String, PathBuf)> {
    let candidates = [
        ("run.json", run.run_json()),
        ("compare.json", run.compare_json()),
        ("report.md", run.report_md()),
        ("metrics.json", run.metrics(Side::Challenger)),
        ("predictions.csv", run.predictions(Side::Challenger)),
        ("champion/metrics.json", run.metrics(Side::Champion)),
        ("champion/predictions.csv", run.predictions(Side::Champion)),
    ];
    candidates
        .into_iter()
        .filter(|(_, p)| crate::outputs::present(p))
        .map(|(n, p)| (n.to_string(), p))
        .collect()
}

/// The source of a model version: the image by digest.
pub(crate) fn image_source(packaged: &Packaged) -> String {
    format!("docker://{}", packaged.reference)
}

/// A model version's tags: the image, its digest, the run and the gate's verdict.
pub(crate) fn version_tags(run: &RunDir, packaged: &Packaged) -> Vec<(String, String)> {
    let mut tags = vec![
        pair("mlops.image", &packaged.reference),
        pair("mlops.digest", packaged.digest.to_string()),
        pair(api::RUN_ID_TAG, &run.id),
    ];
    let comparison: Option<crate::compare::Comparison> =
        crate::fsutil::read_json(&run.compare_json()).ok();
    if let Some(c) = comparison {
        tags.push(pair("mlops.verdict", super::verdict(&c)));
    }
    let signed: Option<serde_json::Value> = crate::fsutil::read_json(&run.sign_json()).ok();
    if let Some(sig) = signed.as_ref().and_then(|s| s["signature"].as_str()) {
        tags.push(pair("mlops.signature", sig));
    }
    tags
}
