//! The generated workflows run step by step (`harness`): mlops-ci.yml on a pull_request event
//! against the local engine and registry and the GitHub fake, with the images replaced through
//! `vars` only; and a workflow whose step reads a misspelt output fails, naming it.

#[path = "workflows/expr.rs"]
mod expr;
#[path = "workflows/harness.rs"]
mod harness;

use std::path::Path;

use serde_json::json;

use crate::common::{git, mlops, registry, repo_root, stderr};
use crate::fake_github::Fake;
use harness::Harness;

const TOKEN: &str = "ghs_workflows";
const REF: &str = "mlops-dev/mlops@0123456789abcdef0123456789abcdef01234567";
const LOCAL_BUILD_ARGS: &str = "PYTHON_IMAGE=mlops-test/python-sklearn PIP_INSTALL=0";

/// A project `mlops init --example` wrote for acme/<unique> on the local registry, committed.
fn project(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    let out = mlops(dir)
        .args([
            "init",
            "--example",
            "--actions-ref",
            REF,
            "--registry",
            &registry(),
        ])
        .env("GITHUB_REPOSITORY", "acme/churn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let keys = mlops(dir)
        .args(["sign", "--generate-key", "cosign"])
        .env("MLOPS_SIGNING_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(keys.status.success(), "{}", stderr(&keys));
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "mlops init"]);
}

/// A harness for a pull_request event on PR `number` of acme/churn.
fn pull_request_run(dir: &Path, fake: &Fake, number: u64) -> Harness {
    let sha = git(dir, &["rev-parse", "HEAD"]);
    let event = json!({
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"ref": "feature", "sha": sha, "repo": {"full_name": "acme/churn"}},
            "base": {"ref": "main", "repo": {"full_name": "acme/churn"}},
        },
    });
    run_for(
        dir,
        fake,
        "pull_request",
        event,
        &format!("refs/pull/{number}/merge"),
    )
}

/// A harness for a push to main, from `before` to the checkout's HEAD.
fn push_run(dir: &Path, fake: &Fake, before: &str) -> Harness {
    let sha = git(dir, &["rev-parse", "HEAD"]);
    let event = json!({"before": before, "after": sha, "ref": "refs/heads/main"});
    let mut h = run_for(dir, fake, "push", event, "refs/heads/main");
    h.secrets.insert(
        "MLOPS_SIGNING_KEY".into(),
        json!(std::fs::read_to_string(dir.join("cosign.key")).unwrap()),
    );
    h.secrets
        .insert("MLOPS_SIGNING_PASSWORD".into(), json!("pw"));
    h
}

fn run_for(
    dir: &Path,
    fake: &Fake,
    event_name: &str,
    event: serde_json::Value,
    git_ref: &str,
) -> Harness {
    let sha = git(dir, &["rev-parse", "HEAD"]);
    let events = dir
        .parent()
        .unwrap()
        .join(format!("event-{event_name}.json"));
    std::fs::write(&events, event.to_string()).unwrap();
    let github = json!({
        "event_name": event_name,
        "event": event,
        "repository": "acme/churn",
        "repository_owner": "acme",
        "actor": "octocat",
        "token": TOKEN,
        "sha": sha,
        "ref": git_ref,
        "action_repository": "mlops-dev/mlops",
        "api_url": fake.url,
    });
    let mut h = Harness::new(dir, &repo_root(), github);
    let bin = Path::new(env!("CARGO_BIN_EXE_mlops")).parent().unwrap();
    let env = [
        (
            "PATH",
            format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display()),
        ),
        ("HOME", std::env::var("HOME").unwrap_or_default()),
        ("GITHUB_ACTIONS", "true".into()),
        ("GITHUB_API_URL", fake.url.clone()),
        ("GITHUB_REPOSITORY", "acme/churn".into()),
        ("GITHUB_EVENT_NAME", event_name.into()),
        ("GITHUB_EVENT_PATH", events.display().to_string()),
        ("GITHUB_WORKSPACE", dir.display().to_string()),
        ("GITHUB_SHA", sha),
        ("MLOPS_REGISTRY_BACKOFF_MS", "20".into()),
        ("MLOPS_GITHUB_BACKOFF_MS", "20".into()),
    ];
    for (k, v) in env {
        h.base_env.insert(k.into(), v);
    }
    if let Some(d) = std::env::var_os("DOCKER_HOST") {
        h.base_env
            .insert("DOCKER_HOST".into(), d.to_string_lossy().into_owned());
    }
    h.vars
        .insert("MLOPS_BUILD_ARGS".into(), json!(LOCAL_BUILD_ARGS));
    h
}

#[test]
fn the_ci_workflow_runs_step_by_step_and_keeps_the_report_as_one_comment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("churn");
    project(&dir);
    let fake = Fake::start(TOKEN);
    let number = fake.add_pull("feature", "main", "a change");
    let mut h = pull_request_run(&dir, &fake, number);
    let ci = dir.join(".github/workflows/mlops-ci.yml");
    h.run_workflow(&ci)
        .unwrap_or_else(|e| panic!("{e}\nran: {:#?}", h.ran));
    let steps: Vec<&str> = h.ran.iter().map(String::as_str).collect();
    for action in [
        "doctor",
        "validate",
        "data-check",
        "train",
        "evaluate",
        "compare",
    ] {
        assert!(
            steps
                .iter()
                .any(|s| s.contains(&format!("/actions/{action}@"))),
            "{action} did not run: {steps:#?}"
        );
    }
    // The gate's report is one sticky comment on the pull request.
    let comments = fake.comments();
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert_eq!(comments[0].issue, number);
    assert!(comments[0].body.contains("f1"), "{}", comments[0].body);
    assert!(h.summaries.iter().any(|s| !s.is_empty()), "no step summary");
}

#[test]
fn a_misspelt_output_name_in_a_workflow_fails_the_run_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("churn");
    project(&dir);
    let fake = Fake::start(TOKEN);
    let number = fake.add_pull("feature", "main", "a change");
    let ci = dir.join(".github/workflows/mlops-ci.yml");
    let text = std::fs::read_to_string(&ci).unwrap();
    assert!(text.contains("steps.train.outputs.run-id"));
    let broken = tmp.path().join("mlops-ci-misspelt.yml");
    std::fs::write(
        &broken,
        text.replace("steps.train.outputs.run-id", "steps.train.outputs.run_id"),
    )
    .unwrap();
    let mut h = pull_request_run(&dir, &fake, number);
    let err = h.run_workflow(&broken).unwrap_err();
    assert!(err.contains("steps.train.outputs.run_id"), "{err}");
    // The steps before it ran: train wrote run-id, under its real name.
    assert!(
        h.ran.iter().any(|s| s.contains("/actions/train@")),
        "{:#?}",
        h.ran
    );

    // An input name the action does not declare fails the same way.
    let wrong_input = tmp.path().join("mlops-ci-wrong-input.yml");
    std::fs::write(
        &wrong_input,
        text.replacen(
            "          run-id: ${{ steps.train.outputs.run-id }}",
            "          run_id: ${{ steps.train.outputs.run-id }}",
            1,
        ),
    )
    .unwrap();
    let mut h = pull_request_run(&dir, &fake, number);
    let err = h.run_workflow(&wrong_input).unwrap_err();
    assert!(err.contains("has no input \"run_id\""), "{err}");
}

/// Push to main: mlops-promote.yml trains, gates, packages, signs and opens the promotion pull
/// request on the fake; its environment file merged, mlops-deploy.yml finds the changed
/// environment and deploys exactly the pinned digest.
#[test]
fn the_promote_then_deploy_workflows_run_on_push_and_deploy_the_pinned_digest() {
    let _staging = crate::promote::staging_container();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("churn");
    project(&dir);
    let fake = Fake::start(TOKEN);
    let first = git(&dir, &["rev-parse", "HEAD"]);
    let mut h = push_run(&dir, &fake, "0000000000000000000000000000000000000000");
    let promote = dir.join(".github/workflows/mlops-promote.yml");
    let jobs = h
        .run_workflow(&promote)
        .unwrap_or_else(|e| panic!("{e}\nran: {:#?}", h.ran));
    assert_eq!(jobs["train"]["result"], "success", "{jobs:#?}");
    assert_eq!(jobs["pin"]["result"], "skipped", "{jobs:#?}");
    for action in ["doctor", "package", "sign", "promote"] {
        assert!(
            h.ran
                .iter()
                .any(|s| s.contains(&format!("/actions/{action}@"))),
            "{action} did not run: {:#?}",
            h.ran
        );
    }
    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    assert_eq!(pulls[0].head, "mlops/promote/churn/staging");
    assert_eq!(pulls[0].base, "main");
    let pinned = fake
        .file(
            "mlops/promote/churn/staging",
            ".mlops/environments/staging.yaml",
        )
        .expect("the promotion pins staging");
    let state = mlops::yamlio::from_yaml(&pinned).unwrap();
    let digest = state["digest"].as_str().unwrap().to_string();

    // The reviewer merges: the environment file lands on main.
    std::fs::create_dir_all(dir.join(".mlops/environments")).unwrap();
    std::fs::write(dir.join(".mlops/environments/staging.yaml"), &pinned).unwrap();
    git(&dir, &["add", ".mlops/environments/staging.yaml"]);
    git(
        &dir,
        &["commit", "-qm", "Merge the promotion of churn to staging"],
    );
    let mut h = push_run(&dir, &fake, &first);
    let deploy = dir.join(".github/workflows/mlops-deploy.yml");
    let jobs = h
        .run_workflow(&deploy)
        .unwrap_or_else(|e| panic!("{e}\nran: {:#?}", h.ran));
    assert_eq!(
        jobs["changes"]["outputs"]["environments"], "[\"staging\"]",
        "{jobs:#?}"
    );
    let running = std::process::Command::new("/usr/bin/docker")
        .args([
            "inspect",
            "-f",
            "{{index .Config.Labels \"dev.mlops.digest\"}}",
            "mlops-churn-staging",
        ])
        .output()
        .unwrap();
    assert_eq!(crate::common::stdout(&running).trim(), digest);
}
