//! MLflow's calls in its own terms: experiments, runs found by a tag, batches of metrics /
//! params / tags within MLflow's limits, dataset inputs, artifacts, registered models, model
//! versions and aliases.

use serde_json::{json, Value};

use super::client::{Mlflow, MlflowError, Result};

/// MLflow's limits per `runs/log-batch` call.
pub(crate) const MAX_METRICS: usize = 1000;
pub(crate) const MAX_PARAMS: usize = 100;
pub(crate) const MAX_TAGS: usize = 100;
/// At most this many entities (metrics + params + tags) in one call.
pub(crate) const MAX_ENTITIES: usize = 1000;
/// The longest param value MLflow stores.
pub(crate) const MAX_PARAM_VALUE: usize = 6000;

/// The tag that finds the MLflow run of an mlops run again.
pub(crate) const RUN_ID_TAG: &str = "mlops.run_id";

/// An MLflow run as the tracker needs it.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    pub artifact_uri: String,
}

fn run_info(v: &Value) -> Option<RunInfo> {
    let info = &v["info"];
    Some(RunInfo {
        run_id: info["run_id"].as_str()?.to_string(),
        experiment_id: info["experiment_id"].as_str()?.to_string(),
        artifact_uri: info["artifact_uri"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}

fn malformed(client: &Mlflow, what: &str) -> MlflowError {
    MlflowError::Other {
        url: client.ui_base(),
        message: format!("the answer to {what} lacks what MLflow documents"),
    }
}

/// The id of the experiment `name`, created when missing.
pub(crate) async fn experiment(client: &Mlflow, name: &str) -> Result<String> {
    match client
        .get("experiments/get-by-name", &[("experiment_name", name)])
        .await
    {
        Ok(v) => {
            return v["experiment"]["experiment_id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| malformed(client, "experiments/get-by-name"))
        }
        Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => {}
        Err(e) => return Err(e),
    }
    match client
        .post("experiments/create", &json!({"name": name}), false)
        .await
    {
        Ok(v) => v["experiment_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| malformed(client, "experiments/create")),
        // Created meanwhile (another job), or our create went through unanswered.
        Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") || e.is_unanswered() => {
            let v = client
                .get("experiments/get-by-name", &[("experiment_name", name)])
                .await?;
            v["experiment"]["experiment_id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| malformed(client, "experiments/get-by-name"))
        }
        Err(e) => Err(e),
    }
}

/// The run tagged `mlops.run_id = run_id` in the experiment, if there is one.
pub(crate) async fn find_run(
    client: &Mlflow,
    experiment_id: &str,
    run_id: &str,
) -> Result<Option<RunInfo>> {
    let filter = format!("tags.`{RUN_ID_TAG}` = '{}'", run_id.replace('\'', "\\'"));
    let v = client
        .post(
            "runs/search",
            &json!({"experiment_ids": [experiment_id], "filter": filter, "max_results": 2,
                    "order_by": ["attributes.start_time ASC"]}),
            true,
        )
        .await?;
    Ok(v["runs"]
        .as_array()
        .and_then(|runs| runs.first())
        .and_then(run_info))
}

/// The run of `run_id` in the experiment: found by its tag, or created with `tags`.
pub(crate) async fn find_or_create_run(
    client: &Mlflow,
    experiment_id: &str,
    run_id: &str,
    start_ms: i64,
    tags: &[(String, String)],
) -> Result<RunInfo> {
    if let Some(found) = find_run(client, experiment_id, run_id).await? {
        return Ok(found);
    }
    let tags: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let body = json!({"experiment_id": experiment_id, "run_name": run_id,
                      "start_time": start_ms, "tags": tags});
    match client.post("runs/create", &body, false).await {
        Ok(v) => run_info(&v["run"]).ok_or_else(|| malformed(client, "runs/create")),
        // The create may have gone through: look again rather than create a second run.
        Err(e) if e.is_unanswered() => find_run(client, experiment_id, run_id).await?.ok_or(e),
        Err(e) => Err(e),
    }
}

/// A metric as `runs/log-batch` takes it.
#[derive(Debug, Clone)]
pub(crate) struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp_ms: i64,
    pub step: i64,
}

/// Logs metrics, params and tags in as few `runs/log-batch` calls as MLflow's limits allow.
/// The metrics carry their timestamps, so a repeated call stores the same rows: idempotent.
pub(crate) async fn log_batch(
    client: &Mlflow,
    run_id: &str,
    metrics: &[Metric],
    params: &[(String, String)],
    tags: &[(String, String)],
) -> Result<usize> {
    let sizes = batches(metrics.len(), params.len(), tags.len());
    let (mut m, mut p, mut t) = (metrics, params, tags);
    for &(nm, np, nt) in &sizes {
        let body = json!({
            "run_id": run_id,
            "metrics": m[..nm].iter().map(|x| json!({"key": x.key, "value": finite(x.value),
                "timestamp": x.timestamp_ms, "step": x.step})).collect::<Vec<_>>(),
            "params": p[..np].iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
            "tags": t[..nt].iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        });
        client.post("runs/log-batch", &body, true).await?;
        (m, p, t) = (&m[nm..], &p[np..], &t[nt..]);
    }
    Ok(sizes.len())
}

/// How many metrics, params and tags go in each `runs/log-batch` call: as few calls as MLflow's
/// per-call limits allow.
pub(crate) fn batches(metrics: usize, params: usize, tags: usize) -> Vec<(usize, usize, usize)> {
    let (mut m, mut p, mut t) = (metrics, params, tags);
    let mut out = Vec::new();
    while m + p + t > 0 {
        let np = p.min(MAX_PARAMS);
        let nt = t.min(MAX_TAGS);
        let nm = m.min(MAX_METRICS).min(MAX_ENTITIES - np - nt);
        out.push((nm, np, nt));
        (m, p, t) = (m - nm, p - np, t - nt);
    }
    out
}

/// JSON has no NaN or infinity; MLflow's REST API reads them as these strings.
fn finite(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(v)
    }
}

/// One dataset input of a run (MLflow's `DatasetInput`).
#[derive(Debug, Clone)]
pub(crate) struct DatasetInput {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    /// JSON text (`{"uri": …}`).
    pub source: String,
    /// JSON text (`{"mlflow_colspec": [...]}`).
    pub schema: String,
    /// JSON text.
    pub profile: String,
    /// `training` or `evaluation` (the `mlflow.data.context` input tag).
    pub context: String,
    /// Further input tags.
    pub tags: Vec<(String, String)>,
}

/// `runs/log-inputs`: MLflow keeps one dataset per (name, digest) and one input per run, so
/// logging it again changes nothing.
pub(crate) async fn log_inputs(
    client: &Mlflow,
    run_id: &str,
    inputs: &[DatasetInput],
) -> Result<()> {
    let datasets: Vec<Value> = inputs
        .iter()
        .map(|d| {
            let mut tags = vec![json!({"key": "mlflow.data.context", "value": d.context})];
            tags.extend(d.tags.iter().map(|(k, v)| json!({"key": k, "value": v})));
            json!({
                "tags": tags,
                "dataset": {"name": d.name, "digest": d.digest, "source_type": d.source_type,
                            "source": d.source, "schema": d.schema, "profile": d.profile},
            })
        })
        .collect();
    client
        .post(
            "runs/log-inputs",
            &json!({"run_id": run_id, "datasets": datasets}),
            true,
        )
        .await
        .map(|_| ())
}

/// `runs/update`: the status (`RUNNING`, `FINISHED`, `FAILED`, `KILLED`) and end time.
pub(crate) async fn update_run(
    client: &Mlflow,
    run_id: &str,
    status: &str,
    end_ms: Option<i64>,
) -> Result<()> {
    let mut body = json!({"run_id": run_id, "status": status});
    if let Some(end) = end_ms {
        body["end_time"] = json!(end);
    }
    client.post("runs/update", &body, true).await.map(|_| ())
}

/// The artifact proxy path of a run's artifact: `mlflow-artifacts:/1/<run>/artifacts` (or
/// `mlflow-artifacts://host:port/…`) plus `name`. None when the run's artifacts live elsewhere
/// (s3://, a file path): only the proxy is spoken here.
pub(crate) fn artifact_path(artifact_uri: &str, name: &str) -> Option<String> {
    let rest = artifact_uri.strip_prefix("mlflow-artifacts:")?;
    let rest = match rest.strip_prefix("//") {
        // An authority: drop it, the proxy is the server we talk to.
        Some(with_host) => with_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
        None => rest,
    };
    let rest = rest.trim_matches('/');
    Some(if rest.is_empty() {
        name.to_string()
    } else {
        format!("{rest}/{name}")
    })
}

/// Creates the registered model `name` unless it exists.
pub(crate) async fn ensure_registered_model(client: &Mlflow, name: &str) -> Result<()> {
    match client
        .post("registered-models/create", &json!({"name": name}), false)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") || e.is_unanswered() => Ok(()),
        Err(e) => Err(e),
    }
}

/// A model version, by its number.
#[derive(Debug, Clone)]
pub(crate) struct ModelVersion {
    pub version: String,
}

fn model_version(v: &Value) -> Option<ModelVersion> {
    Some(ModelVersion {
        version: v["version"].as_str()?.to_string(),
    })
}

/// The version of registered model `name` whose tag `key` is `value` (the newest when several).
pub(crate) async fn find_version(
    client: &Mlflow,
    name: &str,
    key: &str,
    value: &str,
) -> Result<Option<ModelVersion>> {
    let quote = |s: &str| s.replace('\'', "\\'");
    let filter = format!(
        "name = '{}' AND tags.`{key}` = '{}'",
        quote(name),
        quote(value)
    );
    let v = client
        .get(
            "model-versions/search",
            &[("filter", &filter), ("max_results", "50")],
        )
        .await?;
    let mut versions: Vec<ModelVersion> = v["model_versions"]
        .as_array()
        .map(|vs| vs.iter().filter_map(model_version).collect())
        .unwrap_or_default();
    versions.sort_by_key(|m| m.version.parse::<u64>().unwrap_or(0));
    Ok(versions.pop())
}

/// Creates a version of `name` from `source`, attached to `run_id`, with `tags`.
pub(crate) async fn create_version(
    client: &Mlflow,
    name: &str,
    source: &str,
    run_id: &str,
    tags: &[(String, String)],
) -> Result<ModelVersion> {
    let tags: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let v = client
        .post(
            "model-versions/create",
            &json!({"name": name, "source": source, "run_id": run_id, "tags": tags}),
            false,
        )
        .await?;
    model_version(&v["model_version"]).ok_or_else(|| malformed(client, "model-versions/create"))
}

pub(crate) async fn set_version_tag(
    client: &Mlflow,
    name: &str,
    version: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    client
        .post(
            "model-versions/set-tag",
            &json!({"name": name, "version": version, "key": key, "value": value}),
            true,
        )
        .await
        .map(|_| ())
}

/// Points alias `alias` of `name` at `version` (moving it if it pointed elsewhere).
pub(crate) async fn set_alias(
    client: &Mlflow,
    name: &str,
    alias: &str,
    version: &str,
) -> Result<()> {
    client
        .post(
            "registered-models/alias",
            &json!({"name": name, "alias": alias, "version": version}),
            true,
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_stay_within_mlflows_limits() {
        assert!(batches(0, 0, 0).is_empty());
        assert_eq!(batches(3, 2, 1), vec![(3, 2, 1)]);
        let calls = batches(2500, 250, 150);
        for &(m, p, t) in &calls {
            assert!(
                m <= MAX_METRICS && p <= MAX_PARAMS && t <= MAX_TAGS,
                "{calls:?}"
            );
            assert!(m + p + t <= MAX_ENTITIES, "{calls:?}");
        }
        let sum = calls
            .iter()
            .fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2));
        assert_eq!(sum, (2500, 250, 150));
        // 250 params need three calls; the metrics ride along.
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert_eq!(calls[0], (800, 100, 100));
    }

    #[test]
    fn artifact_paths_under_the_proxy() {
        assert_eq!(
            artifact_path("mlflow-artifacts:/1/abc/artifacts", "run.json").as_deref(),
            Some("1/abc/artifacts/run.json")
        );
        assert_eq!(
            artifact_path("mlflow-artifacts://127.0.0.1:5050/1/abc/artifacts/", "a/b").as_deref(),
            Some("1/abc/artifacts/a/b")
        );
        assert_eq!(artifact_path("s3://bucket/1/abc/artifacts", "x"), None);
        assert_eq!(artifact_path("/srv/mlruns/1/abc", "x"), None);
    }
}
