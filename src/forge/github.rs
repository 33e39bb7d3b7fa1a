//! The github forge: the promotion branch and its one commit are made through GitHub's git data
//! API (tree, commit, ref — no clone, no push credentials in a remote URL), then one pull request
//! per branch is opened or updated in place.
//!
//! Rules: a branch carrying a commit without our trailer is someone's work and is never moved —
//! a fresh `<branch>-N` is used and the notes say so; the same content makes no commit; a PR that
//! already exists (422) is adopted; other open mlops PRs for the same model and environment are
//! closed as superseded; a POST that got no answer is followed by a re-read, never a blind retry.

#[path = "github/access.rs"]
pub mod access;
#[path = "github/api.rs"]
pub mod api;
#[path = "github/error.rs"]
pub mod error;
#[path = "github/issues.rs"]
pub mod issues;

use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::Engine;
use octocrab::models::commits::CommitComparison;
use octocrab::models::git::CreateTreeEntry;
use octocrab::models::issues::Comment;
use octocrab::models::pulls::PullRequest;
use octocrab::models::repos::Object;
use octocrab::params::repos::Reference;
use reqwest::Method;
use serde_json::json;

use self::api::Client;
pub use self::api::{Auth, Settings};
pub use self::error::GitHubError;
use super::{Change, Proposal};
use crate::config::ForgeConfig;
pub use crate::http::Policy;

/// GitHub refuses bodies above 65,536 characters.
const MAX_BODY: usize = 65_000;

pub struct GitHub {
    client: Client,
    rt: tokio::runtime::Runtime,
    /// mlops.yaml's directory inside the repository (`""` at the root, else ending in `/`).
    prefix: String,
    labels: Vec<String>,
    reviewers: Vec<String>,
}

/// What the branch holds beyond the base.
struct Branch {
    tip: String,
    /// First commit (oldest first) whose message lacks our trailer.
    foreign: Option<String>,
    /// One commit of ours straight on the base: its tree.
    single_tree: Option<String>,
}

/// The repository named by forge.repository, else the settings' default (`GITHUB_REPOSITORY`).
pub fn repository(config: &ForgeConfig, settings: &Settings) -> Result<String> {
    let repo = config
        .repository
        .clone()
        .or_else(|| settings.default_repository.clone())
        .filter(|r| !r.is_empty())
        .context("the github forge needs a repository: set forge.repository (owner/name) in mlops.yaml, or GITHUB_REPOSITORY")?;
    match repo.split_once('/') {
        Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => Ok(repo),
        _ => bail!("forge.repository is {repo:?}; expected owner/name"),
    }
}

/// A promotion's commit message carries the trailer on a line of its own.
fn has_trailer(message: &str, trailer: &str) -> bool {
    message.lines().any(|l| l.trim() == trailer)
}

impl GitHub {
    /// The forge mlops.yaml's `forge:` configures, for the project at `root`.
    pub fn new(root: &Path, config: &ForgeConfig, settings: &Settings) -> Result<GitHub> {
        let repo = repository(config, settings)?;
        let mut forge = GitHub::connect(&repo, settings)?;
        // Paths in the commit are relative to the repository root.
        forge.prefix = crate::git::run(root, &["rev-parse", "--show-prefix"]).unwrap_or_default();
        forge.labels = config.labels.clone();
        forge.reviewers = config.reviewers.clone();
        Ok(forge)
    }

    /// A client of `repo` (`owner/name`) alone: issues, comments and dispatches (monitoring);
    /// promotions use [`GitHub::new`].
    pub fn connect(repo: &str, settings: &Settings) -> Result<GitHub> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = rt.block_on(Client::new(repo, settings))?;
        Ok(GitHub {
            client,
            rt,
            prefix: String::new(),
            labels: Vec::new(),
            reviewers: Vec::new(),
        })
    }

    fn crab(&self) -> &octocrab::Octocrab {
        self.client.crab()
    }

    fn git_handler(&self) -> octocrab::git::GitHandler<'_> {
        self.crab().git(&self.client.owner, &self.client.name)
    }

    fn repos_handler(&self) -> octocrab::repos::RepoHandler<'_> {
        self.crab().repos(&self.client.owner, &self.client.name)
    }

    fn pulls_handler(&self) -> octocrab::pulls::PullRequestHandler<'_> {
        self.crab().pulls(&self.client.owner, &self.client.name)
    }

    fn issues_handler(&self) -> octocrab::issues::IssueHandler<'_> {
        self.crab().issues(&self.client.owner, &self.client.name)
    }

    /// Creates or updates `number`'s comment that starts with `marker` (a hidden HTML comment),
    /// so a pull request carries one report that follows its latest push. Only a comment this
    /// token's own account wrote is edited; a marked comment by anyone else is left alone.
    /// Returns its URL.
    pub fn sticky_comment(&self, number: u64, marker: &str, body: &str) -> Result<String> {
        let text = &truncate(&format!("{marker}\n{body}"));
        self.rt.block_on(async {
            // Anyone can write a comment that starts with the marker: only one this token's
            // own account wrote is ours to edit.
            let me = self.client.own_login().await?;
            let find = || async {
                let all = self.comments(number).await?;
                Ok::<_, GitHubError>(all.into_iter().find(|c| {
                    let marked = c
                        .body
                        .as_deref()
                        .is_some_and(|b| b.starts_with(&format!("{marker}\n")));
                    let author = c.user.login.as_str();
                    // GitHub logins are case-insensitive.
                    let mine = author.eq_ignore_ascii_case(&me);
                    if marked && !mine {
                        tracing::warn!(
                            "comment {} on #{number} carries mlops' marker but {author:?} wrote it, not {me:?}: left alone",
                            c.id
                        );
                    }
                    marked && mine
                }))
            };
            if let Some(c) = find().await? {
                if c.body.as_deref() != Some(text.as_str()) {
                    self.edit_comment(c.id.0, text).await?;
                }
                return Ok(c.html_url.to_string());
            }
            let path = self.client.repo_path(&format!("/issues/{number}/comments"));
            for _ in 0..2 {
                let posted = self
                    .client
                    .call(Method::POST, &path, move || async move {
                        self.issues_handler().create_comment(number, text).await
                    })
                    .await;
                match posted {
                    Ok(c) => return Ok(c.html_url.to_string()),
                    Err(e) if e.is_unanswered() => {
                        // It may have landed: look before posting again.
                        if let Some(c) = find().await? {
                            return Ok(c.html_url.to_string());
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            bail!("GitHub did not answer POST {path} twice; the comment was not posted")
        })
    }

    /// Every comment on issue or pull request `number`.
    async fn comments(&self, number: u64) -> Result<Vec<Comment>, GitHubError> {
        let path = self.client.repo_path(&format!("/issues/{number}/comments"));
        self.client
            .all(&path, move || async move {
                self.issues_handler()
                    .list_comments(number)
                    .per_page(100)
                    .send()
                    .await
            })
            .await
    }

    /// Replaces comment `id`'s text.
    async fn edit_comment(&self, id: u64, text: &str) -> Result<Comment, GitHubError> {
        let path = &self.client.repo_path(&format!("/issues/comments/{id}"));
        let body = &json!({ "body": text });
        self.client
            .call(Method::PATCH, path, move || async move {
                self.crab().patch(path, Some(body)).await
            })
            .await
    }

    async fn tip(&self, branch: &str) -> Result<Option<String>, GitHubError> {
        let path = self.client.repo_path(&format!("/git/ref/heads/{branch}"));
        let reference = &Reference::Branch(branch.to_string());
        let found = self
            .client
            .call(Method::GET, &path, move || async move {
                self.git_handler().get_ref(reference).await
            })
            .await;
        match found {
            Ok(r) => match r.object {
                Object::Commit { sha, .. } => Ok(Some(sha)),
                other => Err(GitHubError::Answer {
                    method: Method::GET,
                    path,
                    detail: format!("heads/{branch} points at {other:?}, not a commit"),
                }),
            },
            Err(GitHubError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn base(&self, base: &str) -> Result<(String, String)> {
        let sha = self.tip(base).await?.with_context(|| {
            format!(
                "forge.base is {base:?}, but {} has no such branch",
                self.client.repo
            )
        })?;
        let path = self.client.repo_path(&format!("/git/commits/{sha}"));
        let commit = self
            .client
            .call(Method::GET, &path, || {
                let sha = sha.clone();
                async move { self.git_handler().get_commit(sha).await }
            })
            .await?;
        Ok((sha, commit.tree.sha))
    }

    async fn branch(&self, base_sha: &str, tip: &str, trailer: &str) -> Result<Branch> {
        let path = self
            .client
            .repo_path(&format!("/compare/{base_sha}...{tip}"));
        let r: CommitComparison = self
            .client
            .call(Method::GET, &path, move || async move {
                self.repos_handler()
                    .compare_commits(base_sha, tip)
                    .per_page(250u8)
                    .send()
                    .await
            })
            .await?;
        let foreign = r
            .commits
            .iter()
            .find(|c| !has_trailer(&c.commit.message, trailer))
            .map(|c| c.sha.clone());
        let straight = r.behind_by == 0
            && r.commits.len() == 1
            && r.commits[0].parents.first().map(|p| p.sha.as_str()) == Some(base_sha);
        let single_tree = straight.then(|| r.commits[0].commit.tree.sha.clone());
        Ok(Branch {
            tip: tip.to_string(),
            foreign,
            single_tree,
        })
    }

    /// `wanted`, unless it carries someone's commit: then `wanted-2`, `wanted-3`, …
    async fn available(
        &self,
        base_sha: &str,
        wanted: &str,
        trailer: &str,
    ) -> Result<(String, Option<Branch>, Vec<String>)> {
        let mut notes = Vec::new();
        let mut branch = wanted.to_string();
        let mut n = 1;
        loop {
            let Some(tip) = self.tip(&branch).await? else {
                return Ok((branch, None, notes));
            };
            let b = self.branch(base_sha, &tip, trailer).await?;
            match &b.foreign {
                None => return Ok((branch, Some(b), notes)),
                Some(sha) => {
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
    }

    async fn open_pr(&self, branch: &str, base: &str) -> Result<Option<PullRequest>, GitHubError> {
        let head = &format!("{}:{branch}", self.client.owner);
        let path = self.client.repo_path("/pulls");
        let open = self
            .client
            .all(&path, move || async move {
                self.pulls_handler()
                    .list()
                    .state(octocrab::params::State::Open)
                    .head(head)
                    .base(base)
                    .per_page(100u8)
                    .send()
                    .await
            })
            .await?;
        Ok(open.into_iter().next())
    }

    /// `pr` with this title and body (updated when it has others).
    async fn update_pr(&self, pr: PullRequest, title: &str, body: &str) -> Result<PullRequest> {
        if pr.title.as_deref() == Some(title) && pr.body.as_deref() == Some(body) {
            return Ok(pr);
        }
        let path = self.client.repo_path(&format!("/pulls/{}", pr.number));
        let number = pr.number;
        Ok(self
            .client
            .call(Method::PATCH, &path, move || async move {
                self.pulls_handler()
                    .update(number)
                    .title(title)
                    .body(body)
                    .send()
                    .await
            })
            .await?)
    }

    /// The open PR for `branch`, updated to this title and body, or a new one. (PR, created)
    async fn ensure_pr(
        &self,
        branch: &str,
        change: &Change,
        body: &str,
    ) -> Result<(PullRequest, bool)> {
        if let Some(pr) = self.open_pr(branch, &change.base).await? {
            return Ok((self.update_pr(pr, &change.title, body).await?, false));
        }
        let path = self.client.repo_path("/pulls");
        for _ in 0..2 {
            let created = self
                .client
                .call(Method::POST, &path, move || async move {
                    self.pulls_handler()
                        .create(&change.title, branch, &change.base)
                        .body(body)
                        .send()
                        .await
                })
                .await;
            match created {
                Ok(pr) => return Ok((pr, true)),
                Err(e) if e.is_unprocessable("already exists") => {
                    // Someone (a concurrent promote) opened it first: adopt it.
                    if let Some(pr) = self.open_pr(branch, &change.base).await? {
                        return Ok((self.update_pr(pr, &change.title, body).await?, false));
                    }
                    bail!(
                        "GitHub says a pull request for {branch} already exists, but none is open; check {}'s pull requests",
                        self.client.repo
                    );
                }
                Err(e) if e.is_unanswered() => {
                    tracing::warn!("{e}; checking whether the pull request exists");
                    if let Some(pr) = self.open_pr(branch, &change.base).await? {
                        return Ok((self.update_pr(pr, &change.title, body).await?, true));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        bail!("GitHub did not answer POST {path} twice; run mlops promote again (it picks up where this stopped)")
    }

    /// Points `branch` at `commit`: creates it, or moves it from `expected` (ours) — after
    /// checking it has not moved, so nobody's commit is replaced.
    async fn move_branch(
        &self,
        branch: &str,
        expected: Option<&str>,
        commit: &str,
        base_sha: &str,
        trailer: &str,
    ) -> Result<()> {
        let reference = &Reference::Branch(branch.to_string());
        let mut expected = expected.map(str::to_string);
        for _ in 0..3 {
            let current = self.tip(branch).await?;
            if current.as_deref() == Some(commit) {
                return Ok(());
            }
            if current != expected {
                // Moved since we looked: ours (a concurrent promote) may be replaced, anyone
                // else's may not.
                if let Some(tip) = &current {
                    if let Some(sha) = self.branch(base_sha, tip, trailer).await?.foreign {
                        bail!(
                            "{branch} received commit {} that mlops did not make while mlops was proposing; left it alone — run mlops promote again to propose on a fresh branch",
                            &sha[..sha.len().min(12)]
                        );
                    }
                }
                expected = current;
            }
            if expected.is_none() {
                let refs = self.client.repo_path("/git/refs");
                let created = self
                    .client
                    .call(Method::POST, &refs, move || async move {
                        self.git_handler().create_ref(reference, commit).await
                    })
                    .await;
                match created {
                    Ok(_) => return Ok(()),
                    // Created meanwhile (422 "Reference already exists"), or perhaps by this
                    // unanswered request: look again.
                    Err(e) if e.status() == Some(422) || e.is_unanswered() => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let path = self.client.repo_path(&format!("/git/refs/heads/{branch}"));
            self.client
                .call(Method::PATCH, &path, move || async move {
                    self.git_handler()
                        .update_ref(reference, commit)
                        .force(true)
                        .send()
                        .await
                })
                .await?;
            return Ok(());
        }
        bail!("{branch} kept changing while mlops was updating it; run mlops promote again")
    }

    /// The tree of the base with `change`'s files in place.
    async fn tree(&self, change: &Change, base_tree: &str) -> Result<String> {
        let mut entries = Vec::new();
        for (rel, bytes) in &change.files {
            let path = format!("{}{rel}", self.prefix);
            let entry = CreateTreeEntry::new(path, "100644", "blob");
            match std::str::from_utf8(bytes) {
                Ok(text) => entries.push(entry.with_content(text)),
                Err(_) => {
                    let blobs = self.client.repo_path("/git/blobs");
                    let b64 = &base64::engine::general_purpose::STANDARD.encode(bytes);
                    let blob = self
                        .client
                        .call_pure(&blobs, move || async move {
                            self.git_handler()
                                .create_blob(b64)
                                .encoding("base64")
                                .send()
                                .await
                        })
                        .await?;
                    entries.push(entry.with_sha(blob.sha));
                }
            }
        }
        let trees = self.client.repo_path("/git/trees");
        let entries = &entries;
        let tree = self
            .client
            .call_pure(&trees, move || async move {
                self.git_handler()
                    .create_tree(entries.clone())
                    .base_tree(base_tree)
                    .send()
                    .await
            })
            .await?;
        Ok(tree.sha)
    }

    async fn propose_async(&self, change: &Change) -> Result<Proposal> {
        let (base_sha, base_tree) = self.base(&change.base).await?;
        let (branch, existing, mut notes) = self
            .available(&base_sha, &change.branch, &change.trailer)
            .await?;
        let tree = self.tree(change, &base_tree).await?;
        if tree == base_tree {
            notes.push(format!(
                "{} already has this content: nothing to propose",
                change.base
            ));
            return Ok(Proposal {
                branch,
                commit: None,
                url: format!("{}/tree/{}", self.web_url(), change.base),
                body_path: None,
                notes,
            });
        }

        let unchanged = existing
            .as_ref()
            .is_some_and(|b| b.single_tree.as_deref() == Some(tree.as_str()));
        let commit = if unchanged {
            notes.push("the branch already proposes exactly this: no new commit".into());
            None
        } else {
            let commits = self.client.repo_path("/git/commits");
            let message = format!("{}\n\n{}\n", change.title, change.trailer);
            let (message, tree, base_sha) = (&message, &tree, &base_sha);
            let sha = self
                .client
                .call_pure(&commits, move || async move {
                    self.git_handler()
                        .create_commit(message, tree)
                        .parents(vec![base_sha.clone()])
                        .send()
                        .await
                })
                .await?
                .sha;
            self.move_branch(
                &branch,
                existing.as_ref().map(|b| b.tip.as_str()),
                &sha,
                base_sha,
                &change.trailer,
            )
            .await?;
            Some(sha)
        };

        let body = truncate(&change.body);
        let (pr, created) = self.ensure_pr(&branch, change, &body).await?;
        self.decorate(&pr, created).await?;
        notes.extend(
            self.close_stale(change, &branch, pr.number, &base_sha)
                .await?,
        );
        Ok(Proposal {
            branch,
            commit,
            url: pr.html_url.map(|u| u.to_string()).unwrap_or_default(),
            body_path: None,
            notes,
        })
    }

    fn web_url(&self) -> String {
        let api = self.client.api_url();
        let host = match api.strip_suffix("/api/v3") {
            Some(enterprise) => enterprise.to_string(),
            None if api == api::DEFAULT_API => "https://github.com".to_string(),
            None => api.to_string(),
        };
        format!("{host}/{}", self.client.repo)
    }

    /// Labels (the missing ones) and, on a new PR, reviewers.
    async fn decorate(&self, pr: &PullRequest, created: bool) -> Result<()> {
        let number = pr.number;
        let has: Vec<&str> = pr
            .labels
            .iter()
            .flatten()
            .map(|l| l.name.as_str())
            .collect();
        let missing: Vec<String> = self
            .labels
            .iter()
            .filter(|l| !has.contains(&l.as_str()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let path = self.client.repo_path(&format!("/issues/{number}/labels"));
            let missing = &missing;
            let added = self
                .client
                .call(Method::POST, &path, move || async move {
                    self.issues_handler().add_labels(number, missing).await
                })
                .await;
            match added {
                Ok(_) => {}
                // Adding labels is idempotent; the next run adds what is missing.
                Err(e) if e.is_unanswered() => tracing::warn!("{e}"),
                Err(e) => return Err(e.into()),
            }
        }
        if created && !self.reviewers.is_empty() {
            let path = self
                .client
                .repo_path(&format!("/pulls/{number}/requested_reviewers"));
            let (path, body) = (&path, &json!({ "reviewers": self.reviewers }));
            let requested = self
                .client
                .call(Method::POST, path, move || async move {
                    self.crab().post::<_, PullRequest>(path, Some(body)).await
                })
                .await;
            match requested {
                Ok(_) => {}
                Err(e) if e.is_unanswered() => tracing::warn!("{e}"),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Closes other open mlops PRs for the same model and environment (`branch`, `branch-N`)
    /// as superseded; leaves those carrying someone's commit open and says so.
    async fn close_stale(
        &self,
        change: &Change,
        ours: &str,
        number: u64,
        base_sha: &str,
    ) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        let path = self.client.repo_path("/pulls");
        let open = self
            .client
            .all(&path, move || async move {
                self.pulls_handler()
                    .list()
                    .state(octocrab::params::State::Open)
                    .base(&change.base)
                    .per_page(100u8)
                    .send()
                    .await
            })
            .await?;
        for pr in open {
            let head = pr.head.ref_field.as_str();
            let same_family = head == change.branch
                || head
                    .strip_prefix(&change.branch)
                    .and_then(|s| s.strip_prefix('-'))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            let from_here = pr.head.repo.as_ref().and_then(|r| r.full_name.as_deref())
                == Some(self.client.repo.as_str());
            if !same_family || head == ours || pr.number == number || !from_here {
                continue;
            }
            let other = pr.number;
            if self
                .branch(base_sha, &pr.head.sha, &change.trailer)
                .await?
                .foreign
                .is_some()
            {
                notes.push(format!(
                    "left #{other} ({head}) open: it has commits mlops did not make"
                ));
                continue;
            }
            let c = self.client.repo_path(&format!("/issues/{other}/comments"));
            let superseded = &format!("Superseded by #{number}.");
            let commented = self
                .client
                .call(Method::POST, &c, move || async move {
                    self.issues_handler()
                        .create_comment(other, superseded)
                        .await
                })
                .await;
            match commented {
                Ok(_) => {}
                Err(e) if e.is_unanswered() => tracing::warn!("{e}"),
                Err(e) => return Err(e.into()),
            }
            let p = self.client.repo_path(&format!("/pulls/{other}"));
            self.client
                .call(Method::PATCH, &p, move || async move {
                    self.pulls_handler()
                        .update(other)
                        .state(octocrab::params::pulls::State::Closed)
                        .send()
                        .await
                })
                .await?;
            notes.push(format!("closed #{other} ({head}): superseded by #{number}"));
        }
        Ok(notes)
    }

    async fn read_async(&self, change: &Change, rel: &str) -> Result<Option<String>> {
        let (base_sha, _) = self.base(&change.base).await?;
        let (branch, existing, _) = self
            .available(&base_sha, &change.branch, &change.trailer)
            .await?;
        if existing.is_none() {
            return Ok(None);
        }
        let file = format!("{}{rel}", self.prefix);
        let path = self.client.repo_path(&format!("/contents/{file}"));
        let found = self
            .client
            .call(Method::GET, &path, || async {
                self.repos_handler()
                    .get_content()
                    .path(file.as_str())
                    .r#ref(branch.as_str())
                    .send()
                    .await
            })
            .await;
        let mut items = match found {
            Ok(items) => items,
            Err(GitHubError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(content) = items.take_items().into_iter().next() else {
            return Ok(None);
        };
        let b64: String = content
            .content
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .with_context(|| format!("GitHub's answer to GET {path} is not base64"))?;
        Ok(String::from_utf8(bytes).ok())
    }
}

impl super::Forge for GitHub {
    fn read(&mut self, change: &Change, rel: &str) -> Result<Option<String>> {
        self.rt.block_on(self.read_async(change, rel))
    }

    fn propose(&mut self, change: &Change) -> Result<Proposal> {
        self.rt.block_on(self.propose_async(change))
    }
}

fn truncate(body: &str) -> String {
    if body.chars().count() <= MAX_BODY {
        return body.to_string();
    }
    let cut: String = body.chars().take(MAX_BODY).collect();
    format!("{cut}\n\n… (truncated: the full report is in the run's report.md)\n")
}
