//! `mlops train` / `evaluate` against the real Docker engine (scripts/services starts it).
//! Every test checks that no container of its run is left behind.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{copy_dir, fixture, mlops, stderr, stdout};

const DOCKER: &str = "/usr/bin/docker";

fn containers_with_label(label: &str) -> Vec<String> {
    let out = Command::new(DOCKER)
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .expect("the docker client runs");
    assert!(
        out.status.success(),
        "docker ps failed: is the engine running? {}",
        stderr(&out)
    );
    stdout(&out).lines().map(str::to_string).collect()
}

fn assert_no_containers(run_id: &str) {
    let left = containers_with_label(&format!("dev.mlops.run={run_id}"));
    assert!(
        left.is_empty(),
        "containers left behind for run {run_id}: {left:?}"
    );
}

fn latest_run(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(".mlops/runs/latest"))
        .unwrap()
        .trim()
        .to_string()
}

/// A project whose steps run shell commands in mlops-test/busybox.
fn busybox_project(train_command: &str, resources: &str) -> tempfile::TempDir {
    crate::common::csv_project(
        "toy",
        "x,label\n1,0\n2,1\n",
        "x,label\n3,1\n",
        &format!(
            "train:\n  image: mlops-test/busybox\n  command: [sh, -c, {train_command:?}]\n  params: {{alpha: 0.5, name: toy}}\n{resources}\
             evaluate:\n  command: [sh, -c, 'echo {{\"f1\": 0.9}} > $MLOPS_OUTPUT_DIR/metrics.json']\n\
             compare:\n  metrics:\n    f1: {{direction: maximize, threshold: 0.5}}\n"
        ),
    )
}

#[test]
fn trains_and_evaluates_the_churn_fixture_in_a_container() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("churn"), dir.path());
    let out = mlops(dir.path()).arg("train").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run_id = latest_run(dir.path());
    assert_eq!(stdout(&out).trim(), run_id);
    let run = dir.path().join(".mlops/runs").join(&run_id);
    assert!(run.join("model/model.joblib").is_file());
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["steps"]["train"]["outcome"], "ok");
    assert_eq!(record["steps"]["train"]["exit_code"], 0);
    assert!(record["steps"]["train"]["image"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(record["data"]["train"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(record["params"]["C"], 1.0);
    assert!(
        stderr(&out).contains("[train] trained on 398 rows"),
        "{}",
        stderr(&out)
    );

    let out = mlops(dir.path()).arg("evaluate").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("eval/challenger/metrics.json")).unwrap())
            .unwrap();
    assert!(metrics["f1"].as_f64().unwrap() > 0.9);
    assert!(run.join("eval/challenger/predictions.csv").is_file());
    assert_no_containers(&run_id);

    // The same fixture on the host, in a venv with the container's library versions, gives
    // identical metrics.
    let python = std::env::var("MLOPS_TEST_PYTHON")
        .expect("MLOPS_TEST_PYTHON: scripts/test sets it to the venv of scripts/python-env");
    let bin = Path::new(&python).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = mlops(dir.path())
        .args(["train", "--runner", "process"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = mlops(dir.path())
        .args(["evaluate", "--runner", "process"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let host_run = dir.path().join(".mlops/runs").join(latest_run(dir.path()));
    assert_ne!(host_run, run);
    assert_eq!(
        std::fs::read_to_string(host_run.join("eval/challenger/metrics.json")).unwrap(),
        std::fs::read_to_string(run.join("eval/challenger/metrics.json")).unwrap(),
        "host and container metrics differ"
    );
}

#[test]
fn protocol_variables_and_mounts() {
    let cmd = r#"set -e; test "$MLOPS_PARAM_ALPHA" = 0.5; test "$MLOPS_PARAM_NAME" = toy; test -f /mlops/data/train/train.csv; test "$MLOPS_DATA_TRAIN" = /mlops/data/train/train.csv; grep -q '"alpha":0.5' /mlops/params.json || grep -q '"alpha": 0.5' /mlops/params.json; test "$(id -u)" != 0; if touch /workspace/x 2>/dev/null; then exit 9; fi; echo model > $MLOPS_MODEL_DIR/m; ls /sys/class/net"#;
    let dir = busybox_project(cmd, "");
    let out = mlops(dir.path()).arg("train").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // No network by default: only the loopback interface exists.
    let err = stderr(&out);
    assert!(err.contains("[train] lo"), "{err}");
    assert!(!err.contains("[train] eth0"), "{err}");
    let run_id = latest_run(dir.path());
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".mlops/runs").join(&run_id).join("model/m"))
            .unwrap(),
        "model\n"
    );
    assert_no_containers(&run_id);
}

#[test]
fn a_project_the_step_user_cannot_read_is_refused_before_starting() {
    use std::os::unix::fs::PermissionsExt;
    let dir = busybox_project("echo never", "");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = mlops(dir.path()).arg("train").output().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = stderr(&out);
    // As root, steps run as nobody, who cannot enter a 0700 directory owned by root; as
    // another user, the owner can: then the step runs.
    if running_as_root() {
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("mode 700") && err.contains("chmod o+rx"),
            "{err}"
        );
        assert!(!err.contains("[train] never"), "{err}");
    } else {
        assert_eq!(out.status.code(), Some(0), "{err}");
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}

#[test]
fn failing_command_exits_1_with_the_last_lines() {
    let dir = busybox_project("echo preparing; echo boom >&2; exit 3", "");
    let out = mlops(dir.path()).arg("train").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("training failed with exit code 3"), "{err}");
    assert!(err.contains("| boom"), "{err}");
    let run_id = latest_run(dir.path());
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.path()
                .join(".mlops/runs")
                .join(&run_id)
                .join("run.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(record["steps"]["train"]["exit_code"], 3);
    assert_eq!(record["steps"]["train"]["outcome"], "failed");
    assert_no_containers(&run_id);
}

#[test]
fn timeout_kills_and_removes_the_container() {
    let dir = busybox_project("sleep 60", "  resources: {timeout: 2s}\n");
    let start = Instant::now();
    let out = mlops(dir.path()).arg("train").output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("training timed out"),
        "{}",
        stderr(&out)
    );
    assert_no_containers(&latest_run(dir.path()));
}

#[test]
fn out_of_memory_is_reported_as_such() {
    let dir = busybox_project(
        "head -c 300m /dev/zero | tail",
        "  resources: {memory: 32m}\n",
    );
    let out = mlops(dir.path()).arg("train").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("out of memory"), "{err}");
    assert_no_containers(&latest_run(dir.path()));
}

#[test]
fn missing_image_exits_2_naming_it() {
    let dir = busybox_project("true", "");
    let config = std::fs::read_to_string(dir.path().join("mlops.yaml"))
        .unwrap()
        .replace(
            "mlops-test/busybox",
            "127.0.0.1:5000/mlops-test/does-not-exist:1",
        );
    std::fs::write(dir.path().join("mlops.yaml"), config).unwrap();
    let out = mlops(dir.path()).arg("train").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "image 127.0.0.1:5000/mlops-test/does-not-exist:1 is not present and cannot be pulled"
        ),
        "{err}"
    );
}

#[test]
fn builds_the_training_image_from_a_dockerfile() {
    let dir = busybox_project("cat /built-by-mlops", "");
    std::fs::write(
        dir.path().join("train.Dockerfile"),
        "FROM mlops-test/busybox\nRUN echo built-here > /built-by-mlops\n",
    )
    .unwrap();
    let config = std::fs::read_to_string(dir.path().join("mlops.yaml"))
        .unwrap()
        .replace(
            "  image: mlops-test/busybox\n",
            "  build: {context: ., dockerfile: train.Dockerfile}\n",
        )
        .replace("evaluate:\n", "evaluate:\n  image: mlops-test/busybox\n");
    std::fs::write(dir.path().join("mlops.yaml"), config).unwrap();
    let out = mlops(dir.path()).arg("train").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("[train] built-here"),
        "{}",
        stderr(&out)
    );
    assert_no_containers(&latest_run(dir.path()));
}

#[test]
fn ctrl_c_removes_the_container() {
    interrupt_removes_the_container("-INT");
}

#[test]
fn sigterm_removes_the_container() {
    interrupt_removes_the_container("-TERM");
}

fn interrupt_removes_the_container(signal: &str) {
    let dir = busybox_project("echo started; sleep 60", "");
    let child = mlops(dir.path())
        .arg("train")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the container to exist.
    let deadline = Instant::now() + Duration::from_secs(30);
    let run_id = loop {
        assert!(Instant::now() < deadline, "the container never started");
        if let Ok(id) = std::fs::read_to_string(dir.path().join(".mlops/runs/latest")) {
            let id = id.trim().to_string();
            if !containers_with_label(&format!("dev.mlops.run={id}")).is_empty() {
                break id;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert_no_containers(&run_id);
}

#[test]
fn run_promotes_then_rejects_a_worse_challenger_against_the_champion() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("churn"), dir.path());
    let out = mlops(dir.path()).arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("PROMOTE"), "{}", stdout(&out));
    let first = latest_run(dir.path());
    // Pin the first run as the champion of staging (what `mlops promote` records).
    std::fs::create_dir_all(dir.path().join(".mlops/environments")).unwrap();
    let digest = format!("sha256:{}", "a".repeat(64));
    std::fs::write(
        dir.path().join(".mlops/environments/staging.yaml"),
        format!(
            "environment: staging\nmodel: churn\nimage: \"127.0.0.1:5000/acme/churn@{digest}\"\ndigest: \"{digest}\"\n\
             run_id: \"{first}\"\ngit_commit: \"\"\npromoted_at: \"2026-11-22T00:00:00Z\"\nmodel_dir: \".mlops/runs/{first}/model\"\n"
        ),
    )
    .unwrap();
    let out = mlops(dir.path())
        .args(["run", "--param", "C=0.001"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stopped at compare (reject)"),
        "{}",
        stderr(&out)
    );
    let second = latest_run(dir.path());
    let run = dir.path().join(".mlops/runs").join(&second);
    let compare: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("compare.json")).unwrap()).unwrap();
    assert_eq!(compare["verdict"], "reject");
    assert_eq!(compare["first_run"], false);
    assert!(
        compare["champion"]["f1"].as_f64().unwrap() > compare["challenger"]["f1"].as_f64().unwrap()
    );
    let failed: Vec<&serde_json::Value> = compare["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["metric"], "f1");
    assert_eq!(failed[0]["rule"], "min_absolute_change");
    // Significance ran on both predictions.csv files.
    assert!(
        compare["significance"]["mcnemar"]["champion_only"]
            .as_u64()
            .unwrap()
            > 0
    );
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("❌ churn: reject"), "{report}");
    assert!(report.contains("xychart-beta"));
    assert_no_containers(&second);
}

#[test]
fn the_regression_fixture_minimizes_its_error_metrics() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("regression"), dir.path());
    let out = mlops(dir.path()).args(["run"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let run = dir.path().join(".mlops/runs").join(latest_run(dir.path()));
    let compare: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("compare.json")).unwrap()).unwrap();
    assert_eq!(compare["verdict"], "promote");
    assert_eq!(compare["checks"][0]["metric"], "rmse");
    assert_eq!(compare["checks"][0]["direction"], "minimize");
    assert!(compare["challenger"]["rmse"].as_f64().unwrap() < 70.0);
    assert_no_containers(&latest_run(dir.path()));
}

#[test]
fn pulls_a_missing_image_from_the_registry() {
    let registry = std::env::var("MLOPS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into());
    let tag = format!("{registry}/mlops-test/busybox:pull-{}", std::process::id());
    let docker = |args: &[&str]| {
        let out = Command::new(DOCKER).args(args).output().unwrap();
        assert!(out.status.success(), "docker {args:?}: {}", stderr(&out));
    };
    docker(&["tag", "mlops-test/busybox", &tag]);
    docker(&["push", &tag]);
    docker(&["rmi", &tag]);
    let dir = busybox_project("echo pulled-and-ran", "");
    let config = std::fs::read_to_string(dir.path().join("mlops.yaml"))
        .unwrap()
        .replace("image: mlops-test/busybox", &format!("image: {tag}"));
    std::fs::write(dir.path().join("mlops.yaml"), config).unwrap();
    let out = mlops(dir.path()).arg("train").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("[train] pulling {tag}")), "{err}");
    assert!(err.contains("[train] pulled-and-ran"), "{err}");
    let _ = Command::new(DOCKER).args(["rmi", &tag]).output();
    assert_no_containers(&latest_run(dir.path()));
}
