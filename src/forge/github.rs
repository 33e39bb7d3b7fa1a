//! The github forge: the promotion branch and its one commit are made through GitHub's git data
//! API (tree, commit, ref — no clone, no push credentials in a remote URL), then one pull request
//! per branch is opened or updated in place.
//!
//! Rules: a branch carrying a commit without our trailer is someone's work and is never moved —
//! a fresh `<branch>-N` is used and the notes say so; the same content makes no commit; a PR that
//! already exists (422) is adopted; other open mlops PRs for the same model and environment are
//! closed as superseded; a POST that got no answer is followed by a re-read, never a blind retry.

#[path = "github/api.rs"]
pub mod api;
#[path = "github/app.rs"]
mod app;

use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};

use self::api::{enc, expect_ok, unanswered, Client, Reply};
use super::{Change, Proposal};
use crate::config::ForgeConfig;

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

/// The repository named by forge.repository, else `$GITHUB_REPOSITORY`.
pub fn repository(config: &ForgeConfig) -> Result<String> {
    let repo = config
        .repository
        .clone()
        .or_else(|| std::env::var("GITHUB_REPOSITORY").ok())
        .filter(|r| !r.is_empty())
        .context("the github forge needs a repository: set forge.repository (owner/name) in mlops.yaml, or GITHUB_REPOSITORY")?;
    match repo.split_once('/') {
        Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => Ok(repo),
        _ => bail!("forge.repository is {repo:?}; expected owner/name"),
    }
}

impl GitHub {
    pub fn new(root: &Path, config: &ForgeConfig) -> Result<GitHub> {
        let repo = repository(config)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = rt.block_on(Client::from_env(&repo))?;
        // Paths in the commit are relative to the repository root.
        let prefix = crate::git::run(root, &["rev-parse", "--show-prefix"]).unwrap_or_default();
        Ok(GitHub {
            client,
            rt,
            prefix,
            labels: config.labels.clone(),
            reviewers: config.reviewers.clone(),
        })
    }

    fn owner(&self) -> &str {
        self.client.repo.split('/').next().unwrap_or_default()
    }

    /// Creates or updates `number`'s comment that starts with `marker` (a hidden HTML comment),
    /// so a pull request carries one report that follows its latest push. Only a comment this
    /// token's own account wrote is edited; a marked comment by anyone else is left alone.
    /// Returns its URL.
    pub fn sticky_comment(&self, number: u64, marker: &str, body: &str) -> Result<String> {
        let text = truncate(&format!("{marker}\n{body}"));
        self.rt.block_on(async {
            let list = self
                .client
                .repo_path(&format!("/issues/{number}/comments?per_page=100"));
            // Anyone can write a comment that starts with the marker: only one this token's
            // own account wrote is ours to edit.
            let me = self.client.own_login().await?;
            let find = || async {
                let all = self.client.get_all(&list).await?;
                Ok::<_, anyhow::Error>(all.into_iter().find(|c| {
                    let marked = c["body"]
                        .as_str()
                        .is_some_and(|b| b.starts_with(&format!("{marker}\n")));
                    let author = c["user"]["login"].as_str().unwrap_or_default();
                    // GitHub logins are case-insensitive.
                    let mine = author.eq_ignore_ascii_case(&me);
                    if marked && !mine {
                        tracing::warn!(
                            "comment {} on #{number} carries mlops' marker but {author:?} wrote it, not {me:?}: left alone",
                            c["id"]
                        );
                    }
                    marked && mine
                }))
            };
            if let Some(c) = find().await? {
                let url = c["html_url"].as_str().unwrap_or_default().to_string();
                if c["body"].as_str() != Some(text.as_str()) {
                    let path = self
                        .client
                        .repo_path(&format!("/issues/comments/{}", c["id"]));
                    let r = self.client.patch(&path, json!({"body": text})).await?;
                    expect_ok(&r, "PATCH", &path)?;
                }
                return Ok(url);
            }
            let path = self.client.repo_path(&format!("/issues/{number}/comments"));
            for _ in 0..2 {
                match self.client.post(&path, json!({"body": text})).await {
                    Ok(r) => {
                        expect_ok(&r, "POST", &path)?;
                        return Ok(r.body["html_url"].as_str().unwrap_or_default().to_string());
                    }
                    Err(e) if unanswered(&e) => {
                        // It may have landed: look before posting again.
                        if let Some(c) = find().await? {
                            return Ok(c["html_url"].as_str().unwrap_or_default().to_string());
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            bail!("GitHub did not answer POST {path} twice; the comment was not posted")
        })
    }

    async fn tip(&self, branch: &str) -> Result<Option<String>> {
        let path = self.client.repo_path(&format!("/git/ref/heads/{branch}"));
        let r = self.client.get(&path).await?;
        if r.status.as_u16() == 404 {
            return Ok(None);
        }
        expect_ok(&r, "GET", &path)?;
        Ok(r.body["object"]["sha"].as_str().map(str::to_string))
    }

    async fn base(&self, base: &str) -> Result<(String, String)> {
        let sha = self.tip(base).await?.with_context(|| {
            format!(
                "forge.base is {base:?}, but {} has no such branch",
                self.client.repo
            )
        })?;
        let path = self.client.repo_path(&format!("/git/commits/{sha}"));
        let r = self.client.get(&path).await?;
        expect_ok(&r, "GET", &path)?;
        let tree = r.body["tree"]["sha"]
            .as_str()
            .with_context(|| format!("GitHub's answer to GET {path} has no tree"))?
            .to_string();
        Ok((sha, tree))
    }

    async fn branch(&self, base_sha: &str, tip: &str, trailer: &str) -> Result<Branch> {
        let path = self
            .client
            .repo_path(&format!("/compare/{base_sha}...{tip}?per_page=250"));
        let r = self.client.get(&path).await?;
        expect_ok(&r, "GET", &path)?;
        let commits = r.body["commits"].as_array().cloned().unwrap_or_default();
        let foreign = commits
            .iter()
            .find(|c| {
                !c["commit"]["message"]
                    .as_str()
                    .is_some_and(|m| m.lines().any(|l| l.trim() == trailer))
            })
            .and_then(|c| c["sha"].as_str())
            .map(str::to_string);
        let straight = r.body["behind_by"].as_u64() == Some(0)
            && commits.len() == 1
            && commits[0]["parents"][0]["sha"].as_str() == Some(base_sha);
        let single_tree = straight
            .then(|| {
                commits[0]["commit"]["tree"]["sha"]
                    .as_str()
                    .map(str::to_string)
            })
            .flatten();
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

    /// A POST whose effect is content-addressed (blobs, trees, commits): repeating it is harmless.
    async fn post_pure(&self, path: &str, body: Value) -> Result<Reply> {
        match self.client.post(path, body.clone()).await {
            Err(e) if unanswered(&e) => self.client.post(path, body).await,
            other => other,
        }
    }

    async fn open_pr(&self, branch: &str, base: &str) -> Result<Option<Value>> {
        let path = self.client.repo_path(&format!(
            "/pulls?state=open&head={}&base={}&per_page=100",
            enc(&format!("{}:{branch}", self.owner())),
            enc(base)
        ));
        Ok(self.client.get_all(&path).await?.into_iter().next())
    }

    /// The open PR for `branch`, updated to this title and body, or a new one. (PR, created)
    async fn ensure_pr(&self, branch: &str, change: &Change, body: &str) -> Result<(Value, bool)> {
        let update = |pr: Value| async move {
            if pr["title"].as_str() == Some(change.title.as_str())
                && pr["body"].as_str() == Some(body)
            {
                return Ok::<_, anyhow::Error>(pr);
            }
            let path = self.client.repo_path(&format!("/pulls/{}", pr["number"]));
            let r = self
                .client
                .patch(&path, json!({"title": change.title, "body": body}))
                .await?;
            expect_ok(&r, "PATCH", &path)?;
            Ok(r.body)
        };
        if let Some(pr) = self.open_pr(branch, &change.base).await? {
            return Ok((update(pr).await?, false));
        }
        let path = self.client.repo_path("/pulls");
        let request =
            json!({"title": change.title, "head": branch, "base": change.base, "body": body});
        for _ in 0..2 {
            match self.client.post(&path, request.clone()).await {
                Ok(r) if r.status.as_u16() == 201 => return Ok((r.body, true)),
                Ok(r) if r.status.as_u16() == 422 && r.message().contains("already exists") => {
                    // Someone (a concurrent promote) opened it first: adopt it.
                    if let Some(pr) = self.open_pr(branch, &change.base).await? {
                        return Ok((update(pr).await?, false));
                    }
                    bail!(
                        "GitHub says a pull request for {branch} already exists, but none is open; check {}'s pull requests",
                        self.client.repo
                    );
                }
                Ok(r) => {
                    expect_ok(&r, "POST", &path)?;
                    return Ok((r.body, true));
                }
                Err(e) if unanswered(&e) => {
                    eprintln!("mlops promote: {e}; checking whether the pull request exists");
                    if let Some(pr) = self.open_pr(branch, &change.base).await? {
                        return Ok((update(pr).await?, true));
                    }
                }
                Err(e) => return Err(e),
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
        let refs = self.client.repo_path("/git/refs");
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
            match &expected {
                None => {
                    let body = json!({"ref": format!("refs/heads/{branch}"), "sha": commit});
                    match self.client.post(&refs, body).await {
                        Ok(r) if r.status.as_u16() == 201 => return Ok(()),
                        // Created meanwhile (422 "Reference already exists"): look again.
                        Ok(r) if r.status.as_u16() == 422 => continue,
                        Ok(r) => expect_ok(&r, "POST", &refs)?,
                        Err(e) if unanswered(&e) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Some(_) => {
                    let path = self.client.repo_path(&format!("/git/refs/heads/{branch}"));
                    let r = self
                        .client
                        .patch(&path, json!({"sha": commit, "force": true}))
                        .await?;
                    expect_ok(&r, "PATCH", &path)?;
                    return Ok(());
                }
            }
        }
        bail!("{branch} kept changing while mlops was updating it; run mlops promote again")
    }

    async fn propose_async(&self, change: &Change) -> Result<Proposal> {
        let (base_sha, base_tree) = self.base(&change.base).await?;
        let (branch, existing, mut notes) = self
            .available(&base_sha, &change.branch, &change.trailer)
            .await?;

        // The tree: the base's with our files replaced.
        let mut entries = Vec::new();
        for (rel, bytes) in &change.files {
            let path = format!("{}{rel}", self.prefix);
            match std::str::from_utf8(bytes) {
                Ok(text) => entries
                    .push(json!({"path": path, "mode": "100644", "type": "blob", "content": text})),
                Err(_) => {
                    let blobs = self.client.repo_path("/git/blobs");
                    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                    let r = self
                        .post_pure(&blobs, json!({"content": b64, "encoding": "base64"}))
                        .await?;
                    expect_ok(&r, "POST", &blobs)?;
                    entries.push(json!({"path": path, "mode": "100644", "type": "blob", "sha": r.body["sha"]}));
                }
            }
        }
        let trees = self.client.repo_path("/git/trees");
        let r = self
            .post_pure(&trees, json!({"base_tree": base_tree, "tree": entries}))
            .await?;
        expect_ok(&r, "POST", &trees)?;
        let tree = r.body["sha"].as_str().unwrap_or_default().to_string();
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
            let r = self
                .post_pure(
                    &commits,
                    json!({"message": message, "tree": tree, "parents": [base_sha]}),
                )
                .await?;
            expect_ok(&r, "POST", &commits)?;
            let sha = r.body["sha"].as_str().unwrap_or_default().to_string();
            self.move_branch(
                &branch,
                existing.as_ref().map(|b| b.tip.as_str()),
                &sha,
                &base_sha,
                &change.trailer,
            )
            .await?;
            Some(sha)
        };

        let body = truncate(&change.body);
        let (pr, created) = self.ensure_pr(&branch, change, &body).await?;
        let number = pr["number"]
            .as_u64()
            .context("a pull request without a number")?;
        self.decorate(&pr, number, created).await?;
        notes.extend(self.close_stale(change, &branch, number, &base_sha).await?);
        Ok(Proposal {
            branch,
            commit,
            url: pr["html_url"].as_str().unwrap_or_default().to_string(),
            body_path: None,
            notes,
        })
    }

    fn web_url(&self) -> String {
        let api = self.client.api_url();
        let host = match api.strip_suffix("/api/v3") {
            Some(enterprise) => enterprise.to_string(),
            None if api == "https://api.github.com" => "https://github.com".to_string(),
            None => api.to_string(),
        };
        format!("{host}/{}", self.client.repo)
    }

    /// Labels (the missing ones) and, on a new PR, reviewers.
    async fn decorate(&self, pr: &Value, number: u64, created: bool) -> Result<()> {
        let has: Vec<&str> = pr["labels"]
            .as_array()
            .map(|l| l.iter().filter_map(|x| x["name"].as_str()).collect())
            .unwrap_or_default();
        let missing: Vec<&String> = self
            .labels
            .iter()
            .filter(|l| !has.contains(&l.as_str()))
            .collect();
        if !missing.is_empty() {
            let path = self.client.repo_path(&format!("/issues/{number}/labels"));
            let r = self.client.post(&path, json!({"labels": missing})).await;
            match r {
                Ok(r) => expect_ok(&r, "POST", &path)?,
                // Adding labels is idempotent; the next run adds what is missing.
                Err(e) if unanswered(&e) => eprintln!("mlops promote: {e}"),
                Err(e) => return Err(e),
            }
        }
        if created && !self.reviewers.is_empty() {
            let path = self
                .client
                .repo_path(&format!("/pulls/{number}/requested_reviewers"));
            match self
                .client
                .post(&path, json!({"reviewers": self.reviewers}))
                .await
            {
                Ok(r) => expect_ok(&r, "POST", &path)?,
                Err(e) if unanswered(&e) => eprintln!("mlops promote: {e}"),
                Err(e) => return Err(e),
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
        let path = self.client.repo_path(&format!(
            "/pulls?state=open&base={}&per_page=100",
            enc(&change.base)
        ));
        for pr in self.client.get_all(&path).await? {
            let head = pr["head"]["ref"].as_str().unwrap_or_default();
            let same_family = head == change.branch
                || head
                    .strip_prefix(&change.branch)
                    .and_then(|s| s.strip_prefix('-'))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            let other = pr["number"].as_u64();
            if !same_family
                || head == ours
                || other == Some(number)
                || pr["head"]["repo"]["full_name"].as_str() != Some(self.client.repo.as_str())
            {
                continue;
            }
            let Some(other) = other else { continue };
            let tip = pr["head"]["sha"].as_str().unwrap_or_default();
            if self
                .branch(base_sha, tip, &change.trailer)
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
            match self
                .client
                .post(&c, json!({"body": format!("Superseded by #{number}.")}))
                .await
            {
                Ok(r) => expect_ok(&r, "POST", &c)?,
                Err(e) if unanswered(&e) => eprintln!("mlops promote: {e}"),
                Err(e) => return Err(e),
            }
            let p = self.client.repo_path(&format!("/pulls/{other}"));
            let r = self.client.patch(&p, json!({"state": "closed"})).await?;
            expect_ok(&r, "PATCH", &p)?;
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
        let path = self.client.repo_path(&format!(
            "/contents/{}{rel}?ref={}",
            self.prefix,
            enc(&branch)
        ));
        let r = self.client.get(&path).await?;
        if r.status.as_u16() == 404 {
            return Ok(None);
        }
        expect_ok(&r, "GET", &path)?;
        let b64: String = r.body["content"]
            .as_str()
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
