//! The `notify:` webhooks of a command, their `env:` settings read from the environment (the
//! one place that reads them), and [`tell`]: what every command calls when an outcome worth a
//! message is decided. A webhook whose variable is unset is skipped with a warning; nothing
//! here fails a command or changes its exit code.
//!
//! - `MLOPS_NOTIFY_BACKOFF_MS`: the first retry delay of a busy webhook (default 1000, doubled)
//! - `MLOPS_NOTIFY_TIMEOUT_SECS`: per request (default 10)

use std::time::Duration;

use crate::config::{Config, Setting};
use crate::http::Policy;
use crate::notify::{Message, Notifier, Webhook, Webhooks};

pub(super) const HELP: &str = "Notifications (mlops.yaml `notify:`):\n  the variables its url/secret name (env:VAR)\n  MLOPS_NOTIFY_BACKOFF_MS   first retry delay of a webhook answering 5xx/429 (default 1000)\n  MLOPS_NOTIFY_TIMEOUT_SECS per request (default 10)";

fn number(name: &str, default: u64, warnings: &mut Vec<String>) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| {
            warnings.push(format!(
                "{name}={v:?} is not a whole number; using {default}"
            ));
            default
        }),
        _ => default,
    }
}

fn value(setting: &Setting) -> Result<String, String> {
    match setting {
        Setting::Literal(v) => Ok(v.clone()),
        Setting::Env(var) => std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_string())
            .ok_or_else(|| format!("{var} is not set")),
    }
}

/// The webhooks of mlops.yaml whose settings are at hand, and warnings for the others.
pub(super) fn webhooks(config: &Config) -> (Webhooks, Vec<String>) {
    let mut warnings = Vec::new();
    let mut hooks = Vec::new();
    for (i, n) in config.notify.iter().enumerate() {
        let name = format!("notify.{i}");
        let url = match value(&n.url) {
            Ok(u) => u,
            Err(why) => {
                warnings.push(format!("{name}: {why}; that webhook is not told"));
                continue;
            }
        };
        let secret = match n.secret.as_ref().map(value).transpose() {
            Ok(s) => s.map(String::into_bytes),
            Err(why) => {
                warnings.push(format!(
                    "{name}: {why} (its secret); that webhook is not told"
                ));
                continue;
            }
        };
        hooks.push(Webhook {
            name,
            kind: n.kind,
            url,
            secret,
            events: n.events.clone(),
        });
    }
    let policy = Policy {
        backoff: Duration::from_millis(number("MLOPS_NOTIFY_BACKOFF_MS", 1000, &mut warnings)),
        ..Policy::default()
    };
    let timeout =
        Duration::from_secs(number("MLOPS_NOTIFY_TIMEOUT_SECS", 10, &mut warnings).max(1));
    (Webhooks::new(hooks, policy, timeout), warnings)
}

/// Sends `message` to the webhooks that take its event; problems are printed as warnings.
pub(super) fn tell(config: &Config, message: Message) {
    if !config
        .notify
        .iter()
        .any(|n| n.events.contains(&message.event))
    {
        return;
    }
    let (hooks, mut warnings) = webhooks(config);
    warnings.extend(hooks.send(&message));
    warn(&warnings);
}

pub(super) fn warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("mlops: warning: {}", crate::text::neutralise(w));
    }
}

// The events of the other commands: one call each from where the outcome is decided.

use crate::notify::{NotifyEvent, Severity};

/// A data check failed (`mlops data check`, `mlops run`).
pub(super) fn data_failed(config: &Config, report: &crate::data::check::Report) {
    if report.passed {
        return;
    }
    let errors: Vec<String> = report
        .datasets
        .iter()
        .flat_map(|d| {
            d.messages
                .iter()
                .filter(|m| m.level == crate::data::check::Level::Error)
                .map(move |m| format!("- {}: {}", d.name, m.text))
        })
        .take(10)
        .collect();
    let m = Message::new(
        NotifyEvent::Data,
        "failed",
        Severity::Warning,
        &config.model,
    )
    .title(format!("{}: data check failed", config.model))
    .text(errors.join("\n"));
    tell(config, m);
}

/// The gate rejected a challenger (`mlops compare`, `mlops run`).
pub(super) fn rejected(config: &Config, comparison: &crate::compare::Comparison) {
    if comparison.verdict != crate::compare::Verdict::Reject {
        return;
    }
    let run = comparison.run_id.as_deref().unwrap_or("the challenger");
    let text: Vec<String> = comparison
        .reasons
        .iter()
        .take(10)
        .map(|r| format!("- {r}"))
        .collect();
    let m = Message::new(
        NotifyEvent::Verdict,
        "rejected",
        Severity::Warning,
        &config.model,
    )
    .title(format!("{}: the gate rejected run {run}", config.model))
    .text(text.join("\n"));
    tell(config, m);
}

/// A promotion (or, `rollback`, a rollback) was proposed with a new commit.
pub(super) fn proposed(config: &Config, promoted: &crate::promote::Promoted, rollback: bool) {
    if promoted.proposal.commit.is_none() {
        return;
    }
    let (event, what) = match rollback {
        true => (NotifyEvent::Rollback, "rollback"),
        false => (NotifyEvent::Promotion, "promotion"),
    };
    let env = &promoted.environment;
    let digest = promoted.state.digest.to_string();
    let m = Message::new(event, "proposed", Severity::Info, &config.model)
        .title(format!(
            "{}: {what} of run {} to {env} proposed",
            config.model, promoted.state.run_id
        ))
        .text(format!("Merge it to deploy: {}", promoted.proposal.url))
        .environment(env)
        .digest(&digest)
        .url(Some(promoted.proposal.url.clone()));
    tell(config, m);
}

/// A deploy ended: `told` is `Ok(url)` running, `Err(why)` refused, None nothing to do; an
/// error of the command is a failure too.
pub(super) fn deploy_ended<T>(
    config: &Config,
    env: &str,
    digest: &str,
    ended: &anyhow::Result<T>,
    told: Option<Result<String, String>>,
) {
    let outcome = match (ended, told) {
        (Err(e), _) => Err(format!("{e:#}")),
        (Ok(_), None) => return,
        (Ok(_), Some(t)) => t,
    };
    let m = match outcome {
        Ok(url) => Message::new(
            NotifyEvent::Deploy,
            "deployed",
            Severity::Good,
            &config.model,
        )
        .title(format!("{}: {env} runs {digest}", config.model))
        .text(format!("Serving at {url}")),
        Err(why) => Message::new(NotifyEvent::Deploy, "failed", Severity::Bad, &config.model)
            .title(format!("{}: deploy to {env} failed", config.model))
            .text(why),
    };
    tell(config, m.environment(env).digest(digest));
}
