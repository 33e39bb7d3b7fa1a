//! `mlops compare` on plain metrics files: exit 0 promote, 1 reject, 2 bad input.

use std::path::Path;

use crate::common::{
    copy_dir, fixture, git, mlops, redact_commits, redact_digests, snapshots, stderr, stdout,
};

/// A project with trivial steps whose gate is `compare.metrics` = `rules` (indented lines).
pub(crate) fn project(rules: &str) -> tempfile::TempDir {
    crate::common::csv_project(
        "m",
        "x\n1\n",
        "x\n1\n",
        &format!(
            "train: {{image: mlops-test/busybox, command: ['true']}}\nevaluate: {{command: ['true']}}\n\
             compare:\n  metrics:\n{rules}"
        ),
    )
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

/// `mlops compare --format <format>` in `dir` with `args`, expecting `code`.
fn render(dir: &Path, args: &[&str], format: &str, code: i32) -> String {
    let out = mlops(dir)
        .arg("compare")
        .args(args)
        .args(["--format", format])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{format}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Every format of a verdict on two metrics files with their predictions: the gate's table,
/// the significance of the improvement, the reasons of a reject.
#[test]
fn compare_renders_promote_reject_and_first_run_in_every_format() {
    let dir = project(
        "    f1: {direction: maximize, threshold: 0.80, min_absolute_change: 0.005}\n    \
         roc_auc: {direction: maximize, threshold: 0.90, max_regression: 0.01}\n  \
         significance: {method: bootstrap, confidence: 0.95, resamples: 2000, require: false}\n",
    );
    let side = |name: &str, metrics: &str, predictions: Option<&str>| {
        let path = write(dir.path(), &format!("{name}/metrics.json"), metrics);
        if let Some(file) = predictions {
            std::fs::copy(
                fixture("compare").join(file),
                dir.path().join(name).join("predictions.csv"),
            )
            .unwrap();
        }
        path
    };
    let champion = side(
        "champion",
        r#"{"f1": 0.8012, "roc_auc": 0.9123}"#,
        Some("class_champion.csv"),
    );
    let better = side(
        "better",
        r#"{"f1": 0.8851, "roc_auc": 0.9301}"#,
        Some("class_challenger.csv"),
    );
    // No predictions: the report says why significance was not computed.
    let worse = side("worse", r#"{"f1": 0.8034, "roc_auc": 0.8805}"#, None);
    let _s = snapshots(dir.path()).bind_to_scope();
    for format in ["human", "json", "markdown", "github"] {
        let args = ["--challenger", &better, "--champion", &champion];
        insta::assert_snapshot!(
            format!("promote-{format}"),
            render(dir.path(), &args, format, 0)
        );
        let args = ["--challenger", &worse, "--champion", &champion];
        insta::assert_snapshot!(
            format!("reject-{format}"),
            render(dir.path(), &args, format, 1)
        );
        let args = ["--challenger", &better];
        insta::assert_snapshot!(
            format!("first-run-{format}"),
            render(dir.path(), &args, format, 0)
        );
    }
}

/// The report of a run, as a pull request shows it: the data checks of the run and its
/// provenance (commit, data digests). The churn example, trained and scored on the host.
#[test]
fn compare_reports_a_run_with_its_data_checks_and_provenance() {
    let python = std::env::var("MLOPS_TEST_PYTHON")
        .expect("MLOPS_TEST_PYTHON: scripts/test sets it to the venv of scripts/python-env");
    let path = format!(
        "{}:{}",
        Path::new(&python).parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&fixture("churn"), dir);
    // Up to compare: no image to package, nothing to sign.
    let yaml = std::fs::read_to_string(dir.join("mlops.yaml")).unwrap();
    let (head, rest) = yaml.split_once("package:\n").unwrap();
    let (_, tail) = rest.split_once("environments:\n").unwrap();
    std::fs::write(
        dir.join("mlops.yaml"),
        format!("{head}environments:\n{tail}"),
    )
    .unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "project"]);
    let out = mlops(dir)
        .args(["run", "--runner", "process"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut settings = snapshots(dir);
    redact_digests(&mut settings);
    redact_commits(&mut settings);
    let _s = settings.bind_to_scope();
    for format in ["human", "json", "markdown", "github"] {
        insta::assert_snapshot!(format!("run-{format}"), render(dir, &[], format, 0));
    }
}
