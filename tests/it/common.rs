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

/// Prefixes of the variables that steer mlops or describe a CI job. The binary under test
/// never inherits them: a developer's shell or the CI job running the tests cannot change what
/// a test sees, and a test sets the ones it needs itself.
pub const CLEARED_PREFIXES: &[&str] = &[
    "MLOPS_", "GITHUB_", "DOCKER_", "RUNNER_", "ACTIONS_", "MLFLOW_",
];

/// The names among `vars` that a child must not inherit: every `CLEARED_PREFIXES` variable,
/// and `RUST_LOG` (logs on stderr are part of what tests assert).
pub fn inherited_settings(
    vars: impl Iterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    vars.filter(|name| {
        let name = name.to_string_lossy();
        name == "RUST_LOG" || CLEARED_PREFIXES.iter().any(|p| name.starts_with(p))
    })
    .collect()
}

/// Removes from `cmd`'s environment every setting it would inherit from the test process
/// (see `inherited_settings`). Anything the test sets afterwards reaches the child.
pub fn isolate(cmd: &mut Command) -> &mut Command {
    for name in inherited_settings(std::env::vars_os().map(|(k, _)| k)) {
        cmd.env_remove(name);
    }
    cmd
}

/// `program` with an isolated environment (`isolate`): only the engine's address is passed
/// on, explicitly, when the test process has one.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    isolate(&mut cmd);
    if let Some(host) = std::env::var_os("DOCKER_HOST") {
        cmd.env("DOCKER_HOST", host);
    }
    cmd
}

/// The mlops binary, run in `dir` with an isolated environment: every integration test starts
/// it through here.
pub fn mlops(dir: &Path) -> Command {
    let mut cmd = clean_command(env!("CARGO_BIN_EXE_mlops"));
    cmd.current_dir(dir);
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

/// `text` as a regular expression matching itself (for insta filters over paths).
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// insta settings for what mlops prints about a project in `dir`: the temporary directory is
/// `[project]`, run ids are `[run-id]`, and a version in a comment is `[version]`. Bind them
/// for the scope of a test with `let _s = snapshots(dir).bind_to_scope();`.
pub fn snapshots(dir: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    let mut paths = vec![dir.to_path_buf()];
    if let Ok(real) = dir.canonicalize() {
        paths.push(real);
    }
    for path in paths {
        settings.add_filter(&literal(&path.display().to_string()), "[project]");
    }
    settings.add_filter(r"\b\d{8}T\d{6}Z-[0-9a-f]{6}\b", "[run-id]");
    settings.add_filter(r"mlops \d+\.\d+\.\d+\S*", "mlops [version]");
    settings.set_omit_expression(true);
    settings
}

/// Also computed digests (`sha256:` and 64 hex digits) as `sha256:[digest]`, and the 12-digit
/// prefixes shown for them, for snapshots of content whose bytes are not the point.
pub fn redact_digests(settings: &mut insta::Settings) {
    settings.add_filter(r"sha256:[0-9a-f]{64}\b", "sha256:[digest]");
    settings.add_filter(r"\breference [0-9a-f]{12}\b", "reference [digest-12]");
    settings.add_filter(r"\(was `[0-9a-f]{12}`\)", "(was `[digest-12]`)");
}

/// Also git commits: a full 40-digit id as `[commit]`, a 12-digit one as `[commit-12]`.
pub fn redact_commits(settings: &mut insta::Settings) {
    settings.add_filter(r"\b[0-9a-f]{40}\b", "[commit]");
    settings.add_filter(r"(^|[^:0-9a-f])[0-9a-f]{12}\b", "${1}[commit-12]");
}

/// The registry the tests push to (`scripts/services` starts it).
/// A project in a temporary directory: `data/train.csv` and `data/test.csv` with the given
/// contents, and an mlops.yaml that starts `version: 1`, `model: <model>`, the two datasets,
/// and goes on with `rest`.
pub fn csv_project(model: &str, train_csv: &str, test_csv: &str, rest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/train.csv"), train_csv).unwrap();
    std::fs::write(dir.path().join("data/test.csv"), test_csv).unwrap();
    std::fs::write(
        dir.path().join("mlops.yaml"),
        format!(
            "version: 1\nmodel: {model}\ndata:\n  train: {{path: data/train.csv}}\n  test: {{path: data/test.csv}}\n{rest}"
        ),
    )
    .unwrap();
    dir
}

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

#[test]
fn the_settings_a_child_would_inherit_are_named_by_prefix() {
    let names = [
        "MLOPS_SIGNING_KEY",
        "GITHUB_TOKEN",
        "DOCKER_CONFIG",
        "RUNNER_TEMP",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "MLFLOW_TRACKING_URI",
        "RUST_LOG",
        "HOME",
        "PATH",
        "XMLOPS_NOT_A_PREFIX",
        "GITHUBTOKEN",
    ];
    let cleared = inherited_settings(names.iter().map(std::ffi::OsString::from));
    assert_eq!(
        cleared,
        [
            "MLOPS_SIGNING_KEY",
            "GITHUB_TOKEN",
            "DOCKER_CONFIG",
            "RUNNER_TEMP",
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "MLFLOW_TRACKING_URI",
            "RUST_LOG",
        ]
    );
}

/// What the binary under test sees, shown by `env` started the same way: none of the test
/// process's settings, only DOCKER_HOST when the test process has it.
#[test]
fn an_isolated_child_sees_only_the_engine_address() {
    let out = clean_command("env").output().unwrap();
    assert!(out.status.success());
    let printed = stdout(&out);
    let seen: Vec<&str> = printed
        .lines()
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .collect();
    for name in &seen {
        assert!(
            *name == "DOCKER_HOST" || inherited_settings(std::iter::once(name.into())).is_empty(),
            "the child inherits {name}"
        );
    }
    assert_eq!(
        seen.contains(&"DOCKER_HOST"),
        std::env::var_os("DOCKER_HOST").is_some()
    );
    assert!(seen.contains(&"PATH"), "{seen:?}");
}
