//! `mlops init` per option set: what it says and every file it writes, as snapshots. Files the
//! example copies verbatim are compared with their fixture byte for byte and only named in
//! the snapshot; the commit of mlops' own actions (the build's, by default) is redacted.

use std::path::{Path, PathBuf};

use crate::common::{fixture, mlops, snapshots, stderr, stdout};

/// Files of the example that `init --example` copies as they are.
const VERBATIM: &[&str] = &["train.py", "evaluate.py", "data/train.csv", "data/test.csv"];

fn files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

/// Runs `mlops init <args>` in a fresh directory named churn-model (the skeleton's model
/// name comes from it), with `env` set; snapshots what it printed and wrote as `name`.
fn init(name: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("churn-model");
    std::fs::create_dir(&dir).unwrap();
    let mut cmd = mlops(&dir);
    cmd.arg("init").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    let command = ["mlops", "init"]
        .iter()
        .chain(args)
        .copied()
        .collect::<Vec<_>>();
    let mut text = format!("$ {}\n{}", command.join(" "), stdout(&out));
    text.push_str(&format!("--- stderr\n{}", stderr(&out)));
    let mut written = Vec::new();
    files(&dir, &dir, &mut written);
    written.sort();
    for rel in written {
        let file = rel.display().to_string();
        let bytes = std::fs::read(dir.join(&rel)).unwrap();
        if VERBATIM.contains(&file.as_str()) {
            let original = fixture("churn").join(&rel);
            assert_eq!(
                bytes,
                std::fs::read(&original).unwrap(),
                "{file} differs from {}",
                original.display()
            );
            text.push_str(&format!(
                "==> {file} <== the bytes of fixtures/churn/{file} ({} lines)\n",
                bytes.iter().filter(|b| **b == b'\n').count()
            ));
        } else {
            let content = String::from_utf8(bytes).unwrap();
            text.push_str(&format!("==> {file} <==\n{content}"));
            if !content.ends_with('\n') {
                text.push_str("\n(no newline at the end)\n");
            }
        }
    }
    let mut settings = snapshots(&dir);
    settings.add_filter(
        r"mlops-dev/mlops/actions/([a-z-]+)@[0-9a-f]{40}",
        "mlops-dev/mlops/actions/$1@[build-commit]",
    );
    settings.bind(|| insta::assert_snapshot!(name, text.clone()));
    text
}

const REF: &str = "acme/mlops-fork@0123456789abcdef0123456789abcdef01234567";

#[test]
fn init_skeleton() {
    init("skeleton", &[], &[]);
}

#[test]
fn init_example() {
    init("example", &["--example"], &[]);
}

#[test]
fn init_forge_local() {
    init("forge-local", &["--forge", "local"], &[]);
}

#[test]
fn init_forge_local_example() {
    init(
        "forge-local-example",
        &["--forge", "local", "--example"],
        &[],
    );
}

/// Explicit forge, actions and runners, and the owner taken from GITHUB_REPOSITORY as a
/// workflow has it.
#[test]
fn init_forge_github_actions_ref_and_runners() {
    let text = init(
        "forge-github-actions-ref-runners",
        &[
            "--forge",
            "github",
            "--actions-ref",
            REF,
            "--runs-on",
            "gpu-runner",
            "--deploy-runs-on",
            "deploy-box",
        ],
        &[("GITHUB_REPOSITORY", "acme/churn")],
    );
    assert!(
        text.contains("acme/mlops-fork/actions/setup@0123456789abcdef"),
        "{text}"
    );
}
