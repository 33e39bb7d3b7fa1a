//! The incident policy against an in-memory forge and a recording notifier.

use std::cell::RefCell;

use super::*;
use crate::forge::{Change, Forge, Incidents, Issue, Proposal};

fn yaml(on_alert: &str) -> String {
    format!(
        "version: 1
model: churn
data:
  train: {{path: data/train.csv}}
  test: {{path: data/test.csv}}
train:
  image: mlops-test/python-sklearn
  command: [python3, train.py]
evaluate:
  command: [python3, evaluate.py]
compare:
  metrics:
    f1: {{direction: maximize, threshold: 0.8}}
environments:
  staging:
    deploy: {{target: command, command: ['true']}}
    monitor: {{inputs: {{path: data/test.csv}}, on_alert: {on_alert}}}
forge: {{type: local, base: main}}
"
    )
}

struct Project {
    dir: tempfile::TempDir,
    config: crate::config::Config,
}

fn project(on_alert: &str) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::write(root.join("data/train.csv"), "x,label\n1,0\n").unwrap();
    std::fs::write(root.join("data/test.csv"), "x,label\n1,0\n").unwrap();
    std::fs::write(root.join("mlops.yaml"), yaml(on_alert)).unwrap();
    let config = crate::config::load(&root.join("mlops.yaml")).unwrap();
    Project { dir, config }
}

#[derive(Debug, Clone)]
struct Stored {
    number: u64,
    open: bool,
    title: String,
    body: String,
    author: String,
    comments: Vec<String>,
    updates: usize,
}

/// Issues and dispatches as a forge would keep them; `fail_dispatches` makes that many
/// dispatches fail first.
#[derive(Default)]
struct MemoryForge {
    issues: Vec<Stored>,
    dispatches: Vec<(String, serde_json::Value)>,
    fail_dispatches: usize,
}

impl Forge for MemoryForge {
    fn read(&mut self, _: &Change, _: &str) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    fn propose(&mut self, _: &Change) -> anyhow::Result<Proposal> {
        anyhow::bail!("incidents propose nothing")
    }
}

impl Incidents for MemoryForge {
    fn find_issue(&mut self, marker: &str) -> anyhow::Result<Option<Issue>> {
        Ok(self
            .issues
            .iter()
            .find(|i| i.open && i.author == "mlops" && i.body.starts_with(&format!("{marker}\n")))
            .map(|i| Issue {
                number: i.number,
                url: format!("memory://issues/{}", i.number),
                body: i.body.clone(),
            }))
    }
    fn open_issue(&mut self, title: &str, body: &str) -> anyhow::Result<Issue> {
        let number = self.issues.len() as u64 + 1;
        self.issues.push(Stored {
            number,
            open: true,
            title: title.into(),
            body: body.into(),
            author: "mlops".into(),
            comments: Vec::new(),
            updates: 0,
        });
        Ok(Issue {
            number,
            url: format!("memory://issues/{number}"),
            body: body.into(),
        })
    }
    fn update_issue(&mut self, number: u64, title: &str, body: &str) -> anyhow::Result<()> {
        let i = &mut self.issues[number as usize - 1];
        i.title = title.into();
        i.body = body.into();
        i.updates += 1;
        Ok(())
    }
    fn comment(&mut self, number: u64, body: &str) -> anyhow::Result<()> {
        self.issues[number as usize - 1].comments.push(body.into());
        Ok(())
    }
    fn close_issue(&mut self, number: u64) -> anyhow::Result<()> {
        self.issues[number as usize - 1].open = false;
        Ok(())
    }
    fn dispatch(&mut self, event: &str, payload: &serde_json::Value) -> anyhow::Result<String> {
        if self.fail_dispatches > 0 {
            self.fail_dispatches -= 1;
            anyhow::bail!("the forge is down");
        }
        self.dispatches.push((event.into(), payload.clone()));
        Ok("memory".into())
    }
}

#[derive(Default)]
struct Recorder(RefCell<Vec<Message>>);

impl crate::notify::Notifier for Recorder {
    fn send(&self, message: &Message) -> Vec<String> {
        self.0.borrow_mut().push(message.clone());
        Vec::new()
    }
}

fn summary(health: Health, n: u32) -> Summary {
    Summary {
        model: "churn".into(),
        environment: "staging".into(),
        digest: format!("sha256:{}", "a".repeat(64)),
        health,
        reasons: match health {
            Health::Alert => vec![format!("drift: x3, x7 (run {n})")],
            _ => Vec::new(),
        },
        report_markdown: format!("# Monitor report {n}\n"),
        generated_at: format!("2026-12-01T10:0{n}:00Z"),
    }
}

fn run(
    p: &Project,
    forge: &mut MemoryForge,
    notes: &Recorder,
    health: Health,
    n: u32,
) -> Vec<String> {
    let mut ctx = AlertContext {
        config: &p.config,
        forge,
        notifier: notes,
        state_dir: p.dir.path().join(".mlops/monitor/staging"),
        run_now: false,
    };
    handle(&mut ctx, &summary(health, n)).unwrap()
}

#[test]
fn three_alerts_make_one_incident_and_a_healthy_run_resolves_it() {
    let p = project("[retrain, issue, notify]");
    let (mut forge, notes) = (MemoryForge::default(), Recorder::default());
    for n in 1..=3 {
        assert!(run(&p, &mut forge, &notes, Health::Alert, n).is_empty());
    }
    assert_eq!(forge.issues.len(), 1, "one issue for the incident");
    let issue = &forge.issues[0];
    assert!(issue.open);
    assert_eq!(issue.updates, 2, "updated in place by the 2nd and 3rd run");
    assert!(issue.body.contains("# Monitor report 3"), "{}", issue.body);
    assert!(issue.body.contains("3 alerting run(s)"), "{}", issue.body);
    assert_eq!(forge.dispatches.len(), 1, "one retraining per incident");
    let (event, payload) = &forge.dispatches[0];
    assert_eq!(event, "mlops-retrain");
    assert_eq!(payload["model"], "churn");
    assert_eq!(payload["environment"], "staging");
    assert_eq!(payload["digest"], format!("sha256:{}", "a".repeat(64)));
    assert_eq!(payload["reasons"][0], "drift: x3, x7 (run 1)");
    assert_eq!(notes.0.borrow().len(), 1, "one message when it opens");
    assert_eq!(notes.0.borrow()[0].action, "opened");
    assert_eq!(
        notes.0.borrow()[0].url.as_deref(),
        Some("memory://issues/1")
    );
    let trigger = p.dir.path().join(".mlops/monitor/staging/retrain.json");
    let t: serde_json::Value = crate::fsutil::read_json(&trigger).unwrap();
    assert_eq!(t["client_payload"]["environment"], "staging");

    assert!(run(&p, &mut forge, &notes, Health::Healthy, 4).is_empty());
    let issue = &forge.issues[0];
    assert!(!issue.open, "closed when healthy");
    assert_eq!(issue.comments.len(), 1);
    assert!(
        issue.comments[0].contains("healthy again"),
        "{:?}",
        issue.comments
    );
    let sent = notes.0.borrow();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].action, "resolved");
    assert!(
        sent[1].text.contains("3 alerting run(s)"),
        "{}",
        sent[1].text
    );
    drop(sent);

    // Healthy again: nothing more. A new alert is a new incident.
    assert!(run(&p, &mut forge, &notes, Health::Healthy, 5).is_empty());
    assert_eq!(notes.0.borrow().len(), 2);
    run(&p, &mut forge, &notes, Health::Alert, 6);
    assert_eq!(forge.issues.len(), 2);
    assert_eq!(forge.dispatches.len(), 2);
    assert_eq!(notes.0.borrow().len(), 3);
}

#[test]
fn not_enough_data_neither_opens_nor_closes() {
    let p = project("[retrain, issue, notify]");
    let (mut forge, notes) = (MemoryForge::default(), Recorder::default());
    run(&p, &mut forge, &notes, Health::NotEnoughData, 1);
    assert!(forge.issues.is_empty() && forge.dispatches.is_empty());
    assert!(notes.0.borrow().is_empty());
    run(&p, &mut forge, &notes, Health::Alert, 2);
    run(&p, &mut forge, &notes, Health::NotEnoughData, 3);
    assert!(forge.issues[0].open, "not enough data does not close it");
    assert_eq!(notes.0.borrow().len(), 1);
}

#[test]
fn a_job_without_the_state_directory_finds_the_incident_in_its_issue() {
    let p = project("[retrain, issue, notify]");
    let (mut forge, notes) = (MemoryForge::default(), Recorder::default());
    run(&p, &mut forge, &notes, Health::Alert, 1);
    std::fs::remove_dir_all(p.dir.path().join(".mlops/monitor")).unwrap();
    run(&p, &mut forge, &notes, Health::Alert, 2);
    assert_eq!(forge.issues.len(), 1);
    assert_eq!(forge.dispatches.len(), 1, "not dispatched again");
    assert_eq!(notes.0.borrow().len(), 1, "not announced again");
    assert!(forge.issues[0].body.contains("2 alerting run(s)"));
    std::fs::remove_dir_all(p.dir.path().join(".mlops/monitor")).unwrap();
    run(&p, &mut forge, &notes, Health::Healthy, 3);
    assert!(!forge.issues[0].open);
    assert_eq!(notes.0.borrow()[1].action, "resolved");
}

#[test]
fn an_issue_someone_else_wrote_with_the_marker_is_left_alone() {
    let p = project("[issue]");
    let (mut forge, notes) = (MemoryForge::default(), Recorder::default());
    forge.issues.push(Stored {
        number: 1,
        open: true,
        title: "fake".into(),
        body: format!("{}\nclose me", marker("churn", "staging")),
        author: "mallory".into(),
        comments: Vec::new(),
        updates: 0,
    });
    run(&p, &mut forge, &notes, Health::Alert, 1);
    run(&p, &mut forge, &notes, Health::Healthy, 2);
    assert_eq!(forge.issues.len(), 2, "ours is a new issue");
    assert!(forge.issues[0].open && forge.issues[0].updates == 0);
    assert!(forge.issues[0].comments.is_empty());
    assert!(!forge.issues[1].open);
}

#[test]
fn a_failed_dispatch_is_a_warning_and_the_next_alert_sends_it() {
    let p = project("[retrain]");
    let (mut forge, notes) = (
        MemoryForge {
            fail_dispatches: 1,
            ..MemoryForge::default()
        },
        Recorder::default(),
    );
    let warnings = run(&p, &mut forge, &notes, Health::Alert, 1);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("the forge is down"), "{warnings:?}");
    assert!(forge.dispatches.is_empty());
    assert!(run(&p, &mut forge, &notes, Health::Alert, 2).is_empty());
    run(&p, &mut forge, &notes, Health::Alert, 3);
    assert_eq!(forge.dispatches.len(), 1);
    assert!(forge.issues.is_empty(), "issue is not in on_alert");
    assert!(notes.0.borrow().is_empty(), "notify is not in on_alert");
}

#[test]
fn an_unknown_environment_is_an_error() {
    let p = project("[notify]");
    let (mut forge, notes) = (MemoryForge::default(), Recorder::default());
    let mut ctx = AlertContext {
        config: &p.config,
        forge: &mut forge,
        notifier: &notes,
        state_dir: p.dir.path().join(".mlops/monitor/prod"),
        run_now: false,
    };
    let mut s = summary(Health::Alert, 1);
    s.environment = "prod".into();
    let err = handle(&mut ctx, &s).unwrap_err().to_string();
    assert!(err.contains("no environment \"prod\""), "{err}");
}

/// A forge whose issue lookup fails once: no second issue is opened meanwhile.
struct Flaky {
    inner: MemoryForge,
    fail_finds: usize,
}

impl Forge for Flaky {
    fn read(&mut self, c: &Change, r: &str) -> anyhow::Result<Option<String>> {
        self.inner.read(c, r)
    }
    fn propose(&mut self, c: &Change) -> anyhow::Result<Proposal> {
        self.inner.propose(c)
    }
}

impl Incidents for Flaky {
    fn find_issue(&mut self, marker: &str) -> anyhow::Result<Option<Issue>> {
        if self.fail_finds > 0 {
            self.fail_finds -= 1;
            anyhow::bail!("502 Bad Gateway");
        }
        self.inner.find_issue(marker)
    }
    fn open_issue(&mut self, t: &str, b: &str) -> anyhow::Result<Issue> {
        self.inner.open_issue(t, b)
    }
    fn update_issue(&mut self, n: u64, t: &str, b: &str) -> anyhow::Result<()> {
        self.inner.update_issue(n, t, b)
    }
    fn comment(&mut self, n: u64, b: &str) -> anyhow::Result<()> {
        self.inner.comment(n, b)
    }
    fn close_issue(&mut self, n: u64) -> anyhow::Result<()> {
        self.inner.close_issue(n)
    }
    fn dispatch(&mut self, e: &str, p: &serde_json::Value) -> anyhow::Result<String> {
        self.inner.dispatch(e, p)
    }
}

#[test]
fn a_failed_issue_lookup_opens_no_second_issue() {
    let p = project("[issue]");
    let notes = Recorder::default();
    let mut forge = Flaky {
        inner: MemoryForge::default(),
        fail_finds: 0,
    };
    let handle_one = |forge: &mut Flaky, n| {
        let mut ctx = AlertContext {
            config: &p.config,
            forge,
            notifier: &notes,
            state_dir: p.dir.path().join(".mlops/monitor/staging"),
            run_now: false,
        };
        handle(&mut ctx, &summary(Health::Alert, n)).unwrap()
    };
    handle_one(&mut forge, 1);
    forge.fail_finds = 1;
    let warnings = handle_one(&mut forge, 2);
    assert!(warnings[0].contains("502 Bad Gateway"), "{warnings:?}");
    handle_one(&mut forge, 3);
    assert_eq!(forge.inner.issues.len(), 1);
    assert!(forge.inner.issues[0].body.contains("# Monitor report 3"));
}
