//! `mlops monitor <env>`: the rows the deployed model served in the window (its capture files
//! or an export) against what the model was accepted with: the input schema and per-feature
//! drift against the training reference (the data check's tests), the prediction distribution
//! against the model's own predictions on the frozen test set, live quality once labels arrived
//! (the significance tests' metric code), error rate and p95 latency. Too few rows is "not
//! enough data": never a pass, never an alert.

pub mod checks;
pub mod fastline;
pub mod labels;
pub mod predictions;
pub mod record;
pub mod render;
pub mod window;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, MonitorConfig, MonitorInputs};
use crate::data::check::ColumnReport;
use crate::oci::digest::Digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    Alert,
    NotEnoughData,
}

/// What the alert side needs from one monitor run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub model: String,
    pub environment: String,
    /// The digest the environment pins ("sha256:…").
    pub digest: String,
    pub health: Health,
    /// One line each: "drift: x3, x7", "f1 0.71 < 0.8", …
    pub reasons: Vec<String>,
    /// The full report.md text.
    pub report_markdown: String,
    /// RFC 3339.
    pub generated_at: String,
}

/// The state of one section of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Alert,
    NotEnoughData,
    /// Nothing to check against (no reference, no labels, no limit configured).
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub status: Status,
    /// What the reader should know: why it was skipped, what could not be computed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Section {
    fn new(status: Status) -> Section {
        Section {
            status,
            notes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SchemaSection {
    #[serde(flatten)]
    pub section: Section,
    pub differences: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftSection {
    #[serde(flatten)]
    pub section: Section,
    /// Rows in the current sample the tests ran on.
    pub sample_rows: usize,
    pub columns: Vec<ColumnReport>,
    pub drifted_share: Option<f64>,
    pub max_drifted_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PredictionSection {
    #[serde(flatten)]
    pub section: Section,
    /// Test-set predictions of the pinned digest.
    pub reference_rows: usize,
    /// `prediction` and, when both sides have one, `score`.
    pub columns: Vec<ColumnReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricResult {
    pub name: String,
    pub value: Option<f64>,
    pub threshold: f64,
    pub direction: crate::config::Direction,
    pub passed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct QualitySection {
    #[serde(flatten)]
    pub section: Section,
    /// Window rows whose id has a label.
    pub labelled_rows: usize,
    pub metrics: Vec<MetricResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LimitSection {
    #[serde(flatten)]
    pub section: Section,
    pub value: Option<f64>,
    pub limit: Option<f64>,
}

/// One monitor run, as monitor.json holds it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub environment: String,
    pub digest: String,
    pub run_id: String,
    pub generated_at: String,
    pub since: String,
    pub inputs: String,
    pub health: Health,
    pub reasons: Vec<String>,
    pub rows: u64,
    pub min_rows: u64,
    pub files: usize,
    pub error_rows: u64,
    pub corrupt_lines: u64,
    pub corrupt_examples: Vec<String>,
    pub other_digest_rows: u64,
    pub outside_window_rows: u64,
    pub schema: SchemaSection,
    pub drift: DriftSection,
    pub predictions: PredictionSection,
    pub quality: QualitySection,
    pub errors: LimitSection,
    pub latency: LimitSection,
}

impl Report {
    pub fn summary(&self) -> Summary {
        Summary {
            model: self.model.clone(),
            environment: self.environment.clone(),
            digest: self.digest.clone(),
            health: self.health,
            reasons: self.reasons.clone(),
            report_markdown: render::markdown(self),
            generated_at: self.generated_at.clone(),
        }
    }
}

/// What to monitor: the environment, and the start of the window (default: now − window).
pub struct Request<'a> {
    pub environment: &'a str,
    pub since: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// `.mlops/monitor/<env>/`: monitor.json, report.md and the incident state.
pub fn state_dir(root: &Path, env: &str) -> PathBuf {
    root.join(".mlops/monitor").join(env)
}

/// The environment's monitor block, or an error saying how to add one.
pub fn monitor_config<'a>(config: &'a Config, env: &str) -> Result<&'a MonitorConfig> {
    let env_cfg = config.environment(env)?;
    env_cfg.monitor.as_ref().with_context(|| {
        format!(
            "environments.{env}.monitor is not set in {}: add it (for example `monitor: {{inputs: capture, window: 7d, min_rows: 500}}` with deploy.capture set)",
            config.file.display()
        )
    })
}

/// Runs every check over the window of `request.environment`.
pub fn run(config: &Config, request: &Request) -> Result<Report> {
    let env = request.environment;
    let mcfg = monitor_config(config, env)?;
    let state = crate::environment::read(config, env)?.with_context(|| {
        format!(
            "{} does not exist: nothing is deployed in {env} to monitor (promote and merge first)",
            crate::environment::path(&config.root, env).display()
        )
    })?;
    let since = request.since.unwrap_or_else(|| {
        request.now - chrono::Duration::from_std(mcfg.window).unwrap_or(chrono::Duration::days(7))
    });
    let reference = crate::data::reference::load(&config.root, "train")?;
    let target = config.data.target.as_deref();
    let columns: Vec<String> = reference
        .as_ref()
        .map(|r| {
            r.schema
                .keys()
                .filter(|c| Some(c.as_str()) != target)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let (sample_size, seed) = reference.as_ref().map_or(
        (
            crate::data::profile::DEFAULT_SAMPLE_SIZE,
            crate::data::profile::DEFAULT_SEED,
        ),
        |r| (r.sample.size, r.sample.seed),
    );
    let (path, capture) = match &mcfg.inputs {
        MonitorInputs::Capture(p) => (p.as_path(), true),
        MonitorInputs::Path(p) => (p.as_path(), false),
    };
    let files = window::files(path, capture, since)?;
    let filter = window::Filter {
        digest: state.digest.as_str(),
        since,
        columns: &columns,
        sample_size,
        seed,
        keep_predictions: mcfg.labels.is_some(),
    };
    let started = std::time::Instant::now();
    let w = window::read(&files, &filter)?;
    tracing::debug!(
        "read {} rows from {} files in {:?}",
        w.rows,
        files.len(),
        started.elapsed()
    );
    let digest: &Digest = &state.digest;
    let reference_predictions = predictions::load(&config.root, digest)?;
    let mut report = checks::evaluate(
        config,
        mcfg,
        &checks::Inputs {
            window: &w,
            columns: &columns,
            reference: reference.as_ref(),
            reference_predictions: reference_predictions.as_ref(),
        },
    )?;
    tracing::debug!(
        "checks done {:?} after the start of the read",
        started.elapsed()
    );
    report.model = config.model.clone();
    report.environment = env.to_string();
    report.digest = state.digest.to_string();
    report.run_id = state.run_id.clone();
    report.generated_at = request
        .now
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    report.since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    report.inputs = path.display().to_string();
    Ok(report)
}

/// Writes monitor.json and report.md under `.mlops/monitor/<env>/` (each atomically).
pub fn save(root: &Path, report: &Report) -> Result<PathBuf> {
    let dir = state_dir(root, &report.environment);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    crate::fsutil::write_json_atomic(&dir.join("monitor.json"), report)?;
    crate::fsutil::write_atomic(&dir.join("report.md"), render::markdown(report).as_bytes())?;
    Ok(dir)
}

#[cfg(test)]
mod tests;
