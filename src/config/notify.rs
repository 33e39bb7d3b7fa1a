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

#[cfg(test)]
mod tests {
    use crate::config::{check_text, NotifyEvent, NotifyKind, Setting};

    const BASE: &str = "version: 1
model: churn
data:
  train: {path: data/train.csv}
  test: {path: data/test.csv}
train:
  image: i
  command: [python3, train.py]
evaluate:
  command: [python3, evaluate.py]
compare:
  metrics:
    f1: {direction: maximize, threshold: 0.8}
";

    fn check(notify: &str) -> Result<Vec<super::NotifyConfig>, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        for f in ["data/train.csv", "data/test.csv"] {
            std::fs::write(dir.path().join(f), "x\n1\n").unwrap();
        }
        let path = dir.path().join("mlops.yaml");
        let checked = check_text("mlops.yaml", &path, &format!("{BASE}{notify}"));
        match checked.config {
            Some(c) => Ok(c.notify),
            None => Err(checked.diagnostics.iter().map(|d| d.human()).collect()),
        }
    }

    #[test]
    fn every_event_by_default_and_env_settings() {
        let hooks = check(
            "notify:\n  - {type: slack, url: env:SLACK_URL}\n  - {type: webhook, url: 'https://hooks.example/x', secret: env:S, events: [monitor]}\n",
        )
        .unwrap();
        assert_eq!(hooks[0].kind, NotifyKind::Slack);
        assert_eq!(hooks[0].url, Setting::Env("SLACK_URL".into()));
        assert_eq!(hooks[0].events, NotifyEvent::ALL.to_vec());
        assert_eq!(
            hooks[1].url,
            Setting::Literal("https://hooks.example/x".into())
        );
        assert_eq!(hooks[1].secret, Some(Setting::Env("S".into())));
        assert_eq!(hooks[1].events, [NotifyEvent::Monitor]);
    }

    #[test]
    fn a_webhook_needs_a_secret_and_slack_takes_none() {
        let errors = check(
            "notify:\n  - {type: webhook, url: env:H}\n  - {type: slack, url: env:S, secret: env:K}\n",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("mlops.yaml:15:5") && errors[0].contains("needs `secret: env:VAR`"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("slack webhooks are not signed"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_literal_secret_an_unknown_event_and_a_bare_word_url_are_refused() {
        let errors = check(
            "notify:\n  - {type: webhook, url: env:H, secret: hunter2}\n  - {type: teams, url: env:T, events: [deploys]}\n  - {type: slack, url: hooks.slack.com}\n",
        )
        .unwrap_err();
        let all = errors.join("\n");
        assert!(all.contains("notify.0.secret"), "{all}");
        assert!(all.contains("notify.1.events"), "{all}");
        assert!(all.contains("notify.2.url"), "{all}");
    }
}
