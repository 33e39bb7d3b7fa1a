//! The local forge: the promotion branch and its one commit are built with git plumbing
//! (a temporary index, `commit-tree`, a compare-and-swap `update-ref`), so the working tree,
//! the index and the checked-out branch are never touched. The description is written to
//! `<git dir>/mlops/proposals/<branch>.md`. Merging the branch is the reviewer's act.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::{Change, Proposal};

struct Git {
    dir: PathBuf,
    index: Option<PathBuf>,
    /// Commits need an identity; CI checkouts often have none configured. Looked up once.
    identity: Vec<(&'static str, &'static str)>,
}

impl Git {
    fn new(dir: &Path, index: Option<PathBuf>) -> Git {
        let configured = |key: &str| {
            crate::git::run(dir, &["config", "--get", key]).is_ok_and(|v| !v.is_empty())
        };
        let (name, email) = (configured("user.name"), configured("user.email"));
        let identity = [
            ("GIT_AUTHOR_NAME", name, "mlops"),
            ("GIT_AUTHOR_EMAIL", email, "mlops@localhost"),
            ("GIT_COMMITTER_NAME", name, "mlops"),
            ("GIT_COMMITTER_EMAIL", email, "mlops@localhost"),
        ]
        .into_iter()
        .filter(|(var, set, _)| !set && std::env::var_os(var).is_none())
        .map(|(var, _, fallback)| (var, fallback))
        .collect();
        Git {
            dir: dir.to_path_buf(),
            index,
            identity,
        }
    }

    fn cmd(&self) -> Command {
        let mut c = crate::git::command(&self.dir);
        if let Some(i) = &self.index {
            c.env("GIT_INDEX_FILE", i);
        }
        c.envs(self.identity.iter().copied());
        c
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        crate::git::exec(self.cmd(), args, None)
    }

    fn try_run(&self, args: &[&str]) -> Option<String> {
        self.run(args).ok().filter(|s| !s.is_empty())
    }

    fn run_with_input(&self, args: &[&str], input: &[u8]) -> Result<String> {
        crate::git::exec(self.cmd(), args, Some(input))
    }
}

/// The local forge for the repository holding `root`.
pub struct Local {
    pub root: PathBuf,
}

impl super::Forge for Local {
    fn read(&mut self, change: &Change, rel: &str) -> Result<Option<String>> {
        let (branch, _) =
            available_branch(&self.root, &change.base, &change.branch, &change.trailer)?;
        Ok(read_on_branch(&self.root, &branch, rel))
    }

    fn propose(&mut self, change: &Change) -> Result<Proposal> {
        propose(&self.root, change)
    }
}

/// Creates or updates the promotion branch in the repository holding `root`.
pub fn propose(root: &Path, change: &Change) -> Result<Proposal> {
    let git = Git::new(root, None);
    git.run(&["rev-parse", "--git-dir"]).with_context(|| {
        format!(
            "{} is not in a git repository: the local forge commits the promotion to a branch",
            root.display()
        )
    })?;
    let prefix = git.run(&["rev-parse", "--show-prefix"])?;
    let base_commit = git
        .run(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{}^{{commit}}", change.base),
        ])
        .with_context(|| {
            format!(
                "forge.base is {:?}, but the repository has no such branch or commit",
                change.base
            )
        })?;
    let (branch, mut notes) =
        available_branch(root, &base_commit, &change.branch, &change.trailer)?;
    if git.try_run(&["symbolic-ref", "-q", "HEAD"]).as_deref()
        == Some(&format!("refs/heads/{branch}"))
    {
        bail!(
            "{branch} is checked out in {}: switch to another branch so mlops can update it",
            root.display()
        );
    }
    let old = git.try_run(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("refs/heads/{branch}"),
    ]);

    // The tree: the base's, with our files replaced.
    let git_dir = PathBuf::from(git.run(&["rev-parse", "--absolute-git-dir"])?);
    let index = tempfile::Builder::new()
        .prefix("mlops-index")
        .tempfile_in(&git_dir)?
        .into_temp_path();
    let staged = Git::new(root, Some(index.to_path_buf()));
    staged.run(&["read-tree", &base_commit])?;
    for (rel, bytes) in &change.files {
        let blob = staged.run_with_input(&["hash-object", "-w", "--stdin"], bytes)?;
        let path = format!("{prefix}{rel}");
        staged.run(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{blob},{path}"),
        ])?;
    }
    let tree = staged.run(&["write-tree"])?;
    let base_tree = git.run(&["rev-parse", &format!("{base_commit}^{{tree}}")])?;
    let body_path = write_body(&git_dir, &branch, &change.body)?;
    let url = format!("branch {branch} (base {})", change.base);
    if tree == base_tree {
        notes.push(format!(
            "{} already has this content: nothing to propose",
            change.base
        ));
        return Ok(Proposal {
            branch,
            commit: None,
            url,
            body_path: Some(body_path),
            notes,
        });
    }
    if let Some(old) = &old {
        let old_tree = git.run(&["rev-parse", &format!("{old}^{{tree}}")])?;
        let old_parent = git.try_run(&["rev-parse", &format!("{old}^")]);
        if old_tree == tree && old_parent.as_deref() == Some(base_commit.as_str()) {
            notes.push("the branch already proposes exactly this: no new commit".into());
            return Ok(Proposal {
                branch,
                commit: None,
                url,
                body_path: Some(body_path),
                notes,
            });
        }
    }
    let message = format!("{}\n\n{}\n", change.title, change.trailer);
    let commit = git.run_with_input(
        &["commit-tree", &tree, "-p", &base_commit, "-F", "-"],
        message.as_bytes(),
    )?;
    // Compare-and-swap: a concurrent promote that moved the branch makes this fail loudly
    // instead of silently replacing its commit.
    let zero = "0".repeat(40);
    let expected = old.as_deref().unwrap_or(&zero);
    git.run(&[
        "update-ref",
        "-m",
        &format!("mlops promote: {}", change.title),
        &format!("refs/heads/{branch}"),
        &commit,
        expected,
    ])
    .with_context(|| {
        format!("{branch} moved while mlops was updating it; run mlops promote again")
    })?;
    Ok(Proposal {
        branch,
        commit: Some(commit),
        url,
        body_path: Some(body_path),
        notes,
    })
}

/// The branch to use: `wanted`, unless it carries a commit mlops did not make (someone's work,
/// never overwritten) — then `wanted-2`, `wanted-3`, … Returns the branch and why it differs.
pub fn available_branch(
    root: &Path,
    base: &str,
    wanted: &str,
    trailer: &str,
) -> Result<(String, Vec<String>)> {
    let git = Git::new(root, None);
    let base_commit = git
        .run(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{base}^{{commit}}"),
        ])
        .with_context(|| {
            format!("forge.base is {base:?}, but the repository has no such branch or commit")
        })?;
    let mut notes = Vec::new();
    let mut branch = wanted.to_string();
    // A branch with a commit mlops did not make is someone's work: never overwrite it.
    let mut n = 1;
    while let Some(tip) = git.try_run(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("refs/heads/{branch}"),
    ]) {
        let log = git.run(&[
            "log",
            "--format=%H%x1f%B%x1e",
            &format!("{base_commit}..{tip}"),
        ])?;
        let foreign = log
            .split('\x1e')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .find(|e| !e.contains(trailer));
        match foreign {
            None => break,
            Some(entry) => {
                let sha = entry.split('\x1f').next().unwrap_or_default();
                n += 1;
                let fresh = format!("{wanted}-{n}");
                notes.push(format!(
                    "{branch} has commit {} that mlops did not make; left it alone and used {fresh}",
                    &sha[..sha.len().min(12)]
                ));
                branch = fresh;
            }
        }
    }
    Ok((branch, notes))
}

/// The file content of `rel` (relative to mlops.yaml's directory) on `branch`, if any.
pub fn read_on_branch(root: &Path, branch: &str, rel: &str) -> Option<String> {
    let git = Git::new(root, None);
    git.try_run(&["show", &format!("refs/heads/{branch}:./{rel}")])
}

fn write_body(git_dir: &Path, branch: &str, body: &str) -> Result<PathBuf> {
    let path = git_dir
        .join("mlops/proposals")
        .join(format!("{}.md", branch.replace('/', "__")));
    crate::fsutil::write_atomic(&path, body.as_bytes())?;
    Ok(path)
}
