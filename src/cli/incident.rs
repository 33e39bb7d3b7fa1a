//! The alert side of `mlops monitor`, wired for the command line: the forge mlops.yaml
//! configures (opened only when `on_alert` needs it), the `notify:` webhooks with their `env:`
//! settings, and [`crate::incident::handle`]. Everything that goes wrong here comes back as a
//! warning; only a configuration error is an error, so the monitor's exit code keeps its
//! meaning (0 healthy, 1 alert, 2 failure).
//!
//! `src/cli/monitor.rs` (the monitor branch) calls [`alert`] after writing monitor.json and
//! report.md; until that lands, nothing outside the tests does.

use std::path::PathBuf;

use anyhow::Result;

use crate::config::{Config, OnAlert};
use crate::forge::{Change, Forge, Incidents, Issue, Proposal};
use crate::incident::{self, AlertContext};
use crate::monitor::Summary;

/// Acts on one monitor result, whose state lives in `state_dir` (`.mlops/monitor/<env>/`);
/// `run_now`: `mlops monitor --run`. Returns the warnings for the caller to print.
pub(super) fn alert(
    config: &Config,
    summary: &Summary,
    state_dir: PathBuf,
    run_now: bool,
) -> Result<Vec<String>> {
    let env = config.environment(&summary.environment)?;
    let on_alert = env.monitor.as_ref().map(|m| m.on_alert.as_slice());
    let needs_forge = on_alert
        .unwrap_or_default()
        .iter()
        .any(|a| matches!(a, OnAlert::Retrain | OnAlert::Issue));
    let (hooks, mut warnings) = super::notify::webhooks(config);
    let mut forge: Box<dyn Forge> = match needs_forge.then(|| super::forge::open(config)) {
        Some(Ok(forge)) => forge,
        Some(Err(e)) => Box::new(Unavailable(format!("{e:#}"))),
        None => Box::new(Unavailable("on_alert asks nothing of the forge".into())),
    };
    let mut ctx = AlertContext {
        config,
        forge: forge.as_mut(),
        notifier: &hooks,
        state_dir,
        run_now,
    };
    warnings.extend(incident::handle(&mut ctx, summary)?);
    Ok(warnings)
}

/// A forge that could not be opened (no token, say): every request is that error, which the
/// incident turns into a warning, while the webhooks are still told.
struct Unavailable(String);

impl Unavailable {
    fn no<T>(&self) -> Result<T> {
        anyhow::bail!("the forge is not available: {}", self.0)
    }
}

impl Forge for Unavailable {
    fn read(&mut self, _: &Change, _: &str) -> Result<Option<String>> {
        self.no()
    }
    fn propose(&mut self, _: &Change) -> Result<Proposal> {
        self.no()
    }
}

impl Incidents for Unavailable {
    fn find_issue(&mut self, _: &str) -> Result<Option<Issue>> {
        self.no()
    }
    fn open_issue(&mut self, _: &str, _: &str) -> Result<Issue> {
        self.no()
    }
    fn update_issue(&mut self, _: u64, _: &str, _: &str) -> Result<()> {
        self.no()
    }
    fn comment(&mut self, _: u64, _: &str) -> Result<()> {
        self.no()
    }
    fn close_issue(&mut self, _: u64) -> Result<()> {
        self.no()
    }
    fn dispatch(&mut self, _: &str, _: &serde_json::Value) -> Result<String> {
        self.no()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::Health;

    fn project(forge: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("data")).unwrap();
        for f in ["data/train.csv", "data/test.csv"] {
            std::fs::write(root.join(f), "x\n1\n").unwrap();
        }
        let yaml = format!(
            "version: 1\nmodel: churn\ndata: {{train: {{path: data/train.csv}}, test: {{path: data/test.csv}}}}\ntrain: {{image: i, command: [t]}}\nevaluate: {{command: [e]}}\ncompare: {{metrics: {{f1: {{direction: maximize, threshold: 0.8}}}}}}\nenvironments:\n  staging:\n    deploy: {{target: command, command: ['true']}}\n    monitor: {{inputs: {{path: data/test.csv}}, on_alert: [issue]}}\nforge: {forge}\n"
        );
        std::fs::write(root.join("mlops.yaml"), yaml).unwrap();
        crate::git::run(root, &["init", "-q", "-b", "main"]).unwrap();
        let config = crate::config::load(&root.join("mlops.yaml")).unwrap();
        (dir, config)
    }

    fn summary() -> Summary {
        Summary {
            model: "churn".into(),
            environment: "staging".into(),
            digest: format!("sha256:{}", "e".repeat(64)),
            health: Health::Alert,
            reasons: vec!["errors: 5% > 1%".into()],
            report_markdown: "# report\n".into(),
            generated_at: "2026-12-01T14:00:00Z".into(),
        }
    }

    #[test]
    fn the_local_forge_keeps_the_incident_issue_in_the_git_directory() {
        let (dir, config) = project("{type: local}");
        let state = dir.path().join(".mlops/monitor/staging");
        let warnings = alert(&config, &summary(), state.clone(), false).unwrap();
        assert_eq!(warnings, Vec::<String>::new());
        let issues = dir.path().join(".git/mlops/issues");
        let one: serde_json::Value = crate::fsutil::read_json(&issues.join("1.json")).unwrap();
        assert_eq!(one["state"], "open");
        assert!(one["body"].as_str().unwrap().contains("errors: 5% > 1%"));
        assert!(state.join("incident.json").exists());
    }

    #[test]
    fn a_forge_that_cannot_open_is_a_warning_not_a_failure() {
        // The github forge without a repository or a token cannot be opened.
        let (dir, config) = project("{type: github}");
        let state = dir.path().join(".mlops/monitor/staging");
        let warnings = alert(&config, &summary(), state, false).unwrap();
        // (Where GITHUB_TOKEN and GITHUB_REPOSITORY are set it opens, and the API is out of
        // reach: a warning too.)
        assert!(!warnings.is_empty());
        assert!(
            warnings[0].starts_with("cannot look for the incident issue"),
            "{warnings:?}"
        );
    }
}
