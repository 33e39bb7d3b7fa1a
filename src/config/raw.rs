//! The `mlops.yaml` file as written (version 1). Every struct denies unknown keys; optional
//! keys are `Option`s here and get their defaults in [`super::resolved`]. The JSON Schema in
//! `schemas/mlops.schema.json` is generated from these types.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An mlops.yaml file, version 1.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "mlops.yaml")]
pub struct RawConfig {
    /// Format version of this file; only 1 exists.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// Model name: lowercase letters, digits and dashes, starting with a letter.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]*$"))]
    pub model: String,
    pub data: RawData,
    pub train: RawTrain,
    pub evaluate: RawEvaluate,
    // Required by the schema, which is checked before these types are filled: a gate needs at
    // least one rule, or every run would promote.
    #[schemars(required)]
    pub compare: Option<RawCompare>,
    pub package: Option<RawPackage>,
    pub sign: Option<RawSign>,
    pub environments: Option<IndexMap<String, RawEnvironment>>,
    pub forge: Option<RawForge>,
    /// Webhooks told about checks, verdicts, promotions, deploys and monitoring incidents.
    pub notify: Option<Vec<super::notify::RawNotify>>,
    pub tracking: Option<RawTracking>,
}

/// Datasets, the label column, and the checks `mlops data check` applies.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    pub train: RawDataset,
    pub test: RawDataset,
    /// Label column; left out of drift checks by default.
    pub target: Option<String>,
    pub checks: Option<RawChecks>,
}

/// A dataset: a file (.csv or .parquet) or a directory of them, relative to mlops.yaml.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDataset {
    #[schemars(length(min = 1))]
    pub path: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChecks {
    pub schema: Option<SchemaCheck>,
    pub changed: Option<ChangedCheck>,
    pub drift: Option<RawDrift>,
}

/// How the columns of a dataset must match the accepted reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SchemaCheck {
    /// Same names, order and types.
    Strict,
    /// Every reference column present with the same type.
    Subset,
    Off,
}

/// Whether the data must differ from the accepted reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangedCheck {
    Required,
    Warn,
    Off,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDrift {
    pub test: Option<DriftTest>,
    /// Significance level for ks and chi2: a column drifts when p < p_value.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub p_value: Option<f64>,
    /// Threshold for psi and wasserstein: a column drifts when the statistic > threshold.
    #[schemars(range(min = 0.0))]
    pub threshold: Option<f64>,
    /// A dataset fails when more than this share of its columns drifted.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_drifted_share: Option<f64>,
    /// Columns left out of drift tests.
    pub exclude: Option<Vec<String>>,
}

/// The two-sample test used per column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DriftTest {
    /// ks for numeric columns with more than 5 distinct values, chi2 otherwise.
    Auto,
    Ks,
    Chi2,
    Psi,
    Wasserstein,
}

/// The training step: an image (or a build) and a command, run under the step protocol.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTrain {
    /// Image to run; exclusive with `build`.
    pub image: Option<String>,
    /// Build the image through the engine instead of using `image`.
    pub build: Option<RawBuild>,
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    /// Hyper-parameters, passed as /mlops/params.json, MLOPS_PARAMS and MLOPS_PARAM_<NAME>.
    pub params: Option<IndexMap<String, serde_json::Value>>,
    /// Extra environment variables for the container.
    pub env: Option<IndexMap<String, String>>,
    pub resources: Option<RawResources>,
    /// Give the container a network; off by default.
    pub network: Option<bool>,
    /// Show the steps `.git/config` (where a checkout persists its token) and `.mlops` under
    /// /workspace; off by default (MLOPS_GIT_COMMIT names the commit). Containers only.
    pub mount_git: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBuild {
    /// Build context directory, relative to mlops.yaml (default ".").
    pub context: Option<String>,
    /// Dockerfile, relative to the context (default "Dockerfile").
    pub dockerfile: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawResources {
    /// CPUs (fractions allowed).
    #[schemars(range(min = 0.0))]
    pub cpus: Option<f64>,
    /// Memory limit: a number of bytes with an optional unit, e.g. 512m, 4g.
    pub memory: Option<String>,
    #[schemars(range(min = 0))]
    pub gpus: Option<u32>,
    /// Wall-clock limit, e.g. 90s, 30m, 2h.
    pub timeout: Option<String>,
    /// Most processes and threads the container may hold at once (default 4096).
    #[schemars(range(min = 1))]
    pub pids: Option<u32>,
}

/// The evaluation step; image defaults to train.image.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEvaluate {
    pub image: Option<String>,
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    pub champion: Option<ChampionMode>,
}

/// How the champion's metrics are obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChampionMode {
    /// Score the champion's model again on the same test set.
    Reevaluate,
    /// Use the metrics recorded when the champion was promoted.
    Recorded,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCompare {
    /// The environment whose pinned model is the champion.
    pub against: Option<String>,
    /// The metrics the gate judges, each with at least one rule; at least one metric.
    #[schemars(extend("minProperties" = 1))]
    pub metrics: IndexMap<String, RawMetricRule>,
    pub significance: Option<RawSignificance>,
}

/// Rules for one metric, all ANDed.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMetricRule {
    pub direction: Direction,
    /// Absolute floor (ceiling when minimizing), inclusive.
    pub threshold: Option<f64>,
    /// Required improvement over the champion, in the metric's unit.
    #[schemars(range(min = 0.0))]
    pub min_absolute_change: Option<f64>,
    /// Required improvement over the champion, as a fraction of |champion|.
    #[schemars(range(min = 0.0))]
    pub min_relative_change: Option<f64>,
    /// Largest allowed loss against the champion, in the metric's unit.
    #[schemars(range(min = 0.0))]
    pub max_regression: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Maximize,
    Minimize,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSignificance {
    pub method: Option<SignificanceMethod>,
    #[schemars(range(min = 0.5, max = 0.9999))]
    pub confidence: Option<f64>,
    #[schemars(range(min = 100, max = 1000000))]
    pub resamples: Option<u32>,
    /// Require the confidence interval of the improvement to exclude zero.
    pub require: Option<bool>,
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignificanceMethod {
    Bootstrap,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPackage {
    /// Where the image is pushed: a registry repository (host[:port]/path) or oci:PATH.
    pub repository: String,
    /// Serving image the model layer is added to; exclusive with `dockerfile`.
    pub base_image: Option<String>,
    /// Build the serving image through the engine instead of `base_image`.
    pub dockerfile: Option<String>,
    /// Where the model directory lands in the image (default /model).
    pub model_path: Option<String>,
    pub command: Option<Vec<String>>,
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// Compression of the model layer (default none: weights rarely compress).
    pub compression: Option<Compression>,
}

pub use crate::oci::layer::Compression;

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSign {
    /// A key file path, or env:VAR holding the key (cosign's encrypted PEM).
    pub key: Option<String>,
    /// Public key used by `mlops verify`/`deploy` (default: the key path with .pub).
    pub public_key: Option<String>,
    /// Fulcio/Rekor with the GitHub Actions OIDC token instead of a key.
    pub keyless: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    /// An environment that must have had the digest before this one takes it.
    pub requires: Option<String>,
    pub deploy: RawDeploy,
    pub monitor: Option<super::monitor::RawMonitor>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDeploy {
    pub target: DeployTarget,
    /// docker: host port on 127.0.0.1.
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// docker: host address to publish on (default 127.0.0.1).
    pub host: Option<String>,
    /// docker: HTTP path that answers 200 when healthy (default /health).
    pub health: Option<String>,
    /// kubernetes: minijinja template of the manifests.
    pub template: Option<String>,
    /// kubernetes: directory the rendered manifests are written to.
    pub output: Option<String>,
    /// kubernetes: run `kubectl apply` on the output.
    pub apply: Option<bool>,
    /// command: the command to run.
    pub command: Option<Vec<String>>,
    /// Host directory the serving container writes captured predictions to (docker: mounted at
    /// /mlops/capture; kubernetes: the template's `capture`; command: MLOPS_CAPTURE_DIR).
    #[schemars(length(min = 1))]
    pub capture: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeployTarget {
    Docker,
    Kubernetes,
    Command,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawForge {
    #[serde(rename = "type")]
    pub kind: ForgeKind,
    /// owner/name; default $GITHUB_REPOSITORY.
    pub repository: Option<String>,
    /// Base branch of promotion pull requests (default main).
    pub base: Option<String>,
    pub labels: Option<Vec<String>>,
    pub reviewers: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    Github,
    Local,
}

/// Where runs and model versions are mirrored: an MLflow tracking server. The uri may come
/// from `MLFLOW_TRACKING_URI` instead (which wins when both are set, so CI can point a
/// committed file at another server).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTracking {
    #[serde(rename = "type")]
    pub kind: TrackingKind,
    /// The server, `http://host:port` or `https://…` (default: $MLFLOW_TRACKING_URI).
    #[schemars(regex(pattern = r"^https?://[^\s]+$"))]
    pub uri: Option<String>,
    /// The MLflow experiment of the runs (default: the model name).
    #[schemars(length(min = 1, max = 500))]
    pub experiment: Option<String>,
    /// true: a tracking failure fails the step (exit 2); false (the default): a warning.
    pub required: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrackingKind {
    Mlflow,
}
