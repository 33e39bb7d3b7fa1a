//! The step's code is hostile (a fork's pull request runs it): what it writes is read back
//! without following links, bounded in size, and never hangs the host; it sees no secret of
//! the host (environment, signing key, checkout token) and runs under a pids limit. Each test
//! runs with the docker runner and, where the runner can honour it, the process runner.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{git, mlops, registry, stderr, stdout};

/// How long any of these refusals may take: "within seconds", with room for a slow engine.
const BOUND: Duration = Duration::from_secs(60);

/// A project whose steps are shell commands (busybox in a container, sh on the host).
fn project(train: &str, evaluate: &str, train_extra: &str) -> tempfile::TempDir {
    crate::common::csv_project(
        "toy",
        "x,label\n1,0\n2,1\n",
        "x,label\n3,1\n",
        &format!(
            "train:\n  image: mlops-test/busybox\n  command: [sh, -c, {train:?}]\n{train_extra}\
             evaluate:\n  command: [sh, -c, {evaluate:?}]\n\
             compare:\n  metrics:\n    f1: {{direction: maximize, threshold: 0.5}}\n\
             package:\n  repository: oci:layout\n  base_image: {}/acme/serve-sklearn:1\n  model_path: /model\n  command: [python3, /app/serve.py]\n  port: 8080\n",
            registry()
        ),
    )
}

/// Runs `cmd` to its end, or fails the test once `limit` has passed (killing it).
fn bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not end within {limit:?}: it hangs on what the step wrote\nstderr: {}",
                String::from_utf8_lossy(&err.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn step(dir: &Path, command: &str, runner: &str) -> Output {
    bounded(mlops(dir).args([command, "--runner", runner]), BOUND)
}

/// Every regular file under `root` (links are not followed), with its content.
fn files_under(root: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

fn assert_nowhere(sentinel: &str, dir: &Path, outputs: &[&Output]) {
    for o in outputs {
        assert!(!stdout(o).contains(sentinel), "stdout: {}", stdout(o));
        assert!(!stderr(o).contains(sentinel), "stderr: {}", stderr(o));
    }
    for (path, bytes) in files_under(&dir.join(".mlops")) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(sentinel),
            "{} holds the secret",
            path.display()
        );
    }
}

fn trained(evaluate: &str, runner: &str) -> tempfile::TempDir {
    let dir = project("echo model > $MLOPS_MODEL_DIR/m", evaluate, "");
    let out = step(dir.path(), "train", runner);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    dir
}

fn metrics_symlink_to_a_secret(runner: &str) {
    let secret_dir = tempfile::tempdir().unwrap();
    let sentinel = format!("SENTINEL{}x{}", std::process::id(), runner.len());
    // Valid metrics JSON: followed, its key and value would be quoted in the error message.
    let secret = secret_dir.path().join("host-secret.json");
    std::fs::write(&secret, format!("{{\"{sentinel}\": \"{sentinel}\"}}")).unwrap();
    let dir = trained(
        &format!("ln -s {} $MLOPS_OUTPUT_DIR/metrics.json", secret.display()),
        runner,
    );
    let eval = step(dir.path(), "evaluate", runner);
    let err = stderr(&eval);
    assert_eq!(eval.status.code(), Some(2), "{err}");
    assert!(err.contains("metrics.json"), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    let compare = bounded(mlops(dir.path()).arg("compare"), BOUND);
    assert_eq!(compare.status.code(), Some(2), "{}", stderr(&compare));
    assert!(
        stderr(&compare).contains("symbolic link"),
        "{}",
        stderr(&compare)
    );
    assert_nowhere(&sentinel, dir.path(), &[&eval, &compare]);
}

#[test]
fn a_metrics_symlink_to_a_secret_is_refused_docker() {
    metrics_symlink_to_a_secret("docker");
}

#[test]
fn a_metrics_symlink_to_a_secret_is_refused_process() {
    metrics_symlink_to_a_secret("process");
}

fn fifo_metrics(runner: &str) {
    let dir = trained("mkfifo $MLOPS_OUTPUT_DIR/metrics.json", runner);
    let start = Instant::now();
    let eval = step(dir.path(), "evaluate", runner);
    let err = stderr(&eval);
    assert_eq!(eval.status.code(), Some(2), "{err}");
    assert!(
        err.contains("metrics.json") && err.contains("FIFO"),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_fifo_as_metrics_json_fails_at_once_docker() {
    fifo_metrics("docker");
}

#[test]
fn a_fifo_as_metrics_json_fails_at_once_process() {
    fifo_metrics("process");
}

fn sparse_metrics(runner: &str) {
    let dir = trained("truncate -s 2G $MLOPS_OUTPUT_DIR/metrics.json", runner);
    let eval = step(dir.path(), "evaluate", runner);
    let err = stderr(&eval);
    assert_eq!(eval.status.code(), Some(2), "{err}");
    assert!(err.contains("metrics.json"), "{err}");
    assert!(err.contains("larger than the 1 MiB limit"), "{err}");
}

#[test]
fn a_2_gib_sparse_metrics_json_is_refused_docker() {
    sparse_metrics("docker");
}

#[test]
fn a_2_gib_sparse_metrics_json_is_refused_process() {
    sparse_metrics("process");
}

fn fifo_in_model(runner: &str) {
    let dir = project(
        "echo model > $MLOPS_MODEL_DIR/m; mkdir $MLOPS_MODEL_DIR/sub; mkfifo $MLOPS_MODEL_DIR/sub/pipe",
        "echo '{\"f1\": 0.9}' > $MLOPS_OUTPUT_DIR/metrics.json",
        "",
    );
    let out = step(dir.path(), "train", runner);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = bounded(mlops(dir.path()).arg("package"), BOUND);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("sub/pipe") && err.contains("FIFO"), "{err}");
}

#[test]
fn a_fifo_in_the_model_directory_fails_package_docker() {
    fifo_in_model("docker");
}

#[test]
fn a_fifo_in_the_model_directory_fails_package_process() {
    fifo_in_model("process");
}

fn secrets_in_env(runner: &str) {
    let dir = project("env | sort", "true", "  env: {FROM_TRAIN_ENV: kept}\n");
    let secrets = [
        "MLOPS_REGISTRY_PASSWORD",
        "MLOPS_REGISTRY_USER",
        "MLOPS_SIGNING_KEY",
        "MLOPS_SIGNING_PASSWORD",
        "GITHUB_TOKEN",
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "SOME_OTHER_HOST_VARIABLE",
    ];
    let mut cmd = mlops(dir.path());
    cmd.args(["train", "--runner", runner]);
    for (i, var) in secrets.iter().enumerate() {
        cmd.env(var, format!("leaked-{i}-value"));
    }
    let out = bounded(&mut cmd, BOUND);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("[train] FROM_TRAIN_ENV=kept"), "{err}");
    assert!(err.contains("[train] MLOPS_RUN_ID="), "{err}");
    assert!(err.contains("[train] MLOPS_GIT_COMMIT="), "{err}");
    assert!(err.contains("[train] PATH="), "{err}");
    for var in secrets {
        assert!(
            !err.contains(&format!("[train] {var}=")),
            "{var} reached the step: {err}"
        );
    }
    assert!(!err.contains("leaked-"), "{err}");
}

#[test]
fn steps_see_none_of_the_hosts_secrets_docker() {
    secrets_in_env("docker");
}

#[test]
fn steps_see_none_of_the_hosts_secrets_process() {
    secrets_in_env("process");
}

const PIDS_MAX: &str =
    "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max";

#[test]
fn containers_get_a_pids_limit() {
    let dir = project(PIDS_MAX, "true", "");
    let out = step(dir.path(), "train", "docker");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("[train] 4096\n"), "{}", stderr(&out));

    let dir = project(PIDS_MAX, "true", "  resources: {pids: 64}\n");
    let out = step(dir.path(), "train", "docker");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("[train] 64\n"), "{}", stderr(&out));
    let run = std::fs::read_to_string(dir.path().join(".mlops/runs/latest")).unwrap();
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.path()
                .join(".mlops/runs")
                .join(run.trim())
                .join("run.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(record["resources"]["pids"], 64);
}

/// A checkout as actions/checkout leaves it: the token persisted in .git/config.
fn checkout(train_extra: &str, token: &str) -> tempfile::TempDir {
    let dir = project(
        "cat /workspace/.git/config; echo listing:; ls -A /workspace/.mlops; echo commit=$MLOPS_GIT_COMMIT; cat /workspace/.git/HEAD",
        "true",
        train_extra,
    );
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(
        dir.path(),
        &[
            "config",
            "http.https://github.com/.extraheader",
            &format!("AUTHORIZATION: basic {token}"),
        ],
    );
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-qm", "project"]);
    dir
}

#[test]
fn the_workspace_hides_git_config_and_mlops() {
    let token = format!("TOKEN{}", std::process::id());
    let dir = checkout("", &token);
    let head = git(dir.path(), &["rev-parse", "HEAD"]);
    let out = step(dir.path(), "train", "docker");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        !err.contains(&token),
        "the checkout token reached the step: {err}"
    );
    assert!(err.contains("[train] listing:\n"), "{err}");
    assert!(!err.contains("[train] runs"), ".mlops is visible: {err}");
    assert!(err.contains(&format!("[train] commit={head}\n")), "{err}");
    // The rest of .git stays: HEAD is readable.
    assert!(err.contains("[train] ref: refs/heads/main"), "{err}");

    let dir = checkout("  mount_git: true\n", &token);
    let out = step(dir.path(), "train", "docker");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&token),
        "mount_git: true shows .git/config: {err}"
    );
    assert!(err.contains("[train] runs"), "{err}");
}

#[test]
fn build_contexts_leave_out_keys_git_mlops_and_dockerignored_files() {
    let dir = project("find /ctx | sort", "true", "");
    let root = dir.path();
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "train.Dockerfile",
        "FROM mlops-test/busybox\nWORKDIR /ctx\nCOPY . .\n",
    );
    write(
        "cosign.key",
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
    );
    write("nested/deep/deploy.key", "secret\n");
    write("allowed.key", "not a secret, re-included\n");
    write("notes.tmp", "x");
    write("src/notes.tmp", "x");
    write("src/train.py", "print(1)\n");
    write("big/blob.bin", "x");
    write("big/keep.txt", "x");
    write(".git/config", "[core]\n");
    write(".mlops/data/x.json", "{}");
    write(
        ".dockerignore",
        "# build inputs only\n**/*.tmp\n/big/\n!big/keep.txt\n!allowed.key\n",
    );
    let yaml = std::fs::read_to_string(root.join("mlops.yaml"))
        .unwrap()
        .replace(
            "  image: mlops-test/busybox\n",
            "  build: {context: ., dockerfile: train.Dockerfile}\n",
        )
        .replace("evaluate:\n", "evaluate:\n  image: mlops-test/busybox\n");
    std::fs::write(root.join("mlops.yaml"), yaml).unwrap();
    let out = step(root, "train", "docker");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let listed: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("[train] /ctx"))
        .collect();
    for present in [
        "/src/train.py",
        "/big/keep.txt",
        "/allowed.key",
        "/train.Dockerfile",
        "/data/train.csv",
    ] {
        assert!(listed.contains(&present), "{present} missing: {listed:?}");
    }
    for absent in [
        "cosign.key",
        "deploy.key",
        ".tmp",
        "blob.bin",
        "/.git",
        "/.mlops",
    ] {
        assert!(
            !listed.iter().any(|l| l.contains(absent)),
            "{absent} reached the image: {listed:?}"
        );
    }
}
