//! The monitor on windows written by hand: what is sampled and counted, what each check says,
//! and how the report renders.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::window::{self, Filter};
use super::*;

const DIGEST: &str = "sha256:aaaa";

fn line(id: &str, time: &str, digest: &str, x: f64, plan: &str, status: &str) -> String {
    format!(
        r#"{{"id":"{id}","time":"{time}","digest":"{digest}","inputs":{{"x":{x},"plan":"{plan}"}},"prediction":{},"score":{},"latency_ms":{},"status":"{status}"}}"#,
        i64::from(x > 0.5),
        x.clamp(0.0, 1.0),
        10.0 + x
    )
}

fn since() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn columns() -> Vec<String> {
    vec!["x".into(), "plan".into()]
}

fn filter(columns: &[String], sample_size: usize) -> Filter<'_> {
    Filter {
        digest: DIGEST,
        since: since(),
        columns,
        sample_size,
        seed: 0,
        keep_predictions: true,
    }
}

fn write(dir: &Path, name: &str, lines: &[String]) {
    std::fs::write(dir.join(name), lines.join("\n") + "\n").unwrap();
}

/// What a hostile or broken writer can put in a capture file is a corrupt line, counted and
/// named, never a crash and never a row: invalid UTF-8, a lone surrogate, a NUL, a number too
/// large for a float, a line that is not an object. An input nested 100,000 deep is skipped
/// without recursion and kept as a nested value (a parser that recursed to skip it, as
/// sonic-rs 0.5.10 does, overflows the reader thread's stack: this test aborted with it).
#[test]
fn hostile_capture_lines_are_counted_as_corrupt_and_the_rest_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let t = "2026-12-01T10:00:00Z";
    let good = line("g1", t, DIGEST, 0.3, "basic", "ok");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(good.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(b"{\"id\":\"bad\xff\xfe\",\"inputs\":{}}\n");
    bytes.extend_from_slice(br#"{"id":"\ud800","inputs":{}}"#);
    bytes.push(b'\n');
    let deep = format!(
        r#"{{"id":"deep","time":"{t}","digest":"{DIGEST}","inputs":{{"x":{}{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    bytes.extend_from_slice(deep.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(b"{\"id\":\"nul\x00\",\"inputs\":{}}\n");
    bytes.extend_from_slice(b"{\"id\":\"big\",\"inputs\":{\"x\":1e999}}\n");
    bytes.extend_from_slice(b"[1,2,3]\n");
    bytes.extend_from_slice(line("g2", t, DIGEST, 0.7, "plus", "ok").as_bytes());
    bytes.push(b'\n');
    std::fs::write(tmp.path().join("capture-x-1.jsonl"), &bytes).unwrap();
    let cols = columns();
    let files = window::files(tmp.path(), true, since()).unwrap();
    let w = window::read(&files, &filter(&cols, 10)).unwrap();
    assert_eq!(
        w.rows, 3,
        "the deep line is a row with a nested value: {:?}",
        w.corrupt_examples
    );
    assert_eq!(w.corrupt, 5, "{:?}", w.corrupt_examples);
    assert_eq!(w.sample.len(), 3);
}

#[test]
fn rows_are_filtered_counted_and_sampled_the_same_whatever_the_file_split() {
    let tmp = tempfile::tempdir().unwrap();
    let t = "2026-12-01T10:00:00Z";
    let lines: Vec<String> = (0..200)
        .map(|i| line(&format!("r{i}"), t, DIGEST, i as f64 / 200.0, "basic", "ok"))
        .collect();
    let one = tmp.path().join("one");
    let two = tmp.path().join("two");
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    write(&one, "capture-a-1.jsonl", &lines);
    write(&two, "capture-b-1.jsonl", &lines[120..]);
    let mut extra = lines[..120].to_vec();
    extra.push(line(
        "old",
        "2026-11-30T23:59:59Z",
        DIGEST,
        0.1,
        "basic",
        "ok",
    ));
    extra.push(line("other", t, "sha256:bbbb", 0.1, "basic", "ok"));
    extra.push(line("failed", t, DIGEST, 0.1, "basic", "error"));
    extra.push(r#"{"id":"torn","time":"2026-"#.to_string());
    extra.push(r#"{"id":"badtime","time":"yesterday","inputs":{}}"#.to_string());
    write(&two, "capture-a-2.jsonl", &extra);
    write(&two, "not-a-capture.jsonl", &lines);
    let cols = columns();
    let f = filter(&cols, 50);
    let files_one = window::files(&one, true, since()).unwrap();
    let files_two = window::files(&two, true, since()).unwrap();
    assert_eq!(
        files_two.len(),
        2,
        "only capture-*.jsonl files: {files_two:?}"
    );
    let a = window::read(&files_one, &f).unwrap();
    let b = window::read(&files_two, &f).unwrap();
    assert_eq!(a.rows, 200);
    assert_eq!(b.rows, 201, "the error row counts as a row");
    assert_eq!(
        (b.errors, b.outside_window, b.other_digest, b.corrupt),
        (1, 1, 1, 2)
    );
    assert_eq!(b.corrupt_examples.len(), 2);
    assert!(
        b.corrupt_examples[1].contains("not RFC 3339"),
        "{:?}",
        b.corrupt_examples
    );
    assert_eq!(a.sample.len(), 50);
    let xs = |w: &window::Window| -> Vec<String> {
        w.sample.iter().map(|r| format!("{:?}", r.values)).collect()
    };
    assert_eq!(
        xs(&a),
        xs(&b),
        "the bottom-k sample depends on the ids only"
    );
    assert_eq!(a.predictions.len(), 200);
    assert_eq!(a.latencies.len(), 200);
}

#[test]
fn a_line_over_the_limit_is_corrupt_and_the_next_one_still_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let long = format!(
        r#"{{"id":"long","inputs":{{"x":"{}"}}}}"#,
        "a".repeat(window::MAX_LINE_BYTES as usize)
    );
    let ok = line("ok", "2026-12-01T10:00:00Z", DIGEST, 0.2, "basic", "ok");
    write(tmp.path(), "capture-x.jsonl", &[long, ok]);
    let cols = columns();
    let files = window::files(tmp.path(), true, since()).unwrap();
    let w = window::read(&files, &filter(&cols, 10)).unwrap();
    assert_eq!((w.rows, w.corrupt), (1, 1));
    assert!(w.corrupt_examples[0].contains("longer than 1 MiB"));
}

fn monitor_config(min_rows: u64) -> crate::config::MonitorConfig {
    crate::config::MonitorConfig {
        inputs: crate::config::MonitorInputs::Path("unused".into()),
        labels: None,
        window: std::time::Duration::from_secs(86400),
        min_rows,
        drift: crate::config::DriftConfig {
            test: crate::config::DriftTest::Auto,
            p_value: 0.01,
            threshold: 0.2,
            max_drifted_share: 0.0,
            exclude: Vec::new(),
        },
        metrics: Default::default(),
        max_error_rate: Some(0.01),
        max_p95_latency_ms: Some(100.0),
        on_alert: Vec::new(),
    }
}

fn reference(xs: &[f64]) -> crate::data::reference::Reference {
    let csv: String = std::iter::once("x,plan\n".to_string())
        .chain(xs.iter().map(|x| format!("{x},basic\n")))
        .collect();
    let scan =
        crate::data::read::scan_csv_bytes(Path::new("ref.csv"), csv.as_bytes(), 1000, 0).unwrap();
    let (profile, sample) = crate::data::profile::build(&scan, 1000, 0);
    crate::data::reference::Reference {
        version: 1,
        dataset: "train".into(),
        path: "ref.csv".into(),
        digest: "sha256:00".into(),
        accepted_at: "2026-12-01T00:00:00Z".into(),
        git_commit: None,
        schema: profile
            .columns
            .iter()
            .map(|(k, c)| (k.clone(), c.kind))
            .collect(),
        profile,
        sample,
    }
}

fn config() -> crate::config::Config {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mlops.yaml");
    std::fs::write(
        &file,
        "version: 1\nmodel: m\ndata: {train: {path: t.csv}, test: {path: t.csv}}\ntrain: {image: i, command: ['true']}\nevaluate: {command: ['true']}\ncompare: {metrics: {f1: {direction: maximize, threshold: 0.5}}}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("t.csv"), "x\n1\n").unwrap();
    crate::config::load(&file).unwrap()
}

fn evaluate_window(lines: &[String], min_rows: u64) -> Report {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "capture-x.jsonl", lines);
    let cols = columns();
    let files = window::files(tmp.path(), true, since()).unwrap();
    let w = window::read(&files, &filter(&cols, 1000)).unwrap();
    let reference = reference(&(0..400).map(|i| i as f64 / 400.0).collect::<Vec<_>>());
    checks::evaluate(
        &config(),
        &monitor_config(min_rows),
        &checks::Inputs {
            window: &w,
            columns: &cols,
            reference: Some(&reference),
            reference_predictions: None,
        },
    )
    .unwrap()
}

fn traffic(n: usize, shift: f64) -> Vec<String> {
    (0..n)
        .map(|i| {
            line(
                &format!("r{i}"),
                "2026-12-01T10:00:00Z",
                DIGEST,
                i as f64 / n as f64 + shift,
                "basic",
                "ok",
            )
        })
        .collect()
}

#[test]
fn too_few_rows_is_not_enough_data_never_a_pass_or_an_alert() {
    let r = evaluate_window(&traffic(30, 5.0), 100);
    assert_eq!(r.health, Health::NotEnoughData);
    assert_eq!(r.drift.section.status, Status::NotEnoughData);
    assert!(
        r.reasons[0].starts_with("not enough data: 30 rows"),
        "{:?}",
        r.reasons
    );
}

#[test]
fn the_same_distribution_is_healthy_and_a_shift_alerts_naming_the_column() {
    let r = evaluate_window(&traffic(300, 0.0), 100);
    assert_eq!(r.health, Health::Healthy, "{:?}", r.reasons);
    assert_eq!(r.predictions.section.status, Status::Skipped);
    assert_eq!(r.latency.section.status, Status::Ok);
    let r = evaluate_window(&traffic(300, 0.4), 100);
    assert_eq!(r.health, Health::Alert);
    assert_eq!(r.reasons, ["drift: x"], "{:?}", r.reasons);
}

#[test]
fn errors_latency_and_schema_alert_with_their_figures() {
    let mut lines = traffic(200, 0.0);
    for i in 0..20 {
        lines.push(line(
            &format!("e{i}"),
            "2026-12-01T10:00:00Z",
            DIGEST,
            500.0,
            "basic",
            "error",
        ));
    }
    lines.push(
        r#"{"id":"n","time":"2026-12-01T10:00:00Z","digest":"sha256:aaaa","inputs":{"x":0.5,"plan":"basic","extra":1},"prediction":1,"latency_ms":1,"status":"ok"}"#.into(),
    );
    let r = evaluate_window(&lines, 100);
    assert_eq!(r.health, Health::Alert);
    assert!(
        r.reasons.iter().any(|x| x == "error rate 9.05% > 1.00%"),
        "{:?}",
        r.reasons
    );
    assert!(
        r.reasons.iter().any(|x| x.starts_with("latency p95 ")),
        "{:?}",
        r.reasons
    );
    assert!(
        r.reasons
            .iter()
            .any(|x| x == "schema: column \"extra\" is new"),
        "{:?}",
        r.reasons
    );
}

#[test]
fn prometheus_output_has_help_type_and_escaped_labels_on_every_sample() {
    let mut r = evaluate_window(&traffic(300, 0.4), 100);
    r.model = "m".into();
    r.environment = "staging".into();
    r.digest = "sha256:aa\"\n".into();
    r.generated_at = "2026-12-01T10:00:00Z".into();
    let text = render::prometheus(&r);
    let labels = r#"model="m",env="staging",digest="sha256:aa\"\n""#;
    assert!(
        text.contains(&format!("mlops_monitor_health{{{labels}}} 1\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "mlops_monitor_feature_drifted{{{labels},feature=\"x\",test=\"ks\"}} 1\n"
        )),
        "{text}"
    );
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            assert!(rest.ends_with(" gauge"), "{l}");
        } else if !l.starts_with("# HELP ") {
            assert!(l.contains(labels), "{l}");
        }
    }
    assert!(text.contains("# HELP mlops_monitor_rows "));
    let md = render::markdown(&r);
    assert!(md.contains("- **drift: x**"), "{md}");
    let human = render::human(&r);
    assert!(human.ends_with("monitor: ALERT\n"), "{human}");
}
