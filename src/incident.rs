//! What an alerting (or recovered) monitor run does, per `environments.<env>.monitor.on_alert`:
//! one incident per model and environment, from the first alert to the next healthy run.
//! - `issue`: ONE open issue, found again by the hidden marker its body starts with and by its
//!   author (this forge's own account), updated in place with the newest report at every
//!   alerting run, commented on and closed by the first healthy run.
//! - `retrain`: once per incident, the forge's `mlops-retrain` event (github:
//!   repository_dispatch with `{model, environment, digest, reasons}`; local: its event log),
//!   recorded in `retrain.json`; with `run_now` on the local forge, `mlops run` and
//!   `mlops promote <env>` run at once (as child processes of this binary, so their logs and
//!   exit codes are the commands' own).
//! - `notify`: one message when the incident opens, one when it resolves; never one per run.
//!
//! Not enough data neither opens nor closes anything. The state is `incident.json` in the
//! monitor's state directory; the issue body carries it too (a hidden line), so a CI job that
//! starts without the directory finds the incident again instead of announcing a new one.
//! Failures of the forge or the webhooks are warnings: they never change what the monitor's
//! exit code means. Only a configuration error (an unknown environment) is an error.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::{ForgeKind, OnAlert};
use crate::monitor::{Health, Summary};
use crate::notify::{Message, NotifyEvent, Severity};

pub struct AlertContext<'a> {
    pub config: &'a crate::config::Config,
    pub forge: &'a mut dyn crate::forge::Forge, // github or local, as configured
    pub notifier: &'a dyn crate::notify::Notifier, // webhooks from `notify:`
    pub state_dir: std::path::PathBuf,          // .mlops/monitor/<env>/
    pub run_now: bool,                          // `mlops monitor --run` (local forge)
}

/// The event the promote workflow listens for.
pub const RETRAIN_EVENT: &str = "mlops-retrain";
const STATE_FILE: &str = "incident.json";
const TRIGGER_FILE: &str = "retrain.json";
const STATE_LINE: &str = "<!-- mlops-incident-state: ";

/// One incident's progress; `open: false` between incidents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IncidentState {
    pub open: bool,
    pub opened_at: Option<String>,
    /// What the environment pinned when the incident opened.
    pub digest: Option<String>,
    /// Alerting runs so far.
    pub alerts: u32,
    pub issue: Option<u64>,
    pub issue_url: Option<String>,
    pub retrain_sent: bool,
    pub notified: bool,
    pub updated_at: Option<String>,
}

/// The hidden first line of the incident issue of `model` in `env`.
pub fn marker(model: &str, env: &str) -> String {
    format!("<!-- mlops-incident: {model}/{env} -->")
}

/// Acts on one monitor result per `environments.<env>.monitor.on_alert`: opens/updates/closes
/// the ONE incident (state in state_dir/incident.json), dispatches retraining, notifies once
/// per incident opened and once when it resolves. Never changes the monitor's exit code
/// meaning: failures here are warnings (returned in the Vec) unless they are config errors.
pub fn handle(ctx: &mut AlertContext<'_>, summary: &Summary) -> Result<Vec<String>> {
    let env = ctx.config.environment(&summary.environment)?;
    if summary.model != ctx.config.model {
        anyhow::bail!(
            "the monitor result is about model {:?}, but {} is about {:?}",
            summary.model,
            ctx.config.file.display(),
            ctx.config.model
        );
    }
    let on_alert: Vec<OnAlert> = env
        .monitor
        .as_ref()
        .map(|m| m.on_alert.clone())
        .unwrap_or_default();
    let mut warnings = Vec::new();
    let path = ctx.state_dir.join(STATE_FILE);
    let mut state = load(&path, &mut warnings);
    let before = state.clone();
    match summary.health {
        Health::NotEnoughData => return Ok(warnings),
        Health::Alert => alert(ctx, summary, &on_alert, &mut state, &mut warnings),
        Health::Healthy => resolve(ctx, summary, &on_alert, &mut state, &mut warnings),
    }
    if state != before {
        state.updated_at = Some(summary.generated_at.clone());
        let saved = serde_json::to_vec_pretty(&state)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| crate::fsutil::write_atomic(&path, &bytes));
        if let Err(e) = saved {
            warnings.push(format!(
                "cannot write the incident state {}: {e:#}",
                path.display()
            ));
        }
    }
    Ok(warnings)
}

fn load(path: &Path, warnings: &mut Vec<String>) -> IncidentState {
    if !path.exists() {
        return IncidentState::default();
    }
    crate::fsutil::read_json(path).unwrap_or_else(|e| {
        warnings.push(format!(
            "{e:#}; starting from no open incident (the forge's issue, if any, is found again)"
        ));
        IncidentState::default()
    })
}

/// The state an issue's hidden line carries (an incident a previous job opened).
fn adopt(state: &mut IncidentState, issue: &crate::forge::Issue) {
    let line = issue.body.lines().find_map(|l| {
        l.strip_prefix(STATE_LINE)
            .and_then(|rest| rest.strip_suffix(" -->"))
    });
    let carried: IncidentState = line
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    *state = IncidentState {
        open: true,
        issue: Some(issue.number),
        issue_url: Some(issue.url.clone()),
        ..carried
    };
}

fn alert(
    ctx: &mut AlertContext<'_>,
    summary: &Summary,
    on_alert: &[OnAlert],
    state: &mut IncidentState,
    warnings: &mut Vec<String>,
) {
    let (model, env) = (&summary.model, &summary.environment);
    let marker = marker(model, env);
    // Whether to write the issue this run: not when the lookup failed (opening one then could
    // make a second issue for the incident).
    let mut write_issue = on_alert.contains(&OnAlert::Issue);
    let existing = if write_issue {
        match ctx.forge.find_issue(&marker) {
            Ok(found) => found,
            Err(e) => {
                warnings.push(format!(
                    "cannot look for the incident issue: {e:#}; the next run updates it"
                ));
                write_issue = false;
                None
            }
        }
    } else {
        None
    };
    match (&existing, state.open) {
        (Some(issue), false) => adopt(state, issue),
        (_, false) => {
            *state = IncidentState {
                open: true,
                opened_at: Some(summary.generated_at.clone()),
                digest: Some(summary.digest.clone()),
                ..IncidentState::default()
            }
        }
        (_, true) => {}
    }
    state.alerts += 1;
    if on_alert.contains(&OnAlert::Retrain) && !state.retrain_sent {
        state.retrain_sent = retrain(ctx, summary, warnings);
    }
    let notify = on_alert.contains(&OnAlert::Notify) && !state.notified;
    // Marked before sending: a webhook that fails is not asked again at every run.
    state.notified |= notify;
    if write_issue {
        let title = format!("{model}/{env}: monitoring alert");
        let body = issue_body(&marker, summary, state);
        let written = match &existing {
            Some(issue) => ctx
                .forge
                .update_issue(issue.number, &title, &body)
                .map(|()| issue.clone()),
            None => ctx.forge.open_issue(&title, &body),
        };
        match written {
            Ok(issue) => {
                state.issue = Some(issue.number);
                state.issue_url = Some(issue.url);
            }
            Err(e) => warnings.push(format!("cannot write the incident issue: {e:#}")),
        }
    }
    if notify {
        let mut text = reasons_text(&summary.reasons);
        if state.retrain_sent {
            text.push_str("\nRetraining was started.");
        }
        let message = Message::new(NotifyEvent::Monitor, "opened", Severity::Bad, model)
            .title(format!("{model}/{env}: monitoring alert"))
            .text(text)
            .environment(env)
            .digest(&summary.digest)
            .url(state.issue_url.clone());
        warnings.extend(ctx.notifier.send(&message));
    }
}

fn resolve(
    ctx: &mut AlertContext<'_>,
    summary: &Summary,
    on_alert: &[OnAlert],
    state: &mut IncidentState,
    warnings: &mut Vec<String>,
) {
    let (model, env) = (&summary.model, &summary.environment);
    if on_alert.contains(&OnAlert::Issue) {
        match ctx.forge.find_issue(&marker(model, env)) {
            Ok(Some(issue)) => {
                if !state.open {
                    adopt(state, &issue);
                }
                let comment = format!(
                    "Resolved: `mlops monitor {env}` is healthy again at {} (digest `{}`). Closed by mlops.",
                    summary.generated_at, summary.digest
                );
                let closed = ctx
                    .forge
                    .comment(issue.number, &comment)
                    .and_then(|()| ctx.forge.close_issue(issue.number));
                if let Err(e) = closed {
                    warnings.push(format!(
                        "cannot close the incident issue #{}: {e:#}",
                        issue.number
                    ));
                    // Still open: the next healthy run closes it.
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                warnings.push(format!("cannot look for the incident issue: {e:#}"));
                return;
            }
        }
    }
    if !state.open {
        return;
    }
    if on_alert.contains(&OnAlert::Notify) && state.notified {
        let text = format!(
            "Open since {}, {} alerting run(s); healthy at {}.",
            state.opened_at.as_deref().unwrap_or("an earlier run"),
            state.alerts,
            summary.generated_at
        );
        let message = Message::new(NotifyEvent::Monitor, "resolved", Severity::Good, model)
            .title(format!("{model}/{env}: monitoring healthy again"))
            .text(text)
            .environment(env)
            .digest(&summary.digest)
            .url(state.issue_url.clone());
        warnings.extend(ctx.notifier.send(&message));
    }
    *state = IncidentState::default();
}

fn reasons_text(reasons: &[String]) -> String {
    if reasons.is_empty() {
        return "The monitor alerted.".into();
    }
    reasons
        .iter()
        .map(|r| format!("- {}\n", crate::text::clean(r)))
        .collect()
}

fn issue_body(marker: &str, summary: &Summary, state: &IncidentState) -> String {
    let carried = IncidentState {
        issue: None,
        issue_url: None,
        ..state.clone()
    };
    let carried = serde_json::to_string(&carried).unwrap_or_else(|_| "{}".into());
    let retrain = if state.retrain_sent {
        format!("Retraining: `{RETRAIN_EVENT}` was sent for this incident.")
    } else {
        "Retraining: not started (`retrain` is not in `on_alert`, or sending it failed).".into()
    };
    let report = crate::text::neutralise(&summary.report_markdown);
    format!(
        "{marker}\n{STATE_LINE}{carried} -->\n## {}/{}: monitoring alert\n\nOpen since {}, {} alerting run(s); the newest at {} on `{}`.\n\n{}\n{retrain}\n\n<details><summary>Newest report</summary>\n\n{report}\n\n</details>\n\n_Updated in place by `mlops monitor`; closed by the first healthy run._\n",
        summary.model,
        summary.environment,
        state.opened_at.as_deref().unwrap_or(&summary.generated_at),
        state.alerts,
        summary.generated_at,
        summary.digest,
        crate::text::neutralise(&reasons_text(&summary.reasons)),
    )
}

/// Sends the retraining event and records it; true when it went out.
fn retrain(ctx: &mut AlertContext<'_>, summary: &Summary, warnings: &mut Vec<String>) -> bool {
    // GitHub takes at most 10 top-level keys and 64 KB: a bounded list of short reasons.
    let reasons: Vec<String> = summary
        .reasons
        .iter()
        .take(20)
        .map(|r| crate::text::clean(r).chars().take(200).collect())
        .collect();
    let payload = json!({
        "model": summary.model,
        "environment": summary.environment,
        "digest": summary.digest,
        "reasons": reasons,
    });
    let sent = match ctx.forge.dispatch(RETRAIN_EVENT, &payload) {
        Ok(where_) => where_,
        Err(e) => {
            warnings.push(format!(
                "cannot start retraining ({RETRAIN_EVENT}): {e:#}; the next alerting run tries again"
            ));
            return false;
        }
    };
    tracing::info!("retraining: {sent}");
    let trigger = json!({
        "event_type": RETRAIN_EVENT,
        "client_payload": payload,
        "sent": sent,
        "at": summary.generated_at,
    });
    let path = ctx.state_dir.join(TRIGGER_FILE);
    if let Err(e) = crate::fsutil::write_atomic(&path, trigger.to_string().as_bytes()) {
        warnings.push(format!(
            "cannot record the trigger {}: {e:#}",
            path.display()
        ));
    }
    if ctx.run_now {
        match ctx.config.forge.kind {
            ForgeKind::Local => warnings.extend(run_now(ctx.config, &summary.environment)),
            ForgeKind::Github => warnings.push(
                "--run starts retraining here only with the local forge; the github forge's workflow runs it".into(),
            ),
        }
    }
    true
}

/// `mlops run`, then `mlops promote <env>` when the run's gate said promote: this binary's own
/// commands, with their logs on stderr (stdout stays the monitor's result).
fn run_now(config: &crate::config::Config, env: &str) -> Vec<String> {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return vec![format!("cannot find the mlops binary to retrain with: {e}")],
    };
    let step = |args: &[&str]| -> Result<Option<i32>> {
        let status = std::process::Command::new(&exe)
            .arg("--config")
            .arg(config_path(config))
            .args(args)
            .stdout(std::process::Stdio::from(std::io::stderr()))
            .status()?;
        Ok(status.code())
    };
    tracing::info!("retraining now: mlops run");
    match step(&["run"]) {
        Ok(Some(0)) => {}
        Ok(code) => {
            return vec![format!(
                "the retraining run did not end in a promote verdict (mlops run exit {}); nothing was promoted",
                code.map_or("by signal".into(), |c| c.to_string())
            )]
        }
        Err(e) => return vec![format!("cannot start mlops run: {e}")],
    }
    tracing::info!("retraining now: mlops promote {env}");
    match step(&["promote", env]) {
        Ok(Some(0)) => Vec::new(),
        Ok(code) => vec![format!(
            "mlops promote {env} after the retraining run ended with exit {} (see its message above)",
            code.map_or("by signal".into(), |c| c.to_string())
        )],
        Err(e) => vec![format!("cannot start mlops promote: {e}")],
    }
}

/// mlops.yaml as the child processes must find it (absolute: they may not share our cwd).
fn config_path(config: &crate::config::Config) -> PathBuf {
    match config.file.file_name() {
        Some(name) => config.root.join(name),
        None => config.file.clone(),
    }
}

#[cfg(test)]
#[path = "incident/tests.rs"]
mod tests;
