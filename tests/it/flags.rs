//! The flags every step shares: `--runner` and `--format` accept only what exists (clap's error,
//! exit 2), `run` reads `MLOPS_SET_PARAMS` like `train`, `sign --generate-key` defaults its
//! prefix to `cosign`.

use std::path::Path;

use crate::common::{mlops, stderr, stdout};

/// A project whose steps are shell commands, for the process runner: training succeeds only
/// when it sees `C=0.25` and `name=two words`.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/train.csv"), "x,label\n1,0\n2,1\n").unwrap();
    std::fs::write(dir.path().join("data/test.csv"), "x,label\n3,1\n").unwrap();
    let train = r#"test "$MLOPS_PARAM_C" = 0.25 && test "$MLOPS_PARAM_NAME" = "two words" && echo m > "$MLOPS_MODEL_DIR/m""#;
    let evaluate = r#"printf '{"f1": 0.9}' > "$MLOPS_OUTPUT_DIR/metrics.json""#;
    std::fs::write(
        dir.path().join("mlops.yaml"),
        format!(
            "version: 1\nmodel: toy\ndata:\n  train: {{path: data/train.csv}}\n  test: {{path: data/test.csv}}\n\
             train:\n  image: mlops-test/busybox\n  command: [sh, -c, {train:?}]\n  params: {{C: 1.0, name: toy}}\n\
             evaluate:\n  command: [sh, -c, {evaluate:?}]\n\
             compare:\n  metrics:\n    f1: {{direction: maximize, threshold: 0.5}}\n"
        ),
    )
    .unwrap();
    dir
}

/// `mlops ARGS` in `dir` with `env` set must exit with `code`; its stderr.
fn exits(dir: &Path, args: &[&str], env: &[(&str, &str)], code: i32) -> String {
    let out = mlops(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
    stderr(&out)
}

fn assert_clap_refused(dir: &Path, args: &[&str], env: &[(&str, &str)], value: &str) {
    let err = exits(dir, args, env, 2);
    assert!(err.contains(&format!("invalid value '{value}'")), "{err}");
}

#[test]
fn an_unknown_runner_is_refused_not_taken_for_docker() {
    let dir = project();
    for command in ["train", "evaluate", "run"] {
        assert_clap_refused(dir.path(), &[command, "--runner", "podman"], &[], "podman");
        let env = [("MLOPS_RUNNER", "podman")];
        assert_clap_refused(dir.path(), &[command], &env, "podman");
    }
    assert!(!dir.path().join(".mlops/runs").exists(), "nothing ran");
}

#[test]
fn format_accepts_only_what_the_command_renders() {
    let dir = project();
    for (args, refused) in [
        (&["validate"][..], "markdown"),
        (&["package"][..], "markdown"),
        (&["package"][..], "github"),
        (&["promote", "staging"][..], "markdown"),
        (&["deploy", "staging"][..], "github"),
    ] {
        let args = [args, &["--format", refused]].concat();
        assert_clap_refused(dir.path(), &args, &[], refused);
    }
    for format in ["human", "json", "github"] {
        exits(dir.path(), &["validate", "--format", format], &[], 0);
    }
}

#[test]
fn run_reads_parameter_overrides_from_mlops_set_params() {
    let dir = project();
    let run = ["run", "--runner", "process"];
    let params = [("MLOPS_SET_PARAMS", "C=0.25\nname=two words")];
    let err = exits(dir.path(), &run, &params, 0);
    assert!(err.contains("mlops run: train ok"), "{err}");
    // Without them the training command says no.
    let err = exits(dir.path(), &run, &[], 1);
    assert!(err.contains("stopped at train"), "{err}");
}

#[test]
fn generate_key_without_a_prefix_writes_cosign_key_and_pub() {
    let dir = tempfile::tempdir().unwrap();
    let out = mlops(dir.path())
        .args(["sign", "--generate-key"])
        .env("MLOPS_SIGNING_PASSWORD", "pw")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "cosign.pub");
    for name in ["cosign.key", "cosign.pub"] {
        assert!(Path::new(&dir.path().join(name)).is_file(), "{name}");
    }
}
