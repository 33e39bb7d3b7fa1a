//! `mlops doctor` on a project `mlops init` wrote: every check passes with the right
//! environment (the local engine and registry, the GitHub fake, the key and its password), and
//! each broken piece fails with its own line and a fix: the engine down, a registry refusing
//! the credentials, a wrong signing password, a key that is not the pair of sign.public_key,
//! and a token without pull_requests.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::{git, mlops, registry, stderr, stdout};
use crate::fake_github::Fake;
use crate::registry_trust::fake::{Fake as FakeRegistry, Reply};

const TOKEN: &str = "ghs_doctor";
const PASSWORD: &str = "doctor-pw";
const REF: &str = "mlops-dev/mlops@0123456789abcdef0123456789abcdef01234567";

/// A project from `mlops init --example` for acme/churn on `registry`, with its key pair.
fn project(dir: &Path, registry: &str) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    let out = mlops(dir)
        .args([
            "init",
            "--example",
            "--actions-ref",
            REF,
            "--registry",
            registry,
        ])
        .env("GITHUB_REPOSITORY", "acme/churn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let keys = mlops(dir)
        .args(["sign", "--generate-key", "cosign"])
        .env("MLOPS_SIGNING_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(keys.status.success(), "{}", stderr(&keys));
}

/// `mlops doctor` as a promote job runs it.
fn doctor(dir: &Path, fake: &Fake, edit: impl FnOnce(&mut Command)) -> Output {
    let mut cmd = mlops(dir);
    cmd.arg("doctor")
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_REPOSITORY", "acme/churn")
        .env("MLOPS_GITHUB_BACKOFF_MS", "10")
        .env("MLOPS_REGISTRY_BACKOFF_MS", "10")
        .env("MLOPS_SIGNING_PASSWORD", PASSWORD)
        .env(
            "MLOPS_SIGNING_KEY",
            std::fs::read_to_string(dir.join("cosign.key")).unwrap(),
        );
    edit(&mut cmd);
    cmd.output().unwrap()
}

fn line<'a>(out: &'a str, check: &str) -> &'a str {
    let prefix = format!(" {check}: ");
    out.lines()
        .find(|l| l.contains(&prefix) && !l.starts_with("     "))
        .unwrap_or_else(|| panic!("no {check} line in:\n{out}"))
}

fn fails_with(out: &Output, check: &str, says: &str) {
    let text = stdout(out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(out));
    let l = line(&text, check);
    assert!(l.starts_with("FAIL ") && l.contains(says), "{l}\n{text}");
    // The fix is on the next line.
    let next = text.lines().skip_while(|x| *x != l).nth(1).unwrap_or("");
    assert!(next.trim_start().starts_with("fix: "), "{text}");
}

#[test]
fn doctor_passes_when_everything_is_set_up_and_names_each_broken_piece() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("churn");
    project(&dir, &registry());
    let fake = Fake::start(TOKEN);

    let good = doctor(&dir, &fake, |_| {});
    let text = stdout(&good);
    assert_eq!(good.status.code(), Some(0), "{text}{}", stderr(&good));
    for check in ["config", "engine", "registry", "signing", "forge"] {
        assert!(line(&text, check).starts_with("ok "), "{text}");
    }
    assert!(line(&text, "engine").contains("API 1."), "{text}");
    assert!(line(&text, "tracking").starts_with("skip "), "{text}");
    // The push check started an upload and took it back; GitHub saw only reads.
    let methods: Vec<String> = fake.requests().iter().map(|r| r.method.clone()).collect();
    assert!(methods.iter().all(|m| m == "GET"), "{methods:?}");

    let engine_down = doctor(&dir, &fake, |c| {
        c.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    });
    fails_with(&engine_down, "engine", "cannot reach the Docker engine");

    let wrong_password = doctor(&dir, &fake, |c| {
        c.env("MLOPS_SIGNING_PASSWORD", "not-the-password");
    });
    fails_with(&wrong_password, "signing", "cannot decrypt the signing key");

    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let keys = mlops(&other)
        .args(["sign", "--generate-key", "cosign"])
        .env("MLOPS_SIGNING_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(keys.status.success(), "{}", stderr(&keys));
    let mismatch = doctor(&dir, &fake, |c| {
        c.env(
            "MLOPS_SIGNING_KEY",
            std::fs::read_to_string(other.join("cosign.key")).unwrap(),
        );
    });
    fails_with(&mismatch, "signing", "is not the pair of sign.public_key");

    fake.state.lock().unwrap().permissions = Some(BTreeMap::from([
        ("contents".to_string(), "write".to_string()),
        ("issues".to_string(), "write".to_string()),
    ]));
    let no_pulls = doctor(&dir, &fake, |_| {});
    fails_with(&no_pulls, "forge", "the token lacks pull_requests");
    assert!(
        stdout(&no_pulls).contains("pull_requests=read"),
        "{}",
        stdout(&no_pulls)
    );
    // Only that check failed.
    assert!(line(&stdout(&no_pulls), "signing").starts_with("ok "));
}

#[test]
fn doctor_fails_the_registry_check_when_the_registry_refuses_the_credentials() {
    let refusing = FakeRegistry::start(|_| {
        Reply::status(401)
            .header("content-type", "application/json")
            .header("www-authenticate", "Basic realm=\"fake\"")
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("churn");
    project(&dir, &refusing.host());
    let fake = Fake::start(TOKEN);
    let out = doctor(&dir, &fake, |c| {
        c.env("MLOPS_REGISTRY_USER", "someone")
            .env("MLOPS_REGISTRY_PASSWORD", "wrong");
    });
    fails_with(&out, "registry", "takes no push to acme/churn");
    assert!(
        stdout(&out).contains("MLOPS_REGISTRY_USER"),
        "{}",
        stdout(&out)
    );
    // The credentials went to that registry (and the session was never opened).
    assert!(refusing
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path().ends_with("/blobs/uploads/")));
}
