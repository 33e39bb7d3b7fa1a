//! `mlops compare` on plain metrics files: exit 0 promote, 1 reject, 2 bad input.

use crate::common::{mlops, stderr, stdout};

fn project(rules: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/train.csv"), "x\n1\n").unwrap();
    std::fs::write(dir.path().join("data/test.csv"), "x\n1\n").unwrap();
    std::fs::write(
        dir.path().join("mlops.yaml"),
        format!(
            "version: 1\nmodel: m\ndata:\n  train: {{path: data/train.csv}}\n  test: {{path: data/test.csv}}\n\
             train: {{image: mlops-test/busybox, command: ['true']}}\nevaluate: {{command: ['true']}}\n\
             compare:\n  metrics:\n{rules}"
        ),
    )
    .unwrap();
    dir
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    std::fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
    name.to_string()
}

#[test]
fn promote_reject_and_bad_input_exit_codes() {
    let dir = project("    f1: {direction: maximize, threshold: 0.8, min_absolute_change: 0.05}\n");
    let chal = write(dir.path(), "chal/metrics.json", r#"{"f1": 0.85}"#);
    let champ = write(dir.path(), "champ/metrics.json", r#"{"f1": 0.80}"#);
    let out = mlops(dir.path())
        .args([
            "compare",
            "--challenger",
            &chal,
            "--champion",
            &champ,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "promote");
    assert_eq!(v["checks"][1]["rule"], "min_absolute_change");
    assert_eq!(v["checks"][1]["delta"], "0.05");

    let worse = write(dir.path(), "worse/metrics.json", r#"{"f1": 0.84}"#);
    let out = mlops(dir.path())
        .args(["compare", "--challenger", &worse, "--champion", &champ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("REJECT"), "{}", stdout(&out));

    // First run: thresholds only.
    let out = mlops(dir.path())
        .args(["compare", "--challenger", &worse])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("first run"));

    let bad = write(dir.path(), "bad/metrics.json", r#"{"f1": "NaN"}"#);
    let out = mlops(dir.path())
        .args(["compare", "--challenger", &bad])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("bad/metrics.json") && err.contains("\"f1\""),
        "{err}"
    );
}

#[test]
fn hostile_metric_names_stay_inert_on_stdout() {
    let dir = project(
        "    \"f1\\n::set-output name=verdict::promote\": {direction: maximize, threshold: 0.5}\n",
    );
    let chal = write(
        dir.path(),
        "chal/metrics.json",
        r#"{"f1\n::set-output name=verdict::promote": 0.1, "x%0A::error::y": 1}"#,
    );
    for format in ["human", "markdown", "github", "json"] {
        let out = mlops(dir.path())
            .args(["compare", "--challenger", &chal, "--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{format}");
        for line in stdout(&out).lines() {
            let ours = line.starts_with("::error title=mlops compare");
            assert!(
                ours || !line.trim_start().starts_with("::"),
                "{format}: {line:?}"
            );
        }
    }
}
