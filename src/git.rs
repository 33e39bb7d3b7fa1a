//! The few facts about the repository that runs record: commit, dirty flag, commit time.
//! Uses the `git` command, which every CI runner and laptop has.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::runs::GitInfo;

/// `git -C <root>`, to add arguments and environment to.
pub fn command(root: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C").arg(root);
    c
}

/// Runs `cmd` with `args` (and `input` on stdin): stdout, trimmed, on success; otherwise an
/// error carrying git's own message.
pub fn exec(mut cmd: Command, args: &[&str], input: Option<&[u8]>) -> Result<String> {
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("cannot run git (is it installed?)")?;
    if let Some(bytes) = input {
        child.stdin.take().expect("piped").write_all(bytes)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `git -C <root> <args>`; see [`exec`].
pub fn run(root: &Path, args: &[&str]) -> Result<String> {
    exec(command(root), args, None)
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    run(root, args).ok()
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
