//! Incidents on the github forge, against the in-process fake GitHub API (every request and
//! answer checked against GitHub's description when the fake is dropped): one
//! `repository_dispatch` per incident, one issue updated in place over three alerting runs and
//! closed with a comment when healthy, a marked issue someone else wrote left alone.

use std::time::Duration;

use mlops::forge::github::{Auth, GitHub, Settings};
use mlops::incident::{self, AlertContext};
use mlops::monitor::{Health, Summary};
use mlops::notify::{Policy, Webhooks};

use crate::common::{copy_dir, fixture};
use crate::fake_github::{Fake, FaultKind, NAME, OWNER};

const TOKEN: &str = "ghs_incidentTESTtoken0123456789";

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("churn"), dir.path());
    let yaml = dir.path().join("mlops.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let text = text
        .replacen(
            "  staging: {deploy: {target: docker, port: 18080, health: /health}}\n",
            "  staging:\n    deploy: {target: docker, port: 18080, health: /health}\n    monitor: {inputs: {path: data/test.csv}, on_alert: [retrain, issue, notify]}\n",
            1,
        )
        .replacen(
            "forge:\n  type: local\n  base: main",
            &format!("forge:\n  type: github\n  repository: {OWNER}/{NAME}\n  base: main\n  labels: [mlops, incident]"),
            1,
        );
    assert!(
        text.contains("on_alert") && text.contains("type: github"),
        "{text}"
    );
    std::fs::write(&yaml, text).unwrap();
    dir
}

fn summary(health: Health, n: u32) -> Summary {
    Summary {
        model: "churn".into(),
        environment: "staging".into(),
        digest: format!("sha256:{}", "d".repeat(64)),
        health,
        reasons: if health == Health::Alert {
            vec![format!("drift: tenure (run {n})"), "f1 0.71 < 0.8".into()]
        } else {
            Vec::new()
        },
        report_markdown: format!("# Monitor report {n}\n\nf1 0.71\n"),
        generated_at: format!("2026-12-01T13:0{n}:00Z"),
    }
}

fn count(fake: &Fake, method: &str, path: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

fn settings(fake: &Fake) -> Settings {
    Settings {
        api_url: fake.url.clone(),
        auth: Some(Auth::Token(TOKEN.into())),
        policy: Policy {
            backoff: Duration::from_millis(20),
            ..Settings::default().policy
        },
        ..Settings::default()
    }
}

#[test]
fn one_dispatch_and_one_issue_per_incident_updated_in_place_and_closed_when_healthy() {
    let fake = Fake::start(TOKEN);
    let dir = project();
    let config = mlops::config::load(&dir.path().join("mlops.yaml")).unwrap();
    let mut forge = GitHub::new(dir.path(), &config.forge, &settings(&fake)).unwrap();
    // Anyone can write the marker: an issue by someone else is not ours to edit or close.
    let marker = incident::marker("churn", "staging");
    let foreign = fake.add_issue("Close me", &format!("{marker}\nplease"), "mallory");
    let quiet = Webhooks::new(Vec::new(), Policy::default(), Duration::from_secs(1));
    let state_dir = dir.path().join(".mlops/monitor/staging");
    let mut handle = |health, n| {
        let mut ctx = AlertContext {
            config: &config,
            forge: &mut forge,
            notifier: &quiet,
            state_dir: state_dir.clone(),
            run_now: false,
        };
        incident::handle(&mut ctx, &summary(health, n)).unwrap()
    };
    for n in 1..=3 {
        assert_eq!(handle(Health::Alert, n), Vec::<String>::new());
    }
    let dispatches = fake.dispatches();
    assert_eq!(
        dispatches.len(),
        1,
        "one dispatch per incident: {dispatches:?}"
    );
    let (event, payload) = &dispatches[0];
    assert_eq!(event, "mlops-retrain");
    assert_eq!(payload["model"], "churn");
    assert_eq!(payload["environment"], "staging");
    assert_eq!(payload["digest"], format!("sha256:{}", "d".repeat(64)));
    assert_eq!(payload["reasons"][0], "drift: tenure (run 1)");
    assert_eq!(payload["reasons"][1], "f1 0.71 < 0.8");

    let ours: Vec<_> = fake
        .issues()
        .into_iter()
        .filter(|i| i.number != foreign)
        .collect();
    assert_eq!(ours.len(), 1, "one issue: {ours:?}");
    let issue = &ours[0];
    assert_eq!(issue.state, "open");
    assert_eq!(issue.labels, ["mlops", "incident"]);
    assert!(
        issue.body.starts_with(&format!("{marker}\n")),
        "{}",
        issue.body
    );
    assert!(
        issue.body.contains("# Monitor report 3"),
        "the newest report: {}",
        issue.body
    );
    assert!(!issue.body.contains("# Monitor report 2"));
    assert!(issue.body.contains("3 alerting run(s)"), "{}", issue.body);
    assert_eq!(count(&fake, "POST", "/repos/acme/churn/issues"), 1);
    let path = format!("/repos/acme/churn/issues/{}", issue.number);
    assert_eq!(count(&fake, "PATCH", &path), 2, "updated in place twice");
    let trigger: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state_dir.join("retrain.json")).unwrap()).unwrap();
    assert!(trigger["sent"]
        .as_str()
        .unwrap()
        .contains("repository_dispatch mlops-retrain"));

    // Not enough data changes nothing; healthy closes it with a comment, once.
    handle(Health::NotEnoughData, 4);
    assert_eq!(
        fake.issues()
            .iter()
            .find(|i| i.number == issue.number)
            .unwrap()
            .state,
        "open"
    );
    assert!(handle(Health::Healthy, 5).is_empty());
    handle(Health::Healthy, 6);
    let closed = fake
        .issues()
        .into_iter()
        .find(|i| i.number == issue.number)
        .unwrap();
    assert_eq!(closed.state, "closed");
    let comments: Vec<_> = fake
        .comments()
        .into_iter()
        .filter(|c| c.issue == issue.number)
        .collect();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0].body.contains("healthy again"),
        "{}",
        comments[0].body
    );
    assert_eq!(fake.dispatches().len(), 1);

    // The foreign issue was never touched.
    let f = fake
        .issues()
        .into_iter()
        .find(|i| i.number == foreign)
        .unwrap();
    assert_eq!(
        (f.state.as_str(), f.body.as_str()),
        ("open", format!("{marker}\nplease").as_str())
    );
    assert_eq!(
        count(
            &fake,
            "PATCH",
            &format!("/repos/acme/churn/issues/{foreign}")
        ),
        0
    );
    assert!(fake.comments().iter().all(|c| c.issue != foreign));

    // A new alert is a new incident: a new issue and a new dispatch.
    handle(Health::Alert, 7);
    assert_eq!(fake.dispatches().len(), 2);
    let open: Vec<_> = fake
        .issues()
        .into_iter()
        .filter(|i| i.state == "open" && i.number != foreign)
        .collect();
    assert_eq!(open.len(), 1);
    assert_ne!(open[0].number, issue.number);
    let violations = fake.take_violations();
    assert!(violations.is_empty(), "{violations:#?}");
}

/// GitHub applied the create and the dispatch but the answers were lost: the issue is found
/// again by its marker (no second issue), and the dispatch counts as sent (no second training).
#[test]
fn lost_answers_make_no_second_issue_and_no_second_dispatch() {
    let fake = Fake::start(TOKEN);
    let dir = project();
    let config = mlops::config::load(&dir.path().join("mlops.yaml")).unwrap();
    let mut forge = GitHub::new(dir.path(), &config.forge, &settings(&fake)).unwrap();
    fake.fault("POST", "/dispatches", FaultKind::DropAfter, 1);
    fake.fault("POST", "/issues", FaultKind::DropAfter, 1);
    let quiet = Webhooks::new(Vec::new(), Policy::default(), Duration::from_secs(1));
    for n in 1..=2 {
        let mut ctx = AlertContext {
            config: &config,
            forge: &mut forge,
            notifier: &quiet,
            state_dir: dir.path().join(".mlops/monitor/staging"),
            run_now: false,
        };
        let warnings = incident::handle(&mut ctx, &summary(Health::Alert, n)).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }
    assert_eq!(fake.dispatches().len(), 1);
    let issues = fake.issues();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(
        issues[0].body.contains("# Monitor report 2"),
        "{}",
        issues[0].body
    );
    assert_eq!(count(&fake, "POST", "/repos/acme/churn/issues"), 1);
    let violations = fake.take_violations();
    assert!(violations.is_empty(), "{violations:#?}");
}
