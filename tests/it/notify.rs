//! Webhooks against an in-process HTTP receiver on loopback: one Slack message and one Teams
//! card per incident and one resolve message each, the generic webhook's HMAC verifies, and a
//! webhook answering 500 is retried with backoff without changing the command's exit code.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlops::incident::{self, AlertContext};
use mlops::monitor::{Health, Summary};
use mlops::notify::{NotifyEvent, NotifyKind, Policy, Webhook, Webhooks};
use serde_json::Value;

use crate::common::{copy_dir, fixture, mlops, stderr};

const SECRET: &str = "webhook-test-secret";

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    at: Instant,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// An HTTP/1.1 server on 127.0.0.1 that records each request and answers `status_of(path)`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(status_of: fn(&str) -> u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let log = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut headers = HashMap::new();
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                        }
                    }
                    let len: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    let status = status_of(&path);
                    log.lock().unwrap().push(Received {
                        path,
                        headers,
                        body,
                        at: Instant::now(),
                    });
                    let mut s = stream;
                    let _ = write!(
                        s,
                        "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                });
            }
        });
        Receiver { url, got }
    }

    fn at(&self, path: &str) -> Vec<Received> {
        let got = self.got.lock().unwrap();
        got.iter().filter(|r| r.path == path).cloned().collect()
    }
}

fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    // A receiver's own check, written from RFC 2104 with sha2 (not the code under test).
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(body)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

fn verifies(r: &Received) -> bool {
    let sig = r
        .headers
        .get("x-mlops-signature-256")
        .cloned()
        .unwrap_or_default();
    sig == format!("sha256={}", hmac_hex(SECRET.as_bytes(), &r.body))
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@localhost"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The churn fixture in a git repository, staging monitored with `on_alert`.
fn project(on_alert: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("churn"), dir.path());
    let yaml = dir.path().join("mlops.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let needle = "  staging: {deploy: {target: docker, port: 18080, health: /health}}\n";
    assert!(text.contains(needle), "{text}");
    let text = text.replacen(
        needle,
        &format!("  staging:\n    deploy: {{target: docker, port: 18080, health: /health}}\n    monitor: {{inputs: {{path: data/test.csv}}, on_alert: {on_alert}}}\n"),
        1,
    );
    std::fs::write(&yaml, text).unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "project"]);
    dir
}

fn summary(health: Health, n: u32) -> Summary {
    Summary {
        model: "churn".into(),
        environment: "staging".into(),
        digest: format!("sha256:{}", "c".repeat(64)),
        health,
        reasons: if health == Health::Alert {
            vec!["drift: tenure, monthly_charges".into()]
        } else {
            Vec::new()
        },
        report_markdown: format!("# report {n}\n"),
        generated_at: format!("2026-12-01T12:0{n}:00Z"),
    }
}

fn hook(name: &str, kind: NotifyKind, url: String) -> Webhook {
    Webhook {
        name: name.into(),
        kind,
        url,
        secret: (kind == NotifyKind::Webhook).then(|| SECRET.as_bytes().to_vec()),
        events: vec![NotifyEvent::Monitor],
    }
}

#[test]
fn one_slack_message_and_one_teams_card_per_incident_and_one_resolve_each() {
    let receiver = Receiver::start(|_| 200);
    let dir = project("[issue, notify]");
    let config = mlops::config::load(&dir.path().join("mlops.yaml")).unwrap();
    let hooks = Webhooks::new(
        vec![
            hook(
                "notify.0",
                NotifyKind::Slack,
                format!("{}/slack", receiver.url),
            ),
            hook(
                "notify.1",
                NotifyKind::Teams,
                format!("{}/teams", receiver.url),
            ),
            hook(
                "notify.2",
                NotifyKind::Webhook,
                format!("{}/hook", receiver.url),
            ),
        ],
        Policy::default(),
        Duration::from_secs(5),
    );
    let mut forge = mlops::forge::local::Local {
        root: dir.path().to_path_buf(),
    };
    let mut handle = |health, n| {
        let mut ctx = AlertContext {
            config: &config,
            forge: &mut forge,
            notifier: &hooks,
            state_dir: dir.path().join(".mlops/monitor/staging"),
            run_now: false,
        };
        incident::handle(&mut ctx, &summary(health, n)).unwrap()
    };
    for n in 1..=3 {
        assert_eq!(handle(Health::Alert, n), Vec::<String>::new());
    }
    assert_eq!(
        receiver.at("/slack").len(),
        1,
        "one Slack message for the incident"
    );
    assert_eq!(
        receiver.at("/teams").len(),
        1,
        "one Teams card for the incident"
    );
    assert_eq!(receiver.at("/hook").len(), 1);
    handle(Health::NotEnoughData, 4);
    assert!(handle(Health::Healthy, 5).is_empty());
    handle(Health::Healthy, 6);

    let slack = receiver.at("/slack");
    assert_eq!(slack.len(), 2, "and one when it resolves");
    let opened = slack[0].json();
    assert!(
        opened["text"]
            .as_str()
            .unwrap()
            .contains("monitoring alert"),
        "{opened}"
    );
    let blocks = opened["blocks"].to_string();
    assert!(
        blocks.contains("drift: tenure, monthly_charges"),
        "{blocks}"
    );
    assert!(slack[1].json()["text"]
        .as_str()
        .unwrap()
        .contains("healthy again"));

    let teams = receiver.at("/teams");
    assert_eq!(teams.len(), 2);
    for (t, words) in teams.iter().zip(["monitoring alert", "healthy again"]) {
        let v = t.json();
        assert_eq!(v["type"], "message");
        let card = &v["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert!(
            card["content"]["body"][0]["text"]
                .as_str()
                .unwrap()
                .contains(words),
            "{v}"
        );
    }

    let generic = receiver.at("/hook");
    assert_eq!(generic.len(), 2);
    for (g, action) in generic.iter().zip(["opened", "resolved"]) {
        assert!(
            verifies(g),
            "the HMAC of {} verifies",
            String::from_utf8_lossy(&g.body)
        );
        assert_eq!(
            g.headers.get("x-mlops-event").map(String::as_str),
            Some("monitor")
        );
        let v = g.json();
        assert_eq!(v["action"], action);
        assert_eq!(v["environment"], "staging");
        assert_eq!(
            g.headers["x-mlops-delivery"],
            v["delivery"].as_str().unwrap()
        );
    }
    // A body changed in transit does not verify.
    let mut forged = generic[0].clone();
    forged.body = String::from_utf8_lossy(&forged.body)
        .replace("opened", "resolved")
        .into_bytes();
    assert!(!verifies(&forged));
}

#[test]
fn a_webhook_answering_500_is_retried_with_backoff_and_the_exit_code_is_unchanged() {
    let receiver = Receiver::start(|p| if p == "/broken" { 500 } else { 200 });
    let dir = project("[notify]");
    let yaml = dir.path().join("mlops.yaml");
    let mut text = std::fs::read_to_string(&yaml).unwrap();
    text.push_str("notify:\n  - {type: webhook, url: env:HOOK_URL, secret: env:HOOK_SECRET, events: [data]}\n  - {type: slack, url: env:SLACK_URL, events: [verdict]}\n");
    std::fs::write(&yaml, text).unwrap();
    let run = |args: &[&str], hook: &str| {
        mlops(dir.path())
            .args(args)
            .env("HOOK_URL", format!("{}{hook}", receiver.url))
            .env("HOOK_SECRET", SECRET)
            .env("SLACK_URL", format!("{}/slack", receiver.url))
            .env("MLOPS_NOTIFY_BACKOFF_MS", "100")
            .output()
            .unwrap()
    };
    // No reference yet: the check passes, and nothing is sent (only failures are events).
    let out = run(&["data", "check"], "/broken");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(receiver.at("/broken").is_empty());
    let out = mlops(dir.path()).args(["data", "accept"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Unchanged data fails `changed: required`: exit 1, whatever the webhook answers.
    let started = Instant::now();
    let out = run(&["data", "check"], "/broken");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "warning: notify: notify.0 (webhook, 127.0.0.1) did not take the data message"
        ),
        "{err}"
    );
    assert!(err.contains("500"), "{err}");
    assert!(
        !err.contains(&receiver.url),
        "the URL is a credential: {err}"
    );
    let tries = receiver.at("/broken");
    assert_eq!(tries.len(), 5, "asked 5 times");
    let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (gap, least) in gaps.iter().zip([100u64, 200, 400, 800]) {
        assert!(
            *gap >= Duration::from_millis(least),
            "backoff doubles: {gaps:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    // Every try carries the same delivery id and a valid signature.
    assert!(tries.iter().all(verifies));
    let ids: std::collections::HashSet<_> = tries
        .iter()
        .map(|t| t.headers["x-mlops-delivery"].clone())
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(tries[0].json()["event"], "data");
    assert!(
        receiver.at("/slack").is_empty(),
        "slack takes verdicts only"
    );

    // A receiver that takes it: one request, exit code still 1.
    let out = run(&["data", "check"], "/ok");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(receiver.at("/ok").len(), 1);
    assert!(
        !stderr(&out).contains("warning: notify"),
        "{}",
        stderr(&out)
    );

    // Nothing listens there: retried, then a warning that never shows the URL (a Slack
    // webhook URL is enough to post to the channel), and the exit code is the same.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "http://{}/services/T000/B000/SECRETPATH",
        closed.local_addr().unwrap()
    );
    drop(closed);
    let out = mlops(dir.path())
        .args(["data", "check"])
        .env("HOOK_URL", &dead)
        .env("HOOK_SECRET", SECRET)
        .env("MLOPS_NOTIFY_BACKOFF_MS", "10")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("notify.0 (webhook, 127.0.0.1) did not take the data message"),
        "{err}"
    );
    assert!(!err.contains("SECRETPATH"), "the URL leaked: {err}");

    // The gate's no is a `verdict` event: the Slack webhook (verdict only) hears it once;
    // a promote verdict is no event.
    std::fs::write(
        dir.path().join("worse.json"),
        r#"{"f1": 0.5, "roc_auc": 0.95}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("good.json"),
        r#"{"f1": 0.9, "roc_auc": 0.95}"#,
    )
    .unwrap();
    let out = run(&["compare", "--challenger", "worse.json"], "/ok");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let slack = receiver.at("/slack");
    assert_eq!(slack.len(), 1);
    let text = slack[0].json().to_string();
    assert!(
        text.contains("the gate rejected") && text.contains("f1"),
        "{text}"
    );
    let out = run(&["compare", "--challenger", "good.json"], "/ok");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(receiver.at("/slack").len(), 1);
    assert_eq!(
        receiver.at("/ok").len(),
        1,
        "the webhook takes data events only"
    );

    // An unset variable is a warning naming it; the check's exit code is the same.
    let out = mlops(dir.path()).args(["data", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("notify.0: HOOK_URL is not set"),
        "{}",
        stderr(&out)
    );
}
