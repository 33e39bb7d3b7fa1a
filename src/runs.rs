//! Run directories: `.mlops/runs/<run-id>/` (git-ignored) holds everything one run produced.
//! `run.json` is the record; `latest` names the newest run.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::fsutil;

pub const RUNS_DIR: &str = ".mlops/runs";

#[derive(Debug, Clone)]
pub struct RunDir {
    pub id: String,
    pub path: PathBuf,
}

/// Which model an evaluation scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Challenger,
    Champion,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Challenger => "challenger",
            Side::Champion => "champion",
        }
    }
}

impl RunDir {
    pub fn run_json(&self) -> PathBuf {
        self.path.join("run.json")
    }
    pub fn model_dir(&self) -> PathBuf {
        self.path.join("model")
    }
    /// Outputs of the training step (optional metrics.json, plots).
    pub fn train_outputs(&self) -> PathBuf {
        self.path.join("train")
    }
    pub fn eval_dir(&self, side: Side) -> PathBuf {
        self.path.join("eval").join(side.as_str())
    }
    pub fn metrics(&self, side: Side) -> PathBuf {
        self.eval_dir(side).join("metrics.json")
    }
    pub fn predictions(&self, side: Side) -> PathBuf {
        self.eval_dir(side).join("predictions.csv")
    }
    pub fn compare_json(&self) -> PathBuf {
        self.path.join("compare.json")
    }
    pub fn report_md(&self) -> PathBuf {
        self.path.join("report.md")
    }
    pub fn data_check_json(&self) -> PathBuf {
        self.path.join("data-check.json")
    }
    pub fn package_json(&self) -> PathBuf {
        self.path.join("package.json")
    }
    pub fn sign_json(&self) -> PathBuf {
        self.path.join("sign.json")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.path.join("logs")
    }

    pub fn read_record(&self) -> Result<RunRecord> {
        fsutil::read_json(&self.run_json())
    }

    pub fn write_record(&self, record: &RunRecord) -> Result<()> {
        fsutil::write_json_atomic(&self.run_json(), record)
    }
}

pub fn runs_root(repo_root: &Path) -> PathBuf {
    repo_root.join(RUNS_DIR)
}

/// A new run id: UTC time to the second plus 6 random hex digits, sortable and unique.
pub fn new_run_id() -> String {
    use rand::RngExt;
    let now = chrono::Utc::now();
    format!(
        "{}-{:06x}",
        now.format("%Y%m%dT%H%M%SZ"),
        rand::rng().random_range(0..0x100_0000u32)
    )
}

pub fn create(repo_root: &Path) -> Result<RunDir> {
    let id = new_run_id();
    let path = runs_root(repo_root).join(&id);
    std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(RunDir { id, path })
}

/// Marks `run` as the newest run (`.mlops/runs/latest` holds its id).
pub fn set_latest(repo_root: &Path, run: &RunDir) -> Result<()> {
    fsutil::write_atomic(
        &runs_root(repo_root).join("latest"),
        format!("{}\n", run.id).as_bytes(),
    )
}

/// Opens the run named `id`, or the latest one when `id` is `None`.
pub fn open(repo_root: &Path, id: Option<&str>) -> Result<RunDir> {
    let root = runs_root(repo_root);
    let id = match id {
        Some(id) => id.to_string(),
        None => {
            let latest = root.join("latest");
            match std::fs::read_to_string(&latest) {
                Ok(s) => s.trim().to_string(),
                Err(_) => bail!(
                    "no runs yet in {}: run `mlops train` first, or pass --run ID",
                    root.display()
                ),
            }
        }
    };
    if id.is_empty() || id.contains('/') || id.contains("..") {
        bail!("invalid run id {id:?}");
    }
    let path = root.join(&id);
    if !path.is_dir() {
        bail!("run {id} not found in {}", root.display());
    }
    Ok(RunDir { id, path })
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GitInfo {
    /// Full commit hash; empty outside a git repository.
    pub commit: String,
    /// Uncommitted changes to tracked files when the run started.
    pub dirty: bool,
    /// Committer time of the commit (RFC 3339), used as the image creation time.
    #[serde(default)]
    pub commit_time: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetDigest {
    pub path: String,
    /// `sha256:<hex>` over the files of the dataset (relative path and content).
    pub digest: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageInfo {
    pub reference: String,
    /// Image id (`sha256:...`) as the engine reports it; empty for the process runner.
    pub digest: String,
}

/// One step's execution (train, evaluate challenger, evaluate champion).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub runner: String,
    pub image: Option<ImageInfo>,
    pub command: Vec<String>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_secs: f64,
    pub exit_code: Option<i64>,
    /// `ok`, `failed`, `timeout`, `oom`, `interrupted`.
    pub outcome: String,
    pub log: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub model: String,
    pub git: GitInfo,
    pub params: IndexMap<String, serde_json::Value>,
    pub data: IndexMap<String, DatasetDigest>,
    pub resources: serde_json::Value,
    pub steps: IndexMap<String, StepRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_and_open() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open(dir.path(), None).is_err());
        let run = create(dir.path()).unwrap();
        set_latest(dir.path(), &run).unwrap();
        assert_eq!(open(dir.path(), None).unwrap().id, run.id);
        assert!(open(dir.path(), Some("../x")).is_err());
        assert!(open(dir.path(), Some("nope")).is_err());
    }
}
