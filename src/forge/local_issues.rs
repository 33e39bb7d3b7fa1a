//! Incidents on the local forge: issues are JSON files in `<git dir>/mlops/issues/<n>.json`
//! (next to the proposals' descriptions, outside the working tree), and dispatched events are
//! appended to `<git dir>/mlops/dispatches.jsonl`. Every issue there was written by mlops, so
//! "our own account" is the file's `author`, which is always `mlops`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::local::Local;
use super::{Incidents, Issue};

const AUTHOR: &str = "mlops";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    number: u64,
    /// `open` or `closed`.
    state: String,
    title: String,
    body: String,
    author: String,
    #[serde(default)]
    comments: Vec<String>,
    updated_at: String,
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Local {
    fn mlops_dir(&self) -> Result<PathBuf> {
        let git_dir = crate::git::run(&self.root, &["rev-parse", "--absolute-git-dir"])
            .with_context(|| {
                format!(
                    "{} is not in a git repository: the local forge keeps issues and events in its git directory",
                    self.root.display()
                )
            })?;
        Ok(PathBuf::from(git_dir.trim()).join("mlops"))
    }

    fn issues_dir(&self) -> Result<PathBuf> {
        Ok(self.mlops_dir()?.join("issues"))
    }

    fn all_issues(&self) -> Result<Vec<(PathBuf, Stored)>> {
        let dir = self.issues_dir()?;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for path in entries.flatten().map(|e| e.path()) {
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            match crate::fsutil::read_json::<Stored>(&path) {
                Ok(s) => out.push((path, s)),
                Err(e) => tracing::warn!(
                    "{}: not an issue of the local forge ({e:#}); skipped",
                    path.display()
                ),
            }
        }
        out.sort_by_key(|(_, s)| s.number);
        Ok(out)
    }

    fn issue_path(&self, number: u64) -> Result<PathBuf> {
        Ok(self.issues_dir()?.join(format!("{number}.json")))
    }

    fn load(&self, number: u64) -> Result<Stored> {
        let path = self.issue_path(number)?;
        crate::fsutil::read_json(&path)
            .with_context(|| format!("the local forge has no issue {number} ({})", path.display()))
    }

    fn store(&self, issue: &Stored) -> Result<Issue> {
        let path = self.issue_path(issue.number)?;
        crate::fsutil::write_atomic(&path, &serde_json::to_vec_pretty(issue)?)?;
        Ok(Issue {
            number: issue.number,
            url: path.display().to_string(),
            body: issue.body.clone(),
        })
    }
}

fn edit(local: &Local, number: u64, change: impl FnOnce(&mut Stored)) -> Result<()> {
    let mut issue = local.load(number)?;
    change(&mut issue);
    issue.updated_at = now();
    local.store(&issue).map(drop)
}

impl Incidents for Local {
    fn find_issue(&mut self, marker: &str) -> Result<Option<Issue>> {
        let starts = format!("{marker}\n");
        Ok(self
            .all_issues()?
            .into_iter()
            .find(|(_, s)| s.state == "open" && s.author == AUTHOR && s.body.starts_with(&starts))
            .map(|(path, s)| Issue {
                number: s.number,
                url: path.display().to_string(),
                body: s.body,
            }))
    }

    fn open_issue(&mut self, title: &str, body: &str) -> Result<Issue> {
        let number = self.all_issues()?.last().map_or(1, |(_, s)| s.number + 1);
        self.store(&Stored {
            number,
            state: "open".into(),
            title: title.to_string(),
            body: body.to_string(),
            author: AUTHOR.into(),
            comments: Vec::new(),
            updated_at: now(),
        })
    }

    fn update_issue(&mut self, number: u64, title: &str, body: &str) -> Result<()> {
        edit(self, number, |i| {
            i.title = title.to_string();
            i.body = body.to_string();
        })
    }

    fn comment(&mut self, number: u64, body: &str) -> Result<()> {
        edit(self, number, |i| i.comments.push(body.to_string()))
    }

    fn close_issue(&mut self, number: u64) -> Result<()> {
        edit(self, number, |i| i.state = "closed".into())
    }

    fn dispatch(&mut self, event_type: &str, payload: &Value) -> Result<String> {
        let log = self.mlops_dir()?.join("dispatches.jsonl");
        append_line(
            &log,
            &serde_json::json!({"event_type": event_type, "client_payload": payload, "at": now()}),
        )?;
        Ok(format!("{event_type} recorded in {}", log.display()))
    }
}

fn append_line(path: &Path, value: &Value) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot append to {}", path.display()))?;
    writeln!(f, "{value}").with_context(|| format!("cannot append to {}", path.display()))
}
