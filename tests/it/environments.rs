//! `mlops status` and `mlops history`: the environment files and their git history.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{copy_dir, fixture, mlops, redact_commits, snapshots, stderr, stdout};

fn git(dir: &Path, args: &[&str]) {
    git_dated(dir, None, args);
}

/// `git` with the author and committer dates set to `date` when given (for snapshots).
fn git_dated(dir: &Path, date: Option<&str>, args: &[&str]) {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir).args([
        "-c",
        "user.name=Release Bot",
        "-c",
        "user.email=bot@mlops.invalid",
    ]);
    if let Some(date) = date {
        cmd.env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date);
    }
    let out = cmd.args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
}

fn pin(dir: &Path, env: &str, digest_char: char, run: &str, message: &str) {
    pin_dated(dir, None, env, digest_char, run, message);
}

fn pin_dated(
    dir: &Path,
    date: Option<&str>,
    env: &str,
    digest_char: char,
    run: &str,
    message: &str,
) {
    let digest = format!("sha256:{}", digest_char.to_string().repeat(64));
    let text = format!(
        "environment: {env}\nmodel: churn\nimage: 127.0.0.1:5000/acme/churn@{digest}\ndigest: {digest}\nrun_id: '{run}'\ngit_commit: abc\nmetrics: {{f1: 0.91}}\npromoted_at: '2026-11-25T00:00:00Z'\nchange: https://github.com/acme/churn/pull/{run}\n"
    );
    let p = dir.join(format!(".mlops/environments/{env}.yaml"));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
    git_dated(dir, date, &["add", "-A"]);
    git_dated(dir, date, &["commit", "-qm", message]);
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let out = mlops(dir).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn status_and_history_follow_the_environment_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&fixture("churn"), dir);
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "project"]);

    // Nothing promoted yet: both environments listed, empty.
    let status = json(dir, &["status", "--format", "json"]);
    let envs = status["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 2, "{status:#}");
    assert!(envs.iter().all(|e| e["state"].is_null()), "{status:#}");
    let history = json(dir, &["history", "staging", "--format", "json"]);
    assert_eq!(history["changes"], serde_json::json!([]));

    pin(dir, "staging", 'a', "1", "promote run 1 to staging");
    pin(dir, "staging", 'b', "2", "promote run 2 to staging");
    pin(dir, "production", 'a', "1", "promote run 1 to production");
    pin(dir, "staging", 'a', "1", "roll staging back to run 1");
    std::fs::remove_file(dir.join(".mlops/environments/production.yaml")).unwrap();
    git(dir, &["commit", "-qam", "retire production"]);

    let history = json(dir, &["history", "staging", "--format", "json"]);
    let kinds: Vec<&str> = history["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rollback", "promotion", "promotion"], "{history:#}");
    assert_eq!(
        history["changes"][0]["subject"],
        "roll staging back to run 1"
    );
    assert_eq!(history["changes"][0]["author"], "Release Bot");
    assert_eq!(history["changes"][1]["state"]["run_id"], "2");

    let production = json(dir, &["history", "production", "--format", "json"]);
    let kinds: Vec<&str> = production["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["removed", "promotion"], "{production:#}");

    let status = json(dir, &["status", "--format", "json"]);
    let staging = &status["environments"][0];
    assert_eq!(staging["environment"], "staging");
    assert_eq!(
        staging["state"]["digest"],
        format!("sha256:{}", "a".repeat(64))
    );
    assert_eq!(staging["state"]["metrics"]["f1"], 0.91);
    assert_eq!(staging["last_commit"]["author"], "Release Bot");
    assert_eq!(status["environments"][1]["environment"], "production");
    assert!(status["environments"][1]["state"].is_null());
    assert_eq!(status["environments"][1]["requires"], "staging");

    let human = mlops(dir).arg("status").output().unwrap();
    let text = stdout(&human);
    assert!(
        text.contains("staging      churn sha256:aaaaaaaaaaaa"),
        "{text}"
    );
    assert!(
        text.contains("via https://github.com/acme/churn/pull/1"),
        "{text}"
    );
    assert!(text.contains("production   nothing promoted yet"), "{text}");

    // An environment mlops.yaml does not have: exit 2, naming the ones it has.
    let bad = mlops(dir).args(["history", "prod"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("no environment \"prod\"")
            && stderr(&bad).contains("staging, production"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn a_broken_environment_file_names_the_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&fixture("churn"), dir);
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(dir.join(".mlops/environments")).unwrap();
    std::fs::write(
        dir.join(".mlops/environments/staging.yaml"),
        "environment: staging\ndigst: x\n",
    )
    .unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "hand-edited"]);
    refused(
        dir,
        &["history", "staging"],
        ".mlops/environments/staging.yaml as of commit",
    );
    refused(
        dir,
        &["status"],
        "staging.yaml is not a valid environment file",
    );
}

/// The churn fixture in a temporary directory with `.mlops/environments/` made, and a valid
/// staging file text (not yet written) naming `run_id`.
fn env_project(run_id: &str) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture("churn"), tmp.path());
    let envs = tmp.path().join(".mlops/environments");
    std::fs::create_dir_all(&envs).unwrap();
    let digest = format!("sha256:{}", "a".repeat(64));
    let good = format!(
        "environment: staging\nmodel: churn\nimage: 127.0.0.1:5000/acme/churn@{digest}\ndigest: {digest}\nrun_id: {run_id}\ngit_commit: abc\npromoted_at: '2026-11-25T00:00:00Z'\n"
    );
    (tmp, envs, good)
}

/// `mlops <args>` in `dir` exits 2 with `expected` in its stderr.
fn refused(dir: &Path, args: &[&str], expected: &str) {
    let out = mlops(dir).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    assert!(
        stderr(&out).contains(expected),
        "{args:?}: {}",
        stderr(&out)
    );
}

#[test]
fn anchors_and_oversized_environment_files_are_refused() {
    let (tmp, envs, good) = env_project("r1");
    let dir = tmp.path();
    std::fs::write(envs.join("staging.yaml"), &good).unwrap();
    let out = mlops(dir).args(["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let anchored = good.replace("git_commit: abc\n", "git_commit: &c abc\nchange: *c\n");
    std::fs::write(envs.join("staging.yaml"), &anchored).unwrap();
    refused(dir, &["status"], "staging.yaml:6:13: a YAML anchor (&name)");

    let mut big = good.clone();
    while big.len() <= 64 << 10 {
        big.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(envs.join("staging.yaml"), &big).unwrap();
    refused(dir, &["status"], "staging.yaml is larger than 64 KiB");
}

#[test]
fn an_environment_file_of_another_model_or_with_a_path_for_a_run_id_is_refused() {
    let (tmp, envs, good) = env_project("20261125T000000Z-abcdef");
    let dir = tmp.path();
    for (from, to, expected) in [
        ("model: churn", "model: fraud", "model \"fraud\""),
        (
            "environment: staging",
            "environment: production",
            "environment \"production\"",
        ),
        (
            "run_id: 20261125T000000Z-abcdef",
            "run_id: ../../../etc",
            "run_id",
        ),
        (
            "run_id: 20261125T000000Z-abcdef",
            "run_id: \"a/b\"",
            "run_id",
        ),
        (
            "run_id: 20261125T000000Z-abcdef",
            "run_id: \"..\"",
            "run_id",
        ),
        (
            "git_commit: abc",
            "git_commit: abc\nmodel_dir: ../../outside",
            "model_dir",
        ),
        (
            "git_commit: abc",
            "git_commit: abc\nmodel_dir: /etc",
            "model_dir",
        ),
    ] {
        std::fs::write(envs.join("staging.yaml"), good.replace(from, to)).unwrap();
        for args in [&["status"][..], &["deploy", "staging"][..]] {
            refused(dir, args, "staging.yaml is not a valid environment file");
            refused(dir, args, expected);
        }
    }
    std::fs::write(envs.join("staging.yaml"), &good).unwrap();
    let out = mlops(dir).args(["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// `mlops <args> --format <format>` in `dir`, which must succeed; its stdout.
fn rendered(dir: &Path, args: &[&str], format: &str) -> String {
    let out = mlops(dir)
        .args(args)
        .args(["--format", format])
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} {format}: {}", stderr(&out));
    stdout(&out)
}

/// Every format of status and history: nothing promoted yet; then staging promoted twice and
/// rolled back, production promoted through a merged pull request, later retired. The
/// digests are the test's own; commits are redacted, dates fixed.
#[test]
fn status_and_history_render_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&fixture("churn"), dir);
    let day = |d: u32| format!("2026-11-{d:02}T10:00:00Z");
    git_dated(dir, Some(&day(20)), &["init", "-q", "-b", "main"]);
    git_dated(dir, Some(&day(20)), &["add", "-A"]);
    git_dated(dir, Some(&day(20)), &["commit", "-qm", "project"]);
    let mut settings = snapshots(dir);
    redact_commits(&mut settings);
    let _s = settings.bind_to_scope();
    let status = &["status"][..];
    let history = &["history", "staging"][..];
    for format in ["human", "json", "markdown"] {
        insta::assert_snapshot!(
            format!("empty-status-{format}"),
            rendered(dir, status, format)
        );
        insta::assert_snapshot!(
            format!("empty-history-{format}"),
            rendered(dir, history, format)
        );
    }

    pin_dated(
        dir,
        Some(&day(21)),
        "staging",
        'a',
        "1",
        "promote run 1 to staging",
    );
    pin_dated(
        dir,
        Some(&day(22)),
        "staging",
        'b',
        "2",
        "promote run 2 to staging",
    );
    let branch = "mlops/promote/churn/production";
    git_dated(dir, Some(&day(23)), &["checkout", "-q", "-b", branch]);
    pin_dated(
        dir,
        Some(&day(23)),
        "production",
        'b',
        "2",
        "Promote run 2 to production",
    );
    git_dated(dir, Some(&day(23)), &["checkout", "-q", "main"]);
    let merge = format!("Merge pull request #7 from acme/{branch}");
    git_dated(
        dir,
        Some(&day(24)),
        &["merge", "-q", "--no-ff", "-m", &merge, branch],
    );
    pin_dated(
        dir,
        Some(&day(25)),
        "staging",
        'a',
        "1",
        "Roll back staging to run 1",
    );
    for format in ["human", "json", "markdown"] {
        insta::assert_snapshot!(format!("status-{format}"), rendered(dir, status, format));
        insta::assert_snapshot!(
            format!("history-staging-{format}"),
            rendered(dir, history, format)
        );
    }
    // github renders what markdown renders.
    assert_eq!(
        rendered(dir, status, "github"),
        rendered(dir, status, "markdown")
    );
    assert_eq!(
        rendered(dir, history, "github"),
        rendered(dir, history, "markdown")
    );

    std::fs::remove_file(dir.join(".mlops/environments/production.yaml")).unwrap();
    git_dated(
        dir,
        Some(&day(26)),
        &["commit", "-qam", "retire production"],
    );
    insta::assert_snapshot!(
        "history-production-human",
        rendered(dir, &["history", "production"], "human")
    );
}
