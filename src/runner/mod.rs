//! Running a step (train, evaluate) under the step protocol: the same paths and variables in a
//! container (`docker`, the default) and on the host (`process`, for debugging).

pub(crate) mod context;
pub mod docker;
pub mod logs;
pub mod process;
mod supervise;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use indexmap::IndexMap;

use crate::config::{ImageSource, Resources};
use crate::runs::ImageInfo;

pub use logs::LogSink;

/// Where the protocol puts things inside a container.
pub const CONTAINER_WORKSPACE: &str = "/workspace";
pub const CONTAINER_DATA: &str = "/mlops/data";
pub const CONTAINER_MODEL: &str = "/mlops/model";
pub const CONTAINER_OUTPUTS: &str = "/mlops/outputs";
pub const CONTAINER_PARAMS: &str = "/mlops/params.json";

/// One dataset handed to a step.
#[derive(Debug, Clone)]
pub struct DatasetMount {
    pub name: String,
    /// File or directory on the host (absolute).
    pub host_path: PathBuf,
}

/// Everything a runner needs to execute one step.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// `train`, `evaluate-challenger`, `evaluate-champion`: log prefix and MLOPS_STEP.
    pub step: String,
    pub run_id: String,
    pub image: ImageSource,
    pub command: Vec<String>,
    /// The repository (read-only for the step).
    pub workspace: PathBuf,
    pub datasets: Vec<DatasetMount>,
    pub model_dir: PathBuf,
    pub model_writable: bool,
    pub outputs_dir: PathBuf,
    /// Host file holding params as JSON (written by the caller).
    pub params_file: PathBuf,
    pub params: IndexMap<String, serde_json::Value>,
    pub env: IndexMap<String, String>,
    pub resources: Resources,
    pub network: bool,
    /// Show `.git/config` and `.mlops` under /workspace (containers; hidden by default).
    pub mount_git: bool,
    /// The run's commit (`MLOPS_GIT_COMMIT`; empty outside a git repository).
    pub git_commit: String,
    /// Where the step's log is written (tee of what is streamed).
    pub log_file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepOutcome {
    Ok,
    Failed,
    Timeout,
    Oom,
    Interrupted,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Ok => "ok",
            StepOutcome::Failed => "failed",
            StepOutcome::Timeout => "timeout",
            StepOutcome::Oom => "oom",
            StepOutcome::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StepResult {
    pub outcome: StepOutcome,
    pub exit_code: Option<i64>,
    pub image: Option<ImageInfo>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    /// The last lines of output, for error messages.
    pub tail: Vec<String>,
}

impl StepResult {
    /// Why the step (`what`, as a sentence's subject) did not succeed; None when it did. An
    /// interrupted step is the error [`crate::interrupt::Interrupted`]: its container is gone.
    pub fn failure(
        &self,
        what: &str,
        run_id: &str,
    ) -> Result<Option<String>, crate::interrupt::Interrupted> {
        Ok(Some(match self.outcome {
            StepOutcome::Ok => return Ok(None),
            StepOutcome::Interrupted => {
                return Err(crate::interrupt::Interrupted(format!(
                    "{what} interrupted; its container was removed (run {run_id})"
                )))
            }
            StepOutcome::Failed => format!(
                "{what} failed with exit code {}",
                self.exit_code.unwrap_or(-1)
            ),
            StepOutcome::Timeout => format!("{what} timed out"),
            StepOutcome::Oom => {
                format!("{what} was killed: out of memory (raise train.resources.memory)")
            }
        }))
    }
}

/// Failures of the runner itself (not of the user's command): exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("cannot reach the Docker engine ({endpoint}): {source}\n  help: start it (scripts/services does) or set DOCKER_HOST; `--runner process` runs the step on this machine instead")]
    Engine {
        endpoint: String,
        source: bollard::errors::Error,
    },
    #[error("image {image} is not present and cannot be pulled: {reason}\n  help: build it, push it to a registry this machine can reach, or fix train.image")]
    ImageUnavailable { image: String, reason: String },
    #[error("building the image from {dockerfile} failed: {reason}")]
    Build { dockerfile: String, reason: String },
    #[error("cannot start {step}: {reason}")]
    Start { step: String, reason: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Docker(#[from] bollard::errors::Error),
}

#[async_trait]
pub trait Runner: Send + Sync {
    fn name(&self) -> &'static str;
    async fn run(&self, spec: &StepSpec) -> Result<StepResult, RunnerError>;
}

/// Paths as the step sees them: container paths for docker, host paths for process.
pub struct ProtocolPaths {
    pub data_dir: String,
    /// Dataset name → path of the file or directory as the step sees it.
    pub datasets: Vec<(String, String)>,
    pub model_dir: String,
    pub outputs_dir: String,
    pub params_file: String,
}

/// The protocol's environment variables, identical for both runners but for the paths.
pub fn protocol_env(spec: &StepSpec, paths: &ProtocolPaths) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.push(("MLOPS_RUN_ID".into(), spec.run_id.clone()));
    env.push(("MLOPS_STEP".into(), spec.step.clone()));
    env.push(("MLOPS_GIT_COMMIT".into(), spec.git_commit.clone()));
    env.push(("MLOPS_DATA_DIR".into(), paths.data_dir.clone()));
    for (name, path) in &paths.datasets {
        let var = format!(
            "MLOPS_DATA_{}",
            name.to_ascii_uppercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        env.push((var, path.clone()));
    }
    env.push(("MLOPS_MODEL_DIR".into(), paths.model_dir.clone()));
    env.push(("MLOPS_OUTPUT_DIR".into(), paths.outputs_dir.clone()));
    env.push(("MLOPS_PARAMS_FILE".into(), paths.params_file.clone()));
    env.push((
        "MLOPS_PARAMS".into(),
        serde_json::to_string(&spec.params).unwrap_or_else(|_| "{}".into()),
    ));
    for (name, value) in &spec.params {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        env.push((crate::config::param_env_name(name), text));
    }
    env
}

/// The file name a file dataset gets inside its directory (`/mlops/data/train/train.csv`).
pub fn dataset_file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into())
}

/// Where a step runs (`--runner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunnerKind {
    /// In a container on the Docker engine (the default).
    Docker,
    /// A process on this machine, to debug a step.
    Process,
}

/// The runner of that kind (docker connects to the engine).
pub async fn select(kind: RunnerKind) -> Result<Box<dyn Runner>, RunnerError> {
    match kind {
        RunnerKind::Process => Ok(Box::new(process::ProcessRunner)),
        RunnerKind::Docker => Ok(Box::new(docker::DockerRunner::connect().await?)),
    }
}
