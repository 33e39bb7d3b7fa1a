//! `mlops promote` with the local forge, on a real git repository, after a real `mlops run`
//! (train, evaluate, compare, package to the local registry, sign).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::{copy_dir, fixture, mlops, stderr, stdout};

const PASSWORD: &str = "promote-test-password";

fn registry() -> String {
    std::env::var("MLOPS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Reviewer",
            "-c",
            "user.email=reviewer@mlops.invalid",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

fn promote(dir: &Path, env: &str) -> Output {
    mlops(dir)
        .args(["promote", env, "--format", "json"])
        .output()
        .unwrap()
}

#[test]
fn promote_proposes_one_branch_per_environment_and_refuses_what_it_must() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&fixture("churn"), dir);
    let repo = format!(
        "{}/promote-test/churn-{}-{}",
        registry(),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let yaml = std::fs::read_to_string(dir.join("mlops.yaml"))
        .unwrap()
        .replace(
            "repository: 127.0.0.1:5000/acme/churn",
            &format!("repository: {repo}"),
        )
        .replace(
            "base_image: 127.0.0.1:5000/acme/serve-sklearn:1",
            &format!("base_image: {}/acme/serve-sklearn:1", registry()),
        )
        .replace(
            "  key: env:MLOPS_SIGNING_KEY\n",
            "  key: env:MLOPS_SIGNING_KEY\n  public_key: cosign.pub\n",
        );
    std::fs::write(dir.join("mlops.yaml"), yaml).unwrap();
    let keys = mlops(dir)
        .args(["sign", "--generate-key", "cosign"])
        .env("MLOPS_SIGNING_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(keys.status.success(), "{}", stderr(&keys));
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "project"]);

    let run = mlops(dir)
        .arg("run")
        .env("MLOPS_SIGNING_PASSWORD", PASSWORD)
        .env(
            "MLOPS_SIGNING_KEY",
            std::fs::read_to_string(dir.join("cosign.key")).unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(stderr(&run).contains("sign ok"), "{}", stderr(&run));
    let run_id = std::fs::read_to_string(dir.join(".mlops/runs/latest"))
        .unwrap()
        .trim()
        .to_string();
    let packaged: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!(".mlops/runs/{run_id}/package.json"))).unwrap(),
    )
    .unwrap();
    let digest = packaged["digest"].as_str().unwrap().to_string();

    // production requires staging: refused while staging never had the digest.
    let out = promote(dir, "production");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("production requires staging"),
        "{}",
        stderr(&out)
    );

    // staging: one commit on mlops/promote/churn/staging; the working tree is untouched.
    let out = promote(dir, "staging");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["proposal"]["branch"], "mlops/promote/churn/staging");
    let first = result["proposal"]["commit"].as_str().unwrap().to_string();
    let pinned = git(
        dir,
        &[
            "show",
            "mlops/promote/churn/staging:.mlops/environments/staging.yaml",
        ],
    );
    assert!(
        pinned.contains(&format!("digest: {digest}"))
            || pinned.contains(&format!("digest: \"{digest}\"")),
        "{pinned}"
    );
    assert!(
        pinned.contains(&format!("run_id: {run_id}"))
            || pinned.contains(&format!("run_id: \"{run_id}\"")),
        "{pinned}"
    );
    assert_eq!(git(dir, &["rev-parse", "--abbrev-ref", "HEAD"]), "main");
    assert_eq!(
        git(dir, &["status", "--porcelain"]),
        "",
        "the working tree is never touched"
    );
    assert!(!dir.join(".mlops/environments/staging.yaml").exists());
    let body = std::fs::read_to_string(result["proposal"]["body_path"].as_str().unwrap()).unwrap();
    assert!(body.contains(&format!("Pins `{repo}@{digest}`")), "{body}");
    assert!(body.contains("churn: promote"), "{body}");

    // Again: nothing new, no commit.
    let out = promote(dir, "staging");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing new to propose"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        git(dir, &["rev-parse", "mlops/promote/churn/staging"]),
        first
    );

    // A reviewer's commit on the branch is never overwritten: a fresh branch instead.
    git(dir, &["checkout", "-q", "mlops/promote/churn/staging"]);
    std::fs::write(dir.join("NOTES.md"), "looks good\n").unwrap();
    git(dir, &["add", "NOTES.md"]);
    git(dir, &["commit", "-qm", "review notes"]);
    let reviewed = git(dir, &["rev-parse", "HEAD"]);
    git(dir, &["checkout", "-q", "main"]);
    let out = promote(dir, "staging");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("that mlops did not make"),
        "{}",
        stderr(&out)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fresh = result["proposal"]["branch"].as_str().unwrap().to_string();
    assert_eq!(fresh, "mlops/promote/churn/staging-2");
    assert_eq!(
        git(dir, &["rev-parse", "mlops/promote/churn/staging"]),
        reviewed
    );

    // The reviewer merges: staging has it; production may now take it.
    git(
        dir,
        &["merge", "-q", "--no-ff", "-m", "merge promotion", &fresh],
    );
    let status: Value = serde_json::from_slice(
        &mlops(dir)
            .args(["status", "--format", "json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        status["environments"][0]["state"]["digest"],
        digest.as_str()
    );
    let out = promote(dir, "staging");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already has this content"),
        "{}",
        stderr(&out)
    );
    let out = promote(dir, "production");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        result["proposal"]["branch"],
        "mlops/promote/churn/production"
    );

    // Another public key: the signature does not verify, nothing is proposed.
    let other = mlops(dir)
        .args(["sign", "--generate-key", "other"])
        .env("MLOPS_SIGNING_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(other.status.success());
    std::fs::copy(dir.join("other.pub"), dir.join("cosign.pub")).unwrap();
    let before = git(dir, &["rev-parse", "mlops/promote/churn/production"]);
    let out = promote(dir, "production");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not promoted"), "{}", stderr(&out));
    assert_eq!(
        git(dir, &["rev-parse", "mlops/promote/churn/production"]),
        before
    );

    // A run the gate rejected is never promoted.
    let compare = dir.join(format!(".mlops/runs/{run_id}/compare.json"));
    std::fs::write(
        &compare,
        r#"{"verdict": "reject", "reasons": ["f1 threshold: 0.5 does not meet >= 0.8"]}"#,
    )
    .unwrap();
    let out = promote(dir, "staging");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the gate rejected run"),
        "{}",
        stderr(&out)
    );

    // An environment that does not exist: exit 2, naming the ones that do.
    let out = promote(dir, "prod");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("staging, production"),
        "{}",
        stderr(&out)
    );
}
