//! The evidence attached to a packaged image, as in-toto statements: SLSA provenance v1 (what
//! built it from what) and `https://mlops.dev/evaluation/v1` (how it scored against the
//! champion, on which data, at which commit).

use anyhow::Result;
use serde_json::{json, Value};

use crate::compare::Comparison;
use crate::oci::digest::Digest;
use crate::oci::image::Packaged;
use crate::runs::{RunDir, Side};

pub const STATEMENT: &str = "https://in-toto.io/Statement/v1";
pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";
pub const EVALUATION: &str = "https://mlops.dev/evaluation/v1";

fn subject(name: &str, digest: &Digest) -> Value {
    json!([{"name": name, "digest": digest_set(digest)}])
}

/// An in-toto digest set: `{"sha256": "<hex>"}`.
fn digest_set(digest: &Digest) -> Value {
    json!({ digest.algorithm().name(): digest.hex() })
}

/// Both statements for a run's packaged image named `name` (`registry/repository`).
pub fn statements(run: &RunDir, packaged: &Packaged, name: &str) -> Result<Vec<Value>> {
    let record = run.read_record()?;
    let read = |p: std::path::PathBuf| -> Option<Value> {
        std::fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    };
    // metrics.json is the evaluation step's writing: read as a step output (no link followed).
    let read_metrics = |side: Side| -> Result<Option<Value>> {
        use crate::outputs;
        match outputs::read_limited(&run.metrics(side), outputs::METRICS_LIMIT, "metrics.json") {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    };
    let mut deps = Vec::new();
    if !record.git.commit.is_empty() {
        let source = packaged
            .annotations
            .get("org.opencontainers.image.source")
            .cloned()
            .unwrap_or_default();
        deps.push(json!({"uri": format!("git+{source}@{}", record.git.commit), "digest": {"gitCommit": record.git.commit}}));
    }
    deps.push(json!({"uri": packaged.base_image, "digest": digest_set(&packaged.base_digest)}));
    for (ds, d) in &record.data {
        let digest = Digest::parse(&d.digest)
            .map_err(|e| anyhow::anyhow!("run {}, dataset {ds}: {e}", record.run_id))?;
        deps.push(
            json!({"uri": format!("dataset:{ds}/{}", d.path), "digest": digest_set(&digest)}),
        );
    }
    let train = record.steps.get("train");
    let provenance = json!({
        "_type": STATEMENT,
        "subject": subject(name, &packaged.digest),
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": "https://mlops.dev/package/v1",
                "externalParameters": {"model": record.model, "params": record.params},
                "internalParameters": {"run_id": record.run_id, "git_dirty": record.git.dirty, "model_layer": packaged.model_layer.digest},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": format!("https://mlops.dev/mlops@{}", env!("CARGO_PKG_VERSION"))},
                "metadata": {
                    "invocationId": record.run_id,
                    "startedOn": train.map(|t| t.started_at.clone()),
                    "finishedOn": train.map(|t| t.finished_at.clone()),
                },
            },
        },
    });
    let compare: Option<Comparison> = crate::fsutil::read_json(&run.compare_json()).ok();
    let evaluation = json!({
        "_type": STATEMENT,
        "subject": subject(name, &packaged.digest),
        "predicateType": EVALUATION,
        "predicate": {
            "run_id": record.run_id,
            "model": record.model,
            "git_commit": record.git.commit,
            "data": record.data,
            "metrics": {
                "challenger": read_metrics(Side::Challenger)?,
                "champion": read_metrics(Side::Champion)?,
            },
            "verdict": compare.as_ref().map(|c| c.verdict),
            "against": compare.as_ref().map(|c| c.against.clone()),
            "reasons": compare.as_ref().map(|c| c.reasons.clone()),
            "data_check": read(run.data_check_json()).map(|d| d["passed"].clone()),
        },
    });
    Ok(vec![provenance, evaluation])
}
