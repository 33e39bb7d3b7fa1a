//! Untrusted text never becomes a workflow command. GitHub's runner splits its input on a lone
//! `\r` as well as `\n`, trims leading white space, compares with ICU (which skips control and
//! format characters such as NUL, ESC and U+200B), and takes `##[command]` anywhere in a line.
//! Under `GITHUB_ACTIONS=true`, every test here reads stdout and stderr the way the runner does
//! and checks that only the tool's own commands are there.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{mlops, stderr, stdout};

/// Characters ICU's comparison skips: controls, format characters and other default
/// ignorables (the runner matches `::` and `##[` that way).
fn skipped(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c as u32,
            0xAD | 0x34F | 0x61C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
            | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB | 0xE0000..=0xE0FFF)
}

/// Commands the tool itself writes.
const OURS: &[&str] = &[
    "::group::",
    "::endgroup::",
    "::stop-commands::",
    "::error title=mlops",
    "::error file=",
    "::warning file=",
    "::notice title=mlops",
    "::error title=data check",
    "::warning title=data check",
    "::notice title=data check",
];

/// Every line, split as the runner splits, that starts a command other than ours, or that
/// holds `##[`.
fn foreign_commands(out: &Output) -> Vec<String> {
    let mut bad = Vec::new();
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let mut tokens: Vec<String> = Vec::new();
        for line in text.split(['\r', '\n']) {
            let seen: String = line.chars().filter(|c| !skipped(*c)).collect();
            let trimmed = seen.trim_start();
            if let Some(token) = trimmed.strip_prefix("::stop-commands::") {
                tokens.push(token.to_string());
            }
            let resumes = tokens.iter().any(|t| trimmed == format!("::{t}::"));
            if trimmed.starts_with("::") && !resumes && !OURS.iter().any(|o| trimmed.starts_with(o))
            {
                bad.push(format!("{stream}: {line:?}"));
            }
            if seen.contains("##[") {
                bad.push(format!("{stream} (##[): {line:?}"));
            }
        }
    }
    bad
}

fn assert_clean(what: &str, out: &Output, shown: &[&str]) {
    let bad = foreign_commands(out);
    assert!(
        bad.is_empty(),
        "{what}: lines the runner would take as commands:\n{}\n--- stdout\n{}\n--- stderr\n{}",
        bad.join("\n"),
        stdout(out),
        stderr(out)
    );
    let all = format!("{}{}", stdout(out), stderr(out));
    for s in shown {
        assert!(all.contains(s), "{what}: {s:?} is not shown:\n{all}");
    }
}

/// Under GitHub Actions, with no summary or output files.
fn gha(dir: &Path) -> Command {
    let mut cmd = mlops(dir);
    cmd.env("GITHUB_ACTIONS", "true");
    cmd
}

/// What a hostile step prints: a command after a lone CR, `##[` mid-line, commands behind
/// characters the runner's comparison skips, and a last line with no newline.
const STEP: &str = r"printf 'x\r::error::INJECTED-cr\n'
printf 'a ##[error]INJECTED-hash\n'
printf '\342\200\213::warning::INJECTED-zwsp\n'
printf '#\000#[error]INJECTED-nul\n'
printf '\033::error::INJECTED-esc\n'
printf '  ::notice::INJECTED-indent\r\n'
printf 'done\r::error::INJECTED-last'
exit 3
";

fn step_project(image: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/train.csv"), "x,label\n1,0\n2,1\n").unwrap();
    std::fs::write(dir.path().join("data/test.csv"), "x,label\n3,1\n").unwrap();
    std::fs::write(dir.path().join("step.sh"), STEP).unwrap();
    std::fs::write(
        dir.path().join("mlops.yaml"),
        format!(
            "version: 1\nmodel: toy\ndata:\n  train: {{path: data/train.csv}}\n  test: {{path: data/test.csv}}\n\
             train:\n  image: {image}\n  command: [sh, step.sh]\n\
             evaluate:\n  command: [sh, step.sh]\n\
             compare:\n  metrics:\n    f1: {{direction: maximize, threshold: 0.5}}\n"
        ),
    )
    .unwrap();
    dir
}

fn check_step_output(what: &str, out: &Output) {
    assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(out));
    assert_clean(
        what,
        out,
        &[
            "INJECTED-cr",
            "INJECTED-hash",
            "INJECTED-zwsp",
            "INJECTED-nul",
            "INJECTED-esc",
            "INJECTED-indent",
            "INJECTED-last",
            "last lines of its log",
        ],
    );
    // The step's output streams between ::stop-commands::<token> and ::<token>::.
    let err = stderr(out);
    let token = err
        .lines()
        .find_map(|l| l.strip_prefix("::stop-commands::"))
        .unwrap_or_else(|| panic!("{what}: no ::stop-commands:: line:\n{err}"));
    assert!(token.len() >= 32, "{what}: a short token {token:?}");
    let start = err.find("::stop-commands::").unwrap();
    let end = err
        .find(&format!("\n::{token}::\n"))
        .unwrap_or_else(|| panic!("{what}: commands are never resumed:\n{err}"));
    let first = err.find("INJECTED").unwrap();
    assert!(start < first && first < end, "{what}:\n{err}");
    assert!(err[..start].contains("::group::"), "{what}:\n{err}");
    assert!(err[end..].contains("::endgroup::"), "{what}:\n{err}");
}

#[test]
fn step_output_of_a_host_process_cannot_issue_commands() {
    let dir = step_project("mlops-test/busybox");
    let out = gha(dir.path())
        .args(["train", "--runner", "process"])
        .output()
        .unwrap();
    check_step_output("process runner", &out);
}

#[test]
fn step_output_of_a_container_cannot_issue_commands() {
    let dir = step_project("mlops-test/busybox");
    let out = gha(dir.path()).arg("train").output().unwrap();
    check_step_output("docker runner", &out);
}

#[test]
fn column_names_from_a_csv_header_cannot_issue_commands() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let hostile = "\"amount\n::warning::INJECTED-csv ##[error]x\"";
    let rows = |offset: i32, extra: bool| {
        let mut text = format!(
            "{hostile},label{}\n",
            if extra {
                ",\"new\r::error::INJECTED-new\""
            } else {
                ""
            }
        );
        for i in 0..200 {
            text.push_str(&format!(
                "{},{}{}\n",
                i + offset,
                i % 2,
                if extra { ",1" } else { "" }
            ));
        }
        text
    };
    std::fs::write(dir.path().join("data/train.csv"), rows(0, false)).unwrap();
    std::fs::write(dir.path().join("data/test.csv"), rows(0, false)).unwrap();
    std::fs::write(
        dir.path().join("mlops.yaml"),
        "version: 1\nmodel: toy\ndata:\n  train: {path: data/train.csv}\n  test: {path: data/test.csv}\n  target: label\n\
         train: {image: mlops-test/busybox, command: ['true']}\nevaluate: {command: ['true']}\n\
         compare:\n  metrics:\n    f1: {direction: maximize, threshold: 0.5}\n",
    )
    .unwrap();
    let out = mlops(dir.path()).args(["data", "accept"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // New data: every value shifted (drift) and a new column (a schema difference).
    std::fs::write(dir.path().join("data/train.csv"), rows(5000, true)).unwrap();
    for format in ["human", "markdown", "github", "json"] {
        let out = gha(dir.path())
            .args(["data", "check", "--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{format}: {}", stderr(&out));
        assert_clean(
            &format!("data check --format {format}"),
            &out,
            &["INJECTED-csv"],
        );
    }
    let out = gha(dir.path()).args(["data", "accept"]).output().unwrap();
    assert_clean("data accept", &out, &[]);
}

fn metric_project(rule: &str) -> tempfile::TempDir {
    crate::compare::project(&format!(
        "    \"f1\\r::error::INJECTED-metric ##[error]x\": {rule}\n"
    ))
}

#[test]
fn metric_names_cannot_issue_commands() {
    let dir = metric_project("{direction: maximize, threshold: 0.8, min_absolute_change: 0.01}");
    let name = "f1\r::error::INJECTED-metric ##[error]x";
    let metrics =
        |v: f64| serde_json::json!({ name: v, "other\n::error::INJECTED-extra": 1 }).to_string();
    std::fs::write(dir.path().join("chal.json"), metrics(0.85)).unwrap();
    std::fs::write(dir.path().join("champ.json"), metrics(0.90)).unwrap();
    std::fs::write(dir.path().join("missing.json"), r#"{"f1": 0.9}"#).unwrap();
    for format in ["human", "markdown", "github", "json"] {
        for (challenger, champion) in [("chal.json", "champ.json"), ("missing.json", "champ.json")]
        {
            let out = gha(dir.path())
                .args([
                    "compare",
                    "--challenger",
                    challenger,
                    "--champion",
                    champion,
                    "--format",
                    format,
                ])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{format}: {}", stderr(&out));
            assert_clean(
                &format!("compare {challenger} --format {format}"),
                &out,
                &["INJECTED-metric"],
            );
        }
    }
    // The same name in a diagnostic: a rule that can never fail.
    let dir = metric_project("{direction: maximize}");
    for format in ["human", "github", "json"] {
        let out = gha(dir.path())
            .args(["validate", "--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{format}: {}", stdout(&out));
        assert_clean(
            &format!("validate --format {format}"),
            &out,
            &["INJECTED-metric"],
        );
    }
    let out = gha(dir.path()).args(["data", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_clean("a command on an invalid config", &out, &["INJECTED-metric"]);
}

#[test]
fn an_error_quoting_user_input_cannot_issue_commands() {
    let dir = metric_project("{direction: maximize, threshold: 0.8}");
    let out = gha(dir.path())
        .args([
            "compare",
            "--challenger",
            "gone\r::error::INJECTED-path ##[error]x/metrics.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_clean("report_failure", &out, &["INJECTED-path"]);
}
