//! `environments.<env>.monitor`: what `mlops monitor <env>` reads (captured traffic or an export,
//! labels), the window, and the checks with their limits; `on_alert` says what an alert does.
//! Raw (as written, schema-generating) and resolved types in one place, so that the block stays
//! separate from the rest of the configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::raw::{Direction, RawDrift};
use super::resolved::DriftConfig;
use super::units::parse_duration;

/// Rows of the window below which a monitor says "not enough data" (never a pass or an alert).
pub const DEFAULT_MIN_ROWS: u64 = 500;
pub const DEFAULT_WINDOW: &str = "7d";

/// Monitoring of the model this environment runs.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    /// `capture` (the JSON Lines files the serving container writes to deploy.capture; the
    /// default) or `{path: …}`: an export (.csv, .parquet or .jsonl; file or directory).
    pub inputs: Option<RawMonitorInputs>,
    /// Ground truth that arrived later, joined to the captured rows on `key`.
    pub labels: Option<RawLabels>,
    /// How far back the rows are read, such as 7d or 12h (default 7d).
    pub window: Option<String>,
    /// Fewer rows than this in the window is "not enough data" (default 500).
    #[schemars(range(min = 1))]
    pub min_rows: Option<u64>,
    /// Per-feature drift against the accepted training reference; keys as in
    /// data.checks.drift, whose values are the defaults.
    pub drift: Option<RawDrift>,
    /// Live quality once labels arrived: metric name → threshold (a floor, a ceiling for
    /// metrics that are minimized).
    pub metrics: Option<IndexMap<String, RawMonitorMetric>>,
    pub errors: Option<RawErrors>,
    pub latency: Option<RawLatency>,
    /// What an alert does: dispatch retraining, open (update) one issue, send webhooks.
    pub on_alert: Option<Vec<OnAlert>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RawMonitorInputs {
    Keyword(InputsKeyword),
    Path(RawInputsPath),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputsKeyword {
    /// The files under deploy.capture.
    Capture,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInputsPath {
    /// A .csv, .parquet or .jsonl file, or a directory of them, relative to mlops.yaml.
    #[schemars(length(min = 1))]
    pub path: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLabels {
    /// A .csv, .parquet or .jsonl file, or a directory of them, relative to mlops.yaml.
    #[schemars(length(min = 1))]
    pub path: String,
    /// The column that matches a captured row's `id` (default id).
    pub key: Option<String>,
    /// The label column (default: data.target, else label).
    pub target: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMonitorMetric {
    pub threshold: f64,
    /// Default: compare.metrics.<name>.direction, else minimize for rmse and mae.
    pub direction: Option<Direction>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawErrors {
    /// Largest share of requests answered with an error.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_rate: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLatency {
    /// Largest 95th percentile of latency_ms.
    #[schemars(range(min = 0.0))]
    pub p95_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnAlert {
    /// repository_dispatch mlops-retrain (github), a trigger file (local; `--run` runs it).
    Retrain,
    /// One open issue per model and environment, updated in place, closed when healthy.
    Issue,
    /// The webhooks of the top-level `notify:` list.
    Notify,
}

/// Where the monitored rows come from.
#[derive(Debug, Clone, Serialize)]
pub enum MonitorInputs {
    /// The capture directory (deploy.capture), as seen from this machine.
    Capture(PathBuf),
    /// An export: a file or a directory of .csv, .parquet and .jsonl files.
    Path(PathBuf),
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelsConfig {
    pub path: PathBuf,
    pub key: String,
    pub target: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonitorMetric {
    pub threshold: f64,
    pub direction: Direction,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonitorConfig {
    pub inputs: MonitorInputs,
    pub labels: Option<LabelsConfig>,
    #[serde(serialize_with = "secs")]
    pub window: Duration,
    pub min_rows: u64,
    pub drift: DriftConfig,
    pub metrics: IndexMap<String, MonitorMetric>,
    pub max_error_rate: Option<f64>,
    pub max_p95_latency_ms: Option<f64>,
    pub on_alert: Vec<OnAlert>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// What the resolver needs from the rest of mlops.yaml.
pub struct Inherited<'a> {
    pub root: &'a Path,
    pub env: &'a str,
    pub capture: Option<&'a Path>,
    pub drift: &'a DriftConfig,
    pub target: Option<&'a str>,
    pub compare_direction: &'a dyn Fn(&str) -> Option<Direction>,
}

/// Minimized metrics when neither the monitor nor compare says otherwise.
pub fn default_direction(metric: &str) -> Direction {
    match metric {
        "rmse" | "mae" | "latency_ms" => Direction::Minimize,
        _ => Direction::Maximize,
    }
}

pub fn resolve(raw: &RawMonitor, cx: &Inherited<'_>) -> Result<MonitorConfig, String> {
    let inputs = match &raw.inputs {
        None | Some(RawMonitorInputs::Keyword(InputsKeyword::Capture)) => {
            let dir = cx.capture.ok_or_else(|| {
                format!(
                    "environments.{}.monitor.inputs is capture, but environments.{}.deploy.capture is not set",
                    cx.env, cx.env
                )
            })?;
            MonitorInputs::Capture(dir.to_path_buf())
        }
        Some(RawMonitorInputs::Path(p)) => MonitorInputs::Path(cx.root.join(&p.path)),
    };
    let d = raw.drift.as_ref();
    let base = cx.drift;
    let drift = DriftConfig {
        test: d.and_then(|d| d.test).unwrap_or(base.test),
        p_value: d.and_then(|d| d.p_value).unwrap_or(base.p_value),
        threshold: d.and_then(|d| d.threshold).unwrap_or(base.threshold),
        max_drifted_share: d
            .and_then(|d| d.max_drifted_share)
            .unwrap_or(base.max_drifted_share),
        exclude: d
            .and_then(|d| d.exclude.clone())
            .unwrap_or_else(|| base.exclude.clone()),
    };
    let metrics = raw
        .metrics
        .iter()
        .flatten()
        .map(|(name, m)| {
            let direction = m
                .direction
                .or_else(|| (cx.compare_direction)(name))
                .unwrap_or_else(|| default_direction(name));
            (
                name.clone(),
                MonitorMetric {
                    threshold: m.threshold,
                    direction,
                },
            )
        })
        .collect();
    Ok(MonitorConfig {
        inputs,
        labels: raw.labels.as_ref().map(|l| LabelsConfig {
            path: cx.root.join(&l.path),
            key: l.key.clone().unwrap_or_else(|| "id".into()),
            target: l
                .target
                .clone()
                .or_else(|| cx.target.map(str::to_string))
                .unwrap_or_else(|| "label".into()),
        }),
        window: parse_duration(raw.window.as_deref().unwrap_or(DEFAULT_WINDOW))?,
        min_rows: raw.min_rows.unwrap_or(DEFAULT_MIN_ROWS),
        drift,
        metrics,
        max_error_rate: raw.errors.as_ref().map(|e| e.max_rate),
        max_p95_latency_ms: raw.latency.as_ref().map(|l| l.p95_ms),
        on_alert: raw.on_alert.clone().unwrap_or_default(),
    })
}
