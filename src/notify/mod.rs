//! Webhooks for what happened: a failed data check, a rejected challenger, a proposed promotion
//! or rollback, a deploy or its failure, a monitoring incident opening or resolving. Each of
//! mlops.yaml's `notify:` entries takes the events it lists, in its receiver's shape:
//! - `slack`: an incoming-webhook JSON (`text` plus Block Kit `blocks`), text escaped for
//!   Slack's mrkdwn;
//! - `teams`: a Workflows webhook message carrying one Adaptive Card;
//! - `webhook`: mlops' own JSON ([`payload::generic`]), signed: `X-Mlops-Signature-256:
//!   sha256=<hex HMAC-SHA256 of the body with the secret>`, like GitHub's webhooks, plus
//!   `X-Mlops-Event` and `X-Mlops-Delivery` (one id per message, the same on every retry, so
//!   a receiver can drop a duplicate).
//!
//! Retries (through [`crate::http::Policy`]): a POST is not idempotent, so only an answer that
//! says nothing was done is asked again — no connection made, or a 5xx/429 (after its
//! `Retry-After` or the backoff, doubling). A request that was sent and got no answer is not
//! repeated (the receiver may have posted it). A webhook that fails is a warning: a
//! notification never changes what a command's exit code means.
//!
//! The URLs (credentials: a Slack webhook URL is enough to post) are never logged; warnings
//! name the entry (`notify.0`), its type and its host.

pub mod payload;
mod send;

use serde::Serialize;

pub use crate::config::{NotifyEvent, NotifyKind};
pub use crate::http::Policy;
pub use send::Webhooks;

/// How a message should look: good news, news, a warning, or a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Good,
    Info,
    Warning,
    Bad,
}

/// One thing that happened, for every webhook that takes its event.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub event: NotifyEvent,
    /// What happened to it, one word: `opened`, `resolved`, `failed`, `rejected`, `proposed`,
    /// `deployed`.
    pub action: String,
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// A few lines of Markdown-ish text (reasons, what to do).
    pub text: String,
    pub model: String,
    pub environment: Option<String>,
    pub digest: Option<String>,
    /// Where to see more: an issue, a pull request.
    pub url: Option<String>,
}

impl Message {
    pub fn new(event: NotifyEvent, action: &str, severity: Severity, model: &str) -> Message {
        Message {
            event,
            action: action.to_string(),
            severity,
            title: String::new(),
            text: String::new(),
            model: model.to_string(),
            environment: None,
            digest: None,
            url: None,
        }
    }

    pub fn title(mut self, title: impl Into<String>) -> Message {
        self.title = title.into();
        self
    }

    pub fn text(mut self, text: impl Into<String>) -> Message {
        self.text = text.into();
        self
    }

    pub fn environment(mut self, env: &str) -> Message {
        self.environment = Some(env.to_string());
        self
    }

    pub fn digest(mut self, digest: &str) -> Message {
        self.digest = Some(digest.to_string());
        self
    }

    pub fn url(mut self, url: Option<String>) -> Message {
        self.url = url.filter(|u| !u.is_empty());
        self
    }
}

/// Where messages go.
pub trait Notifier {
    /// Sends `message` to every webhook that takes its event; each one that failed comes back
    /// as a warning (nothing here is an error).
    fn send(&self, message: &Message) -> Vec<String>;
}

/// One webhook of `notify:`, its `env:` settings read.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Its place in mlops.yaml, for messages: `notify.0`.
    pub name: String,
    pub kind: NotifyKind,
    pub url: String,
    /// `webhook`: the HMAC key.
    pub secret: Option<Vec<u8>>,
    pub events: Vec<NotifyEvent>,
}

impl Webhook {
    /// How warnings name it: entry, type and host, never the URL (a credential).
    pub fn label(&self) -> String {
        let host = reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "an unparsable URL".into());
        let kind = match self.kind {
            NotifyKind::Slack => "slack",
            NotifyKind::Teams => "teams",
            NotifyKind::Webhook => "webhook",
        };
        format!("{} ({kind}, {host})", self.name)
    }
}
