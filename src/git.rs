//! The few facts about the repository that runs record: commit, dirty flag, commit time.
//! Uses the `git` command, which every CI runner and laptop has.

use std::path::Path;
use std::process::Command;

use crate::runs::GitInfo;

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Commit, dirty flag and commit time of the repository holding `root`; empty outside git.
pub fn info(root: &Path) -> GitInfo {
    let Some(commit) = git(root, &["rev-parse", "HEAD"]) else {
        return GitInfo::default();
    };
    let dirty = git(root, &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    let commit_time = git(root, &["show", "-s", "--format=%cI", "HEAD"]);
    GitInfo {
        commit,
        dirty,
        commit_time,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn outside_a_repository_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let info = super::info(dir.path());
        assert!(info.commit.is_empty());
        assert!(!info.dirty);
    }
}
