//! `mlops monitor` on the real engine: the churn model, run, promoted to staging and deployed
//! with the docker target and `deploy.capture`, answers real requests; the serving runtime
//! captures them, and the monitor reads them back. One scenario in phases, since the phases
//! share the deployed container: normal traffic is healthy; labels that make f1 fall below
//! its threshold alert naming f1; drifted inputs alert naming the drifted features; a truncated
//! capture line is counted and reported, not fatal.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::common::{fixture, git, mlops, signed_churn_project, signed_run, stderr, stdout};

const PASSWORD: &str = "monitor-test-password";

/// Removes the deployed container however the test ends. The model is renamed `churnmon` so
/// that its container, labels and branch are this test's alone (promote.rs deploys `churn`).
struct Deployment;
impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = Command::new("/usr/bin/docker")
            .args(["rm", "-f", "mlops-churnmon-staging"])
            .output();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// POST /predict with `rows` (CSV rows of the churn data, without customer_id and label) and
/// their ids; returns the predictions.
fn predict(port: u16, rows: &[Value], ids: &[String]) -> Vec<i64> {
    let body = json!({"instances": rows, "ids": ids}).to_string();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        s,
        "POST /predict HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, payload) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200"), "{out}");
    let v: Value = serde_json::from_str(payload).unwrap();
    assert_eq!(v["ids"].as_array().unwrap().len(), ids.len(), "{v}");
    v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect()
}

/// The rows of a churn CSV as request instances (features only) and their labels.
fn instances(csv_path: &Path) -> (Vec<Value>, Vec<i64>) {
    let mut reader = csv::Reader::from_path(csv_path).unwrap();
    let header = reader.headers().unwrap().clone();
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for rec in reader.records() {
        let rec = rec.unwrap();
        let mut row = serde_json::Map::new();
        for (name, field) in header.iter().zip(rec.iter()) {
            match name {
                "customer_id" => {}
                "label" => labels.push(field.parse().unwrap()),
                "plan" => {
                    row.insert(name.into(), json!(field));
                }
                _ => {
                    row.insert(name.into(), json!(field.parse::<f64>().unwrap()));
                }
            }
        }
        rows.push(Value::Object(row));
    }
    (rows, labels)
}

/// Sends every row in batches of 20; returns the ids and predictions.
fn send(port: u16, rows: &[Value], prefix: &str) -> (Vec<String>, Vec<i64>) {
    let mut ids = Vec::new();
    let mut predictions = Vec::new();
    for (i, chunk) in rows.chunks(20).enumerate() {
        let chunk_ids: Vec<String> = (0..chunk.len())
            .map(|j| format!("{prefix}-{}", i * 20 + j))
            .collect();
        predictions.extend(predict(port, chunk, &chunk_ids));
        ids.extend(chunk_ids);
    }
    (ids, predictions)
}

fn monitor(dir: &Path, args: &[&str]) -> (Output, Value) {
    let out = mlops(dir)
        .args(["monitor", "staging", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "monitor printed no JSON ({e}): {}\n{}",
            stdout(&out),
            stderr(&out)
        )
    });
    (out, report)
}

fn reasons(report: &Value) -> Vec<String> {
    report["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

/// The churn project, run, accepted, promoted to staging, merged and deployed with capture.
fn deployed(dir: &Path, port: u16, capture: &Path) {
    let staging = format!(
        "staging:\n    deploy: {{target: docker, port: {port}, health: /health, capture: {}}}\n    monitor:\n      window: 1d\n      min_rows: 100\n      labels: {{path: labels.csv, key: id, target: label}}\n      metrics: {{f1: {{threshold: 0.8}}}}\n      errors: {{max_rate: 0.05}}\n      latency: {{p95_ms: 10000}}",
        capture.display()
    );
    signed_churn_project(
        dir,
        "monitor-test",
        PASSWORD,
        &[
            ("model: churn\n", "model: churnmon\n"),
            (
                "staging: {deploy: {target: docker, port: 18080, health: /health}}",
                &staging,
            ),
        ],
    );
    let run = signed_run(dir, PASSWORD);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let accept = mlops(dir).args(["data", "accept"]).output().unwrap();
    assert_eq!(accept.status.code(), Some(0), "{}", stderr(&accept));
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "accept the training data"]);
    let promote = mlops(dir).args(["promote", "staging"]).output().unwrap();
    assert_eq!(promote.status.code(), Some(0), "{}", stderr(&promote));
    git(
        dir,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "merge the promotion",
            "mlops/promote/churnmon/staging",
        ],
    );
    let deploy = mlops(dir).args(["deploy", "staging"]).output().unwrap();
    assert_eq!(deploy.status.code(), Some(0), "{}", stderr(&deploy));
}

fn capture_files(capture: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(capture)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn the_deployed_model_captures_requests_and_the_monitor_alerts_on_quality_drift_and_reports_corrupt_lines(
) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("churn");
    // The capture directory does not exist yet: deploy creates it for the container's user.
    let capture = tmp.path().join("capture/churn-staging");
    let port = free_port();
    let _cleanup = Deployment;
    deployed(&dir, port, &capture);

    // The prediction reference travelled with the promotion.
    let env_file = std::fs::read_to_string(dir.join(".mlops/environments/staging.yaml")).unwrap();
    let digest = env_file
        .lines()
        .find_map(|l| l.strip_prefix("digest: "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let hex = digest.strip_prefix("sha256:").unwrap();
    assert!(dir.join(format!(".mlops/predictions/{hex}.csv")).is_file());

    // Too little traffic: neither a pass nor an alert.
    let (test_rows, test_labels) = instances(&fixture("churn/data/test.csv"));
    send(port, &test_rows[..30], "early");
    let (out, report) = monitor(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(report["health"], "not_enough_data", "{report:#}");

    // Normal traffic: the test set's rows (the training population).
    let (ids, predictions) = send(port, &test_rows, "normal");
    let files = capture_files(&capture);
    assert!(!files.is_empty());
    let first = std::fs::read_to_string(&files[0]).unwrap();
    let record: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(record["digest"], digest.as_str());
    assert_eq!(record["status"], "ok");
    assert!(record["inputs"]["tenure_months"].is_number(), "{record}");
    assert!(record["latency_ms"].is_number() && record["score"].is_number());
    chrono::DateTime::parse_from_rfc3339(record["time"].as_str().unwrap()).unwrap();
    let (out, report) = monitor(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{}", stderr(&out));
    assert_eq!(report["health"], "healthy");
    assert_eq!(report["rows"], 30 + test_rows.len() as u64);
    assert_eq!(report["drift"]["status"], "ok");
    assert_eq!(report["predictions"]["status"], "ok", "{report:#}");
    assert_eq!(report["corrupt_lines"], 0);
    let state = dir.join(".mlops/monitor/staging");
    assert!(state.join("monitor.json").is_file() && state.join("report.md").is_file());

    // Labels that say the model is mostly wrong: f1 falls below 0.8.
    let mut labels = String::from("id,label\n");
    for (i, (id, p)) in ids.iter().zip(&predictions).enumerate() {
        let y = if i % 5 == 0 { test_labels[i] } else { 1 - p };
        labels.push_str(&format!("{id},{y}\n"));
    }
    std::fs::write(dir.join("labels.csv"), labels).unwrap();
    let (out, report) = monitor(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}\n{}", stderr(&out));
    assert_eq!(report["health"], "alert");
    let why = reasons(&report);
    assert!(why.iter().any(|r| r.starts_with("f1 ")), "{why:?}");
    assert!(!why.iter().any(|r| r.starts_with("drift")), "{why:?}");
    assert_eq!(report["quality"]["labelled_rows"], test_rows.len() as u64);
    std::fs::remove_file(dir.join("labels.csv")).unwrap();

    // Drifted inputs, on their own window.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (drifted_rows, _) = instances(&fixture("churn/data/drifted.csv"));
    send(port, &drifted_rows, "drifted");
    let (out, report) = monitor(&dir, &["--since", &since]);
    assert_eq!(out.status.code(), Some(1), "{report:#}\n{}", stderr(&out));
    assert_eq!(report["rows"], drifted_rows.len() as u64);
    let why = reasons(&report);
    let drift = why
        .iter()
        .find(|r| r.starts_with("drift: "))
        .unwrap_or_else(|| panic!("{why:?}"));
    for name in ["tenure_months", "monthly_charges"] {
        assert!(drift.contains(name), "{drift}");
    }
    assert!(!drift.contains("support_calls"), "{drift}");
    let human = mlops(&dir)
        .args(["monitor", "staging", "--since", &since])
        .output()
        .unwrap();
    assert_eq!(human.status.code(), Some(1));
    assert!(
        stdout(&human).contains("monitor: ALERT"),
        "{}",
        stdout(&human)
    );

    // A crashed writer's truncated line is counted and named, not fatal.
    let files = capture_files(&capture);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(files.last().unwrap())
        .unwrap();
    f.write_all(b"{\"id\":\"torn\",\"time\":\"2026-").unwrap();
    drop(f);
    let (out, report) = monitor(&dir, &["--since", &since]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(report["corrupt_lines"], 1, "{report:#}");
    assert_eq!(report["rows"], drifted_rows.len() as u64);
    let example = report["corrupt_examples"][0].as_str().unwrap();
    assert!(example.contains(".jsonl:"), "{example}");
    let md = std::fs::read_to_string(state.join("report.md")).unwrap();
    assert!(md.contains("Corrupt capture lines"), "{md}");

    // The same figures for Prometheus.
    let prom = mlops(&dir)
        .args([
            "monitor",
            "staging",
            "--since",
            &since,
            "--format",
            "prometheus",
        ])
        .output()
        .unwrap();
    let text = stdout(&prom);
    assert!(text.contains("# TYPE mlops_monitor_rows gauge"), "{text}");
    assert!(
        text.contains(&format!(
            "mlops_monitor_corrupt_lines{{model=\"churnmon\",env=\"staging\",digest=\"{digest}\"}} 1"
        )),
        "{text}"
    );
}
