//! A project written by `mlops init` works as it is: the config names the repository's
//! registry path, the key stays out of git, and the Dockerfiles build here from the local base
//! images given as build arguments (never by editing the generated files); the serving image
//! answers /health and /predict and captures what it served.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{git, mlops, registry, stderr, stdout};

const REF: &str = "mlops-dev/mlops@0123456789abcdef0123456789abcdef01234567";
/// What a test passes instead of python:3.12-slim + pip (no internet here).
const LOCAL_BUILD_ARGS: &str = "PYTHON_IMAGE=mlops-test/python-sklearn PIP_INSTALL=0";

fn init(dir: &Path, github_repository: Option<&str>, extra: &[&str]) -> Output {
    let mut cmd = mlops(dir);
    cmd.args(["init", "--example", "--actions-ref", REF])
        .args(extra);
    if let Some(r) = github_repository {
        cmd.env("GITHUB_REPOSITORY", r);
    }
    cmd.output().unwrap()
}

fn config(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("mlops.yaml")).unwrap()
}

#[test]
fn the_package_repository_comes_from_github_repository_or_the_origin_remote() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("churn");
    std::fs::create_dir(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    let out = init(&dir, Some("Acme/Churn"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let yaml = config(&dir);
    assert!(
        yaml.contains("  repository: ghcr.io/acme/churn\n"),
        "{yaml}"
    );
    assert!(yaml.contains("  public_key: cosign.pub\n"), "{yaml}");
    assert!(yaml.contains("  dockerfile: serve.Dockerfile\n"), "{yaml}");
    assert!(
        !yaml.contains("mlops-test/") && !yaml.contains("127.0.0.1"),
        "{yaml}"
    );
    // The closing message names the secrets exactly.
    let said = stderr(&out);
    for secret in ["MLOPS_SIGNING_KEY ", "MLOPS_SIGNING_PASSWORD "] {
        assert!(said.contains(secret), "{said}");
    }
    assert!(said.contains("log in with GITHUB_TOKEN"), "{said}");
    // The workflows log in to ghcr.io with the job's token.
    let ci = std::fs::read_to_string(dir.join(".github/workflows/mlops-ci.yml")).unwrap();
    assert!(ci.contains("MLOPS_REGISTRY: ghcr.io"), "{ci}");
    assert!(
        ci.contains("registry-username: ${{ github.actor }}"),
        "{ci}"
    );
    assert!(
        ci.contains("registry-password: ${{ secrets.GITHUB_TOKEN }}"),
        "{ci}"
    );

    // No GITHUB_REPOSITORY: the origin remote, lowercased.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    git(&other, &["init", "-q", "-b", "main"]);
    git(
        &other,
        &[
            "remote",
            "add",
            "origin",
            "git@github.com:Acme/Churn-Model.git",
        ],
    );
    let out = init(&other, None, &["--registry", "registry.example:5000"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        config(&other).contains("  repository: registry.example:5000/acme/churn-model\n"),
        "{}",
        config(&other)
    );
    let said = stderr(&out);
    assert!(
        said.contains("MLOPS_REGISTRY_PASSWORD") && said.contains("MLOPS_REGISTRY_USER"),
        "{said}"
    );
    let ci = std::fs::read_to_string(other.join(".github/workflows/mlops-ci.yml")).unwrap();
    assert!(
        ci.contains("registry-password: ${{ secrets.MLOPS_REGISTRY_PASSWORD }}"),
        "{ci}"
    );

    // A registry with a path is refused: the path is the repository's.
    let bad = init(&other, None, &["--registry", "ghcr.io/acme", "--force"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("--registry"), "{}", stderr(&bad));
}

#[test]
fn an_initialised_example_builds_here_trains_packages_and_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("churn");
    std::fs::create_dir(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let name = format!("acme/Init-{}-{millis}", std::process::id());
    let out = init(&dir, Some(&name), &["--registry", &registry()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let repository = format!("{}/{}", registry(), name.to_ascii_lowercase());
    assert!(config(&dir).contains(&format!("  repository: {repository}\n")));

    let keys = mlops(&dir)
        .args(["sign", "--generate-key", "cosign"])
        .env("MLOPS_SIGNING_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(keys.status.success(), "{}", stderr(&keys));
    let status = git(&dir, &["status", "--porcelain", "--untracked-files=all"]);
    assert!(!status.contains("cosign.key"), "{status}");
    assert!(status.contains("cosign.pub"), "{status}");
    let v = mlops(&dir).arg("validate").output().unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    git(&dir, &["add", "-A"]);
    git(
        &dir,
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@x.invalid",
            "commit",
            "-qm",
            "init",
        ],
    );

    let run = mlops(&dir)
        .arg("run")
        .env("MLOPS_BUILD_ARGS", LOCAL_BUILD_ARGS)
        .env("MLOPS_SIGNING_PASSWORD", "pw")
        .env(
            "MLOPS_SIGNING_KEY",
            std::fs::read_to_string(dir.join("cosign.key")).unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&run),
        stderr(&run)
    );
    let run_id = std::fs::read_to_string(dir.join(".mlops/runs/latest")).unwrap();
    let run_dir = dir.join(".mlops/runs").join(run_id.trim());
    let packaged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("package.json")).unwrap()).unwrap();
    let base = packaged["base_image"].as_str().unwrap();
    assert!(
        base.starts_with(&format!("{repository}:serve-")),
        "{packaged}"
    );
    let image = packaged["reference"].as_str().unwrap().to_string();
    serve_and_capture(tmp.path(), &image);
}

/// Runs the packaged image as a deploy would, asks /health and /predict, and reads the capture.
fn serve_and_capture(tmp: &Path, image: &str) {
    let capture = tmp.join("capture");
    std::fs::create_dir(&capture).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let docker = |args: &[&str]| Command::new("/usr/bin/docker").args(args).output().unwrap();
    let name = format!("mlops-init-test-{}-{port}", std::process::id());
    let started = docker(&[
        "run",
        "-d",
        "--rm",
        "--name",
        &name,
        "-p",
        &format!("127.0.0.1:{port}:8080"),
        "-e",
        "MLOPS_CAPTURE_DIR=/mlops/capture",
        "-e",
        "MLOPS_DIGEST=sha256:test",
        "-v",
        &format!("{}:/mlops/capture", capture.display()),
        image,
    ]);
    assert!(started.status.success(), "{}", stderr(&started));
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args(["-s", "--max-time", "5"])
            .args(args)
            .output()
            .unwrap()
    };
    let health_url = format!("http://127.0.0.1:{port}/health");
    let mut healthy = false;
    for _ in 0..60 {
        if curl(&["-f", &health_url]).status.success() {
            healthy = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let row = std::fs::read_to_string(crate::common::fixture("churn/data/test.csv")).unwrap();
    let mut lines = row.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let values: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut instance = serde_json::Map::new();
    for (h, v) in header.iter().zip(values) {
        if *h != "label" {
            let value = v
                .parse::<f64>()
                .map(serde_json::Value::from)
                .unwrap_or_else(|_| v.into());
            instance.insert(h.to_string(), value);
        }
    }
    let body = serde_json::json!({"instances": [instance]}).to_string();
    let predicted = curl(&[
        "-f",
        "-X",
        "POST",
        "-d",
        &body,
        &format!("http://127.0.0.1:{port}/predict"),
    ]);
    let logs = docker(&["logs", &name]);
    docker(&["rm", "-f", &name]);
    assert!(healthy, "no /health: {}", stderr(&logs));
    assert!(predicted.status.success(), "{}", stderr(&logs));
    let answer: serde_json::Value = serde_json::from_slice(&predicted.stdout).unwrap();
    assert_eq!(
        answer["predictions"].as_array().unwrap().len(),
        1,
        "{answer}"
    );
    let files: Vec<_> = std::fs::read_dir(&capture)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(record["digest"], "sha256:test", "{record}");
    assert_eq!(record["status"], "ok", "{record}");
    assert_eq!(record["prediction"], answer["predictions"][0], "{record}");
    assert!(
        record["latency_ms"].is_number() && record["time"].is_string(),
        "{record}"
    );
}
