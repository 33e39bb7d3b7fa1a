//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// The mlops binary with a clean environment for GitHub Actions variables.
pub fn mlops(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mlops"));
    cmd.current_dir(dir);
    for var in [
        "GITHUB_ACTIONS",
        "GITHUB_OUTPUT",
        "GITHUB_STEP_SUMMARY",
        "MLOPS_CONFIG",
        "MLOPS_FORMAT",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Copies a directory tree (fixtures into temporary projects).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The registry the tests push to (`scripts/services` starts it).
pub fn registry() -> String {
    std::env::var("MLOPS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

/// `git` in `dir` as a reviewer would run it; fails the test on a non-zero exit.
pub fn git(dir: &Path, args: &[&str]) -> String {
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

/// The churn example as a signed project in a fresh git repository under `dir`: images go to a
/// registry repository of its own (`<registry>/<area>/churn-<pid>-<ms>`, returned), promote
/// verifies with the committed `cosign.pub`, and `edits` are applied to mlops.yaml as
/// (from, to) replacements, each of which must match.
pub fn signed_churn_project(
    dir: &Path,
    area: &str,
    password: &str,
    edits: &[(&str, &str)],
) -> String {
    copy_dir(&fixture("churn"), dir);
    let repo = format!(
        "{}/{area}/churn-{}-{}",
        registry(),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let mut yaml = std::fs::read_to_string(dir.join("mlops.yaml"))
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
    for (from, to) in edits {
        assert!(yaml.contains(from), "mlops.yaml has no {from:?}");
        yaml = yaml.replace(from, to);
    }
    std::fs::write(dir.join("mlops.yaml"), yaml).unwrap();
    let keys = mlops(dir)
        .args(["sign", "--generate-key", "cosign"])
        .env("MLOPS_SIGNING_PASSWORD", password)
        .output()
        .unwrap();
    assert!(keys.status.success(), "{}", stderr(&keys));
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "project"]);
    repo
}

/// `mlops run` with the project's signing key, as CI runs it.
pub fn signed_run(dir: &Path, password: &str) -> Output {
    mlops(dir)
        .arg("run")
        .env("MLOPS_SIGNING_PASSWORD", password)
        .env(
            "MLOPS_SIGNING_KEY",
            std::fs::read_to_string(dir.join("cosign.key")).unwrap(),
        )
        .output()
        .unwrap()
}
