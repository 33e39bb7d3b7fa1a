//! Forges carry a promotion as a change someone reviews and merges: a branch with one commit
//! that pins the new digest, plus a description (the report). `local` does it in the local git
//! repository with plain git, for running the loop without a hosting service; `github` does it
//! through GitHub's REST API and opens one pull request per branch.

pub mod github;
pub mod local;
mod local_issues;

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::config::{ForgeConfig, ForgeKind};

/// Where promotions are proposed, and (through [`Incidents`]) where monitoring incidents are
/// tracked and retraining is started.
pub trait Forge: Incidents {
    /// The content of `rel` (relative to mlops.yaml's directory) on the branch `change` would
    /// land on, if that branch exists and has the file.
    fn read(&mut self, change: &Change, rel: &str) -> Result<Option<String>>;
    /// Creates or updates the branch and its proposal; the same content twice makes no commit.
    fn propose(&mut self, change: &Change) -> Result<Proposal>;
}

/// The forge configured in mlops.yaml, for the project at `root`; `github` holds what the
/// github forge needs beyond mlops.yaml (API, credentials, retries), from the command line.
pub fn open(
    root: &std::path::Path,
    config: &ForgeConfig,
    github: &github::Settings,
) -> Result<Box<dyn Forge>> {
    Ok(match config.kind {
        ForgeKind::Local => Box::new(local::Local {
            root: root.to_path_buf(),
        }),
        ForgeKind::Github => Box::new(github::GitHub::new(root, config, github)?),
    })
}

/// What to propose: files (paths relative to the repository root of mlops.yaml) and texts.
#[derive(Debug, Clone)]
pub struct Change {
    /// `mlops/promote/<model>/<env>`.
    pub branch: String,
    /// The branch the change targets (forge.base).
    pub base: String,
    pub files: Vec<(String, Vec<u8>)>,
    pub title: String,
    pub body: String,
    /// The trailer that marks commits made by mlops (`Mlops-Promotion: <model>/<env>`).
    pub trailer: String,
}

/// What the forge did.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    /// The branch that carries the change (a fresh one when the usual one had a human commit).
    pub branch: String,
    /// The new commit, or None when nothing changed.
    pub commit: Option<String>,
    /// Where the change can be seen: a pull request URL, or the branch for the local forge.
    pub url: String,
    /// The description, written where the forge keeps it (local: a file).
    pub body_path: Option<PathBuf>,
    /// Anything a reviewer should know (e.g. why a fresh branch was used).
    pub notes: Vec<String>,
}

/// An issue as the forge keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub number: u64,
    /// Where people see it: the issue's page, or the local forge's file.
    pub url: String,
    pub body: String,
}

/// What `mlops monitor` asks of a forge: one issue per incident, found again by the hidden
/// marker its body starts with, and an event that starts the retraining workflow.
pub trait Incidents {
    /// The open issue whose body starts with `marker` (a hidden HTML comment) and that this
    /// forge's own account wrote; a marked issue by anyone else is left alone (anyone can
    /// write the marker).
    fn find_issue(&mut self, marker: &str) -> Result<Option<Issue>>;
    /// Opens an issue (with forge.labels).
    fn open_issue(&mut self, title: &str, body: &str) -> Result<Issue>;
    /// Replaces an issue's title and body.
    fn update_issue(&mut self, number: u64, title: &str, body: &str) -> Result<()>;
    /// Adds a comment to an issue.
    fn comment(&mut self, number: u64, body: &str) -> Result<()>;
    fn close_issue(&mut self, number: u64) -> Result<()>;
    /// Sends `event_type` with `payload` to whatever starts workflows (github:
    /// repository_dispatch; local: the forge's event log). Returns where it went, in words.
    fn dispatch(&mut self, event_type: &str, payload: &serde_json::Value) -> Result<String>;
}
