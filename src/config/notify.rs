//! mlops.yaml's top-level `notify:` list: webhooks that hear about data checks, verdicts,
//! promotions, deploys, rollbacks and monitoring incidents. URLs and secrets are written as
//! `env:VAR` (a webhook URL is a credential): the command line reads the variables, never the
//! policy code.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One webhook of `notify:`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    #[serde(rename = "type")]
    pub kind: NotifyKind,
    /// The webhook's URL: env:VAR naming the variable that holds it (keep it out of git), or
    /// an https:// URL.
    #[schemars(regex(pattern = r"^(env:[A-Za-z_][A-Za-z0-9_]*|https?://\S+)$"))]
    pub url: String,
    /// webhook: the HMAC-SHA256 key of `X-Mlops-Signature-256`, as env:VAR.
    #[schemars(regex(pattern = r"^env:[A-Za-z_][A-Za-z0-9_]*$"))]
    pub secret: Option<String>,
    /// The events sent to this webhook (default: all of them).
    #[schemars(length(min = 1))]
    pub events: Option<Vec<NotifyEvent>>,
}

/// The kind of receiver, which decides the message's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// A Slack incoming webhook (JSON with `text` and Block Kit `blocks`).
    Slack,
    /// A Microsoft Teams Workflows webhook (a message with an Adaptive Card).
    Teams,
    /// Any HTTP endpoint: mlops' JSON, signed with `secret` in X-Mlops-Signature-256.
    Webhook,
}

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifyEvent {
    /// A data check failed.
    Data,
    /// The gate rejected a challenger.
    Verdict,
    /// A promotion was proposed.
    Promotion,
    /// A deploy succeeded or failed.
    Deploy,
    /// A rollback was proposed.
    Rollback,
    /// A monitoring incident opened or resolved.
    Monitor,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 6] = [
        NotifyEvent::Data,
        NotifyEvent::Verdict,
        NotifyEvent::Promotion,
        NotifyEvent::Deploy,
        NotifyEvent::Rollback,
        NotifyEvent::Monitor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Data => "data",
            NotifyEvent::Verdict => "verdict",
            NotifyEvent::Promotion => "promotion",
            NotifyEvent::Deploy => "deploy",
            NotifyEvent::Rollback => "rollback",
            NotifyEvent::Monitor => "monitor",
        }
    }
}

/// A value written as `env:VAR` or literally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Setting {
    Literal(String),
    Env(String),
}

impl Setting {
    fn parse(text: &str) -> Setting {
        match text.strip_prefix("env:") {
            Some(var) => Setting::Env(var.to_string()),
            None => Setting::Literal(text.to_string()),
        }
    }
}

/// One webhook, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyConfig {
    pub kind: NotifyKind,
    pub url: Setting,
    pub secret: Option<Setting>,
    /// The events it takes; every event when mlops.yaml lists none.
    pub events: Vec<NotifyEvent>,
}

pub(super) fn resolve(raw: Option<&Vec<RawNotify>>) -> Vec<NotifyConfig> {
    raw.into_iter()
        .flatten()
        .map(|n| NotifyConfig {
            kind: n.kind,
            url: Setting::parse(&n.url),
            secret: n.secret.as_deref().map(Setting::parse),
            events: n
                .events
                .clone()
                .unwrap_or_else(|| NotifyEvent::ALL.to_vec()),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// STAND-IN (loop helper, issue 19): `environments.<env>.monitor.on_alert` only, so
// `incident::handle` can read it before the monitor helper's `monitor:` block lands. Their
// RawMonitor / MonitorConfig (with every monitor key and this same `on_alert`) replace these.

/// What an alerting monitor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnAlert {
    /// Start a retraining: repository_dispatch `mlops-retrain` (github), a trigger file and,
    /// with `mlops monitor --run`, `mlops run` + `mlops promote` (local).
    Retrain,
    /// One issue per model and environment, updated with the newest report, closed when healthy.
    Issue,
    /// The `notify:` webhooks: once when an incident opens, once when it resolves.
    Notify,
}

/// `environments.<env>.monitor` (stand-in: only `on_alert`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    pub on_alert: Option<Vec<OnAlert>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonitorConfig {
    pub on_alert: Vec<OnAlert>,
}

impl MonitorConfig {
    pub(super) fn resolve(raw: &RawMonitor) -> MonitorConfig {
        MonitorConfig {
            on_alert: raw.on_alert.clone().unwrap_or_default(),
        }
    }
}
