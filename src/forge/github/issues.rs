//! What `mlops monitor` asks of GitHub when an incident opens or closes: one issue per
//! incident (found again by its label, updated, commented on, closed), and a
//! `repository_dispatch` event (`mlops-retrain`) that starts the training workflow. Each call
//! goes through the same policy as promotions: a create or a dispatch that got no answer is
//! [`GitHubError::Unanswered`], for the caller to look before trying again.

use octocrab::models::issues::{Comment, Issue};
use octocrab::models::IssueState;
use reqwest::Method;
use serde_json::{json, Value};

use super::{truncate, GitHub, GitHubError};
use crate::forge::{Incidents, Issue as Tracked};

/// An issue to open, or the new text of one.
#[derive(Debug, Clone, Default)]
pub struct IssueText {
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
}

impl GitHub {
    /// Opens an issue; its body is cut to what GitHub accepts.
    pub fn open_issue(&self, text: &IssueText) -> Result<Issue, GitHubError> {
        let path = self.client.repo_path("/issues");
        let body = &truncate(&text.body);
        self.rt
            .block_on(self.client.call(Method::POST, &path, move || async move {
                self.issues_handler()
                    .create(&text.title)
                    .body(body)
                    .labels(text.labels.clone())
                    .send()
                    .await
            }))
    }

    /// The open issues (pull requests left out) carrying every label of `labels`.
    pub fn open_issues(&self, labels: &[String]) -> Result<Vec<Issue>, GitHubError> {
        self.open_issues_where(Some(labels), None)
    }

    /// The open issues (pull requests left out) `creator` opened.
    pub fn open_issues_by(&self, creator: &str) -> Result<Vec<Issue>, GitHubError> {
        self.open_issues_where(None, Some(creator))
    }

    /// Every page of the open issues with these labels and/or this creator, pull requests
    /// left out (GitHub lists them as issues too).
    fn open_issues_where(
        &self,
        labels: Option<&[String]>,
        creator: Option<&str>,
    ) -> Result<Vec<Issue>, GitHubError> {
        let path = self.client.repo_path("/issues");
        let all = self
            .rt
            .block_on(self.client.all(&path, move || async move {
                let handler = self.issues_handler();
                let mut list = handler
                    .list()
                    .state(octocrab::params::State::Open)
                    .per_page(100u8);
                if let Some(labels) = labels {
                    list = list.labels(labels);
                }
                if let Some(creator) = creator {
                    list = list.creator(creator);
                }
                list.send().await
            }))?;
        Ok(all
            .into_iter()
            .filter(|i| i.pull_request.is_none())
            .collect())
    }

    /// Replaces an issue's title and body.
    pub fn update_issue(&self, number: u64, text: &IssueText) -> Result<Issue, GitHubError> {
        let path = self.client.repo_path(&format!("/issues/{number}"));
        let body = &truncate(&text.body);
        self.rt
            .block_on(self.client.call(Method::PATCH, &path, move || async move {
                self.issues_handler()
                    .update(number)
                    .title(&text.title)
                    .body(body)
                    .send()
                    .await
            }))
    }

    /// Closes an issue (the incident is over).
    pub fn close_issue(&self, number: u64) -> Result<Issue, GitHubError> {
        let path = self.client.repo_path(&format!("/issues/{number}"));
        self.rt
            .block_on(self.client.call(Method::PATCH, &path, move || async move {
                self.issues_handler()
                    .update(number)
                    .state(IssueState::Closed)
                    .send()
                    .await
            }))
    }

    /// Adds a comment to an issue or pull request.
    pub fn comment(&self, number: u64, body: &str) -> Result<Comment, GitHubError> {
        let path = self.client.repo_path(&format!("/issues/{number}/comments"));
        let body = &truncate(body);
        self.rt
            .block_on(self.client.call(Method::POST, &path, move || async move {
                self.issues_handler().create_comment(number, body).await
            }))
    }

    /// Every comment on an issue or pull request, oldest first.
    pub fn issue_comments(&self, number: u64) -> Result<Vec<Comment>, GitHubError> {
        self.rt.block_on(self.comments(number))
    }

    /// Sends a `repository_dispatch` event: workflows `on: repository_dispatch` with this
    /// `event_type` start, with `payload` as `github.event.client_payload`.
    pub fn dispatch(&self, event_type: &str, payload: Value) -> Result<(), GitHubError> {
        let path = &self.client.repo_path("/dispatches");
        let body = &json!({"event_type": event_type, "client_payload": payload});
        self.rt
            .block_on(self.client.call(Method::POST, path, move || async move {
                // Any 2xx is the event accepted (GitHub answers 204); anything else its error.
                let answer = self.crab()._post(path, Some(body)).await?;
                octocrab::map_github_error(answer).await.map(drop)
            }))
    }
}

fn tracked(i: Issue) -> Tracked {
    Tracked {
        number: i.number,
        url: i.html_url.to_string(),
        body: i.body.unwrap_or_default(),
    }
}

impl Incidents for GitHub {
    fn find_issue(&mut self, marker: &str) -> anyhow::Result<Option<Tracked>> {
        let me = self.rt.block_on(self.client.own_login())?;
        let starts = format!("{marker}\n");
        let mut found = None;
        // The list is filtered by creator already; the author is checked again because an
        // API (or a proxy) that ignores the filter must not hand us someone's issue.
        for i in self.open_issues_by(&me)? {
            let marked = i.body.as_deref().is_some_and(|b| b.starts_with(&starts));
            if !marked {
                continue;
            }
            // GitHub logins are case-insensitive.
            if !i.user.login.eq_ignore_ascii_case(&me) {
                tracing::warn!(
                    "issue #{} carries mlops' marker but {:?} wrote it, not {me:?}: left alone",
                    i.number,
                    i.user.login
                );
                continue;
            }
            // The oldest one is the incident; a duplicate (a lost answer) is left as it is.
            if found.as_ref().is_none_or(|f: &Issue| i.number < f.number) {
                found = Some(i);
            }
        }
        Ok(found.map(tracked))
    }

    fn open_issue(&mut self, title: &str, body: &str) -> anyhow::Result<Tracked> {
        let text = IssueText {
            title: title.to_string(),
            body: body.to_string(),
            labels: self.labels.clone(),
        };
        match GitHub::open_issue(self, &text) {
            Ok(i) => Ok(tracked(i)),
            Err(e) if e.is_unanswered() => {
                // It may have been opened: look before anyone opens it again.
                let marker = body.lines().next().unwrap_or_default();
                match self.find_issue(marker)? {
                    Some(i) => Ok(i),
                    None => Err(anyhow::Error::new(e).context(
                        "GitHub did not answer the request that opens the incident issue, and no such issue exists; the next monitor run opens it",
                    )),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    fn update_issue(&mut self, number: u64, title: &str, body: &str) -> anyhow::Result<()> {
        let text = IssueText {
            title: title.to_string(),
            body: body.to_string(),
            labels: Vec::new(),
        };
        GitHub::update_issue(self, number, &text)?;
        Ok(())
    }

    fn comment(&mut self, number: u64, body: &str) -> anyhow::Result<()> {
        GitHub::comment(self, number, body)?;
        Ok(())
    }

    fn close_issue(&mut self, number: u64) -> anyhow::Result<()> {
        GitHub::close_issue(self, number)?;
        Ok(())
    }

    fn dispatch(&mut self, event_type: &str, payload: &Value) -> anyhow::Result<String> {
        match GitHub::dispatch(self, event_type, payload.clone()) {
            Ok(()) => Ok(format!(
                "repository_dispatch {event_type} sent to {}",
                self.client.repo
            )),
            // Nothing can be read back to tell: counted as sent, so one incident never starts
            // two trainings.
            Err(e) if e.is_unanswered() => {
                tracing::warn!("{e}; counted as sent, not sent again for this incident");
                Ok(format!(
                    "repository_dispatch {event_type} sent to {} (unanswered: it may not have arrived)",
                    self.client.repo
                ))
            }
            Err(e) => Err(e.into()),
        }
    }
}
