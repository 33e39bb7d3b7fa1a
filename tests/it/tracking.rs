//! `tracking:` against a real MLflow tracking server (`scripts/services` starts it on
//! 127.0.0.1:5050, and MLflow's basic-auth app on 127.0.0.1:5051). Every check reads the server
//! with MLflow's own Python client, never with our code. Without the server these tests fail.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::{git, mlops, signed_churn_project, signed_run, stderr, stdout};

const PASSWORD: &str = "tracking-test-password";

fn mlflow_uri() -> String {
    std::env::var("MLOPS_TEST_MLFLOW_URI").unwrap_or_else(|_| "http://127.0.0.1:5050".into())
}

fn mlflow_auth_uri() -> String {
    std::env::var("MLOPS_TEST_MLFLOW_AUTH_URI").unwrap_or_else(|_| "http://127.0.0.1:5051".into())
}

/// The python of the venv holding MLflow's client (`scripts/services` creates it).
fn mlflow_python() -> String {
    std::env::var("MLOPS_TEST_MLFLOW_PYTHON")
        .unwrap_or_else(|_| "/var/cache/mlops-test/mlflow-venv/bin/python".into())
}

/// Fails (never skips) when the server is not there.
fn require_server(uri: &str) {
    let out = std::process::Command::new(mlflow_python())
        .args([
            "-c",
            "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/health', timeout=5)",
            uri,
        ])
        .output()
        .unwrap_or_else(|e| panic!("no MLflow python at {} ({e}): run scripts/services", mlflow_python()));
    assert!(
        out.status.success(),
        "no MLflow tracking server at {uri}: run scripts/services ({})",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `script` with MLflow's Python client against `uri`; `args` arrive as sys.argv[1:];
/// the script prints one JSON value.
fn ask_mlflow(script: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new(mlflow_python())
        .arg("-c")
        .arg(format!(
            "import json, sys, mlflow\nfrom mlflow import MlflowClient\nc = MlflowClient()\n{script}"
        ))
        .args(args)
        .env("MLFLOW_TRACKING_URI", mlflow_uri())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "MLflow's client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A name no other test (or earlier run of this one) uses on the shared server.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    )
}

/// The signed churn project tracking into `uri`, registered model `model`, experiment
/// `model` too; staging deploys with the command target (no container, no port).
fn project(dir: &Path, model: &str, tracking: &str) {
    signed_churn_project(
        dir,
        "tracking-test",
        PASSWORD,
        &[
            ("model: churn\n", &format!("model: {model}\n")),
            (
                "threshold: 0.80, min_absolute_change: 0.005",
                "threshold: 0.80, max_regression: 0.5",
            ),
            (
                "threshold: 0.90, max_regression: 0.01",
                "threshold: 0.90, max_regression: 0.5",
            ),
            (
                "staging: {deploy: {target: docker, port: 18080, health: /health}}",
                "staging: {deploy: {target: command, command: [sh, -c, 'true']}}",
            ),
            ("\nforge:", &format!("\ntracking: {tracking}\nforge:")),
        ],
    );
}

fn latest_run(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(".mlops/runs/latest"))
        .unwrap()
        .trim()
        .to_string()
}

fn run_json(dir: &Path, run: &str, file: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!(".mlops/runs/{run}/{file}"))).unwrap(),
    )
    .unwrap()
}

/// What MLflow holds for the mlops run `run_id` in experiment `exp`.
fn mlflow_run(exp: &str, run_id: &str) -> Value {
    ask_mlflow(
        r#"
e = c.get_experiment_by_name(sys.argv[1])
runs = c.search_runs([e.experiment_id], filter_string="tags.`mlops.run_id` = '%s'" % sys.argv[2])
r = runs[0]
out = {
    "count": len(runs), "status": r.info.status, "name": r.info.run_name,
    "end_time": r.info.end_time, "params": r.data.params, "metrics": r.data.metrics,
    "tags": r.data.tags,
    "f1_history": len(c.get_metric_history(r.info.run_id, "f1")),
    "datasets": [{"name": d.dataset.name, "digest": d.dataset.digest,
                  "profile": json.loads(d.dataset.profile), "schema": json.loads(d.dataset.schema),
                  "tags": {t.key: t.value for t in d.tags}} for d in r.inputs.dataset_inputs],
    "artifacts": sorted(a.path for a in c.list_artifacts(r.info.run_id)),
    "metrics_json": json.load(open(c.download_artifacts(r.info.run_id, "metrics.json"))),
}
print(json.dumps(out))
"#,
        &[exp, run_id],
    )
}

/// The version of registered model `model` whose tag `mlops.digest` is `digest`, and the
/// version alias `alias` resolves to.
fn versions(model: &str, digest: &str, alias: &str) -> Value {
    ask_mlflow(
        r#"
vs = c.search_model_versions("name = '%s'" % sys.argv[1])
mine = [v for v in vs if v.tags.get("mlops.digest") == sys.argv[2]]
try:
    aliased = c.get_model_version_by_alias(sys.argv[1], sys.argv[3]).version
except Exception:
    aliased = None
print(json.dumps({"count": len(mine), "version": mine[0].version if mine else None,
                  "source": mine[0].source if mine else None,
                  "tags": mine[0].tags if mine else {}, "alias": aliased}))
"#,
        &[model, digest, alias],
    )
}

fn deploy_staging(dir: &Path, branch: &str) {
    git(dir, &["merge", "-q", "--no-ff", "-m", "merge", branch]);
    let out = mlops(dir).args(["deploy", "staging"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn promote(dir: &Path, args: &[&str]) -> String {
    let out = mlops(dir)
        .args(["promote", "staging", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["proposal"]["branch"].as_str().unwrap().to_string()
}

fn signed(dir: &Path, args: &[&str]) -> Output {
    mlops(dir)
        .args(args)
        .env("MLOPS_SIGNING_PASSWORD", PASSWORD)
        .env(
            "MLOPS_SIGNING_KEY",
            std::fs::read_to_string(dir.join("cosign.key")).unwrap(),
        )
        .output()
        .unwrap()
}

/// One `mlops run` is one MLflow run with the params, the metrics of both models, the commit,
/// the datasets and the artifacts; evaluate again updates it; each packaged digest is a
/// version of the registered model; `staging` follows deploys and rollbacks.
#[test]
fn runs_versions_and_aliases_are_in_mlflow() {
    require_server(&mlflow_uri());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = unique("trk");
    project(
        dir,
        &model,
        &format!("{{type: mlflow, uri: \"{}\"}}", mlflow_uri()),
    );
    let out = signed_run(dir, PASSWORD);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first = latest_run(dir);
    let record = run_json(dir, &first, "run.json");
    assert!(
        stderr(&out).contains(&format!(
            "tracking: run {first} at {}/#/experiments/",
            mlflow_uri()
        )),
        "{}",
        stderr(&out)
    );

    let r = mlflow_run(&model, &first);
    assert_eq!(r["count"], 1, "{r:#}");
    assert_eq!(r["status"], "FINISHED");
    assert_eq!(r["name"], first.as_str());
    assert_eq!(r["params"]["C"], "1.0");
    assert_eq!(r["params"]["max_iter"], "200");
    let f1 = r["metrics"]["f1"].as_f64().unwrap();
    assert!(f1 > 0.8, "{r:#}");
    assert!(r["metrics"]["roc_auc"].as_f64().is_some());
    assert_eq!(
        r["tags"]["mlflow.source.git.commit"],
        git(dir, &["rev-parse", "HEAD"]).as_str()
    );
    assert_eq!(r["tags"]["mlops.run_id"], first.as_str());
    assert_eq!(r["tags"]["mlops.verdict"], "promote");
    assert!(r["tags"]["mlflow.note.content"]
        .as_str()
        .unwrap()
        .contains(&model));
    let datasets = r["datasets"].as_array().unwrap();
    assert_eq!(datasets.len(), 2, "{r:#}");
    for d in datasets {
        let name = if d["tags"]["mlflow.data.context"] == "training" {
            "train"
        } else {
            "test"
        };
        let digest = record["data"][name]["digest"].as_str().unwrap();
        assert_eq!(d["tags"]["mlops.digest"], digest, "{d:#}");
        assert!(digest.contains(d["digest"].as_str().unwrap()), "{d:#}");
        assert_eq!(d["profile"]["digest"], digest);
        assert!(d["profile"]["num_rows"].as_u64().unwrap() > 100);
        assert!(d["schema"]["mlflow_colspec"].as_array().unwrap().len() > 3);
    }
    for file in [
        "compare.json",
        "metrics.json",
        "predictions.csv",
        "report.md",
        "run.json",
    ] {
        assert!(
            r["artifacts"].as_array().unwrap().iter().any(|a| a == file),
            "{file}: {r:#}"
        );
    }
    let local = run_json(dir, &first, "eval/challenger/metrics.json");
    assert_eq!(r["metrics_json"], local);

    // A second evaluate updates the same run.
    let out = mlops(dir).args(["evaluate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again = mlflow_run(&model, &first);
    assert_eq!(again["count"], 1, "{again:#}");
    assert_eq!(again["f1_history"], 2, "{again:#}");
    assert!(again["end_time"].as_i64() >= r["end_time"].as_i64());

    // The packaged digest is a version, tagged with the verdict and the signature.
    let first_digest = run_json(dir, &first, "package.json")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let v1 = versions(&model, &first_digest, "staging");
    assert_eq!(v1["count"], 1, "{v1:#}");
    assert!(
        v1["source"].as_str().unwrap().ends_with(&first_digest),
        "{v1:#}"
    );
    assert_eq!(v1["tags"]["mlops.verdict"], "promote");
    assert!(
        v1["tags"]["mlops.signature"]
            .as_str()
            .unwrap()
            .ends_with(".sig"),
        "{v1:#}"
    );
    assert_eq!(v1["alias"], Value::Null);

    // Deployed to staging: the alias resolves to it.
    let branch = promote(dir, &["--run", &first]);
    deploy_staging(dir, &branch);
    assert_eq!(
        versions(&model, &first_digest, "staging")["alias"],
        v1["version"]
    );

    // A second run sees a champion; its digest becomes staging; a rollback moves it back.
    let out = signed(dir, &["run", "--param", "C=0.5"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let second = latest_run(dir);
    let r2 = mlflow_run(&model, &second);
    assert!(r2["metrics"]["champion.f1"].as_f64().is_some(), "{r2:#}");
    assert_eq!(r2["params"]["C"], "0.5");
    let second_digest = run_json(dir, &second, "package.json")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let branch = promote(dir, &["--run", &second]);
    deploy_staging(dir, &branch);
    let v2 = versions(&model, &second_digest, "staging");
    assert_ne!(v2["version"], v1["version"]);
    assert_eq!(v2["alias"], v2["version"]);
    let branch = promote(dir, &["--digest", &first_digest]);
    deploy_staging(dir, &branch);
    assert_eq!(
        versions(&model, &first_digest, "staging")["alias"],
        v1["version"]
    );
}

/// A project whose tracking server is `uri`, trained once with `env`.
fn train_with(uri: &str, required: bool, env: &[(&str, &str)]) -> (Output, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = unique("trk");
    project(
        dir,
        &model,
        &format!("{{type: mlflow, uri: \"{uri}\", required: {required}}}"),
    );
    let mut cmd = mlops(dir);
    cmd.arg("train");
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.output().unwrap(), tmp)
}

/// A stopped server: a warning naming its URL and the step goes on; with `required: true`,
/// exit 2.
#[test]
fn a_stopped_server_is_a_warning_unless_tracking_is_required() {
    // Nothing listens on the discard port of loopback.
    let uri = "http://127.0.0.1:9";
    let (out, _keep) = train_with(uri, false, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("tracking: the train step is not in MLflow"),
        "{err}"
    );
    assert!(
        err.contains("MLflow at http://127.0.0.1:9/") && err.contains("unreachable"),
        "{err}"
    );
    assert!(!stdout(&out).trim().is_empty());
    let (out, _keep) = train_with(uri, true, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("tracking.required is true") && err.contains("127.0.0.1:9"),
        "{err}"
    );
}

/// A refused token: a clear error naming MLFLOW_TRACKING_TOKEN, the token itself never
/// printed; the right basic-auth credentials get in.
#[test]
fn a_wrong_token_names_the_variable_and_is_never_printed() {
    let uri = mlflow_auth_uri();
    require_server(&uri);
    let token = "tok-3f9a7c1e-never-print-me";
    let (out, _keep) = train_with(&uri, true, &[("MLFLOW_TRACKING_TOKEN", token)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("MLFLOW_TRACKING_TOKEN") && err.contains("401"),
        "{err}"
    );
    assert!(
        !err.contains(token) && !stdout(&out).contains(token),
        "{err}"
    );
    let (out, _keep) = train_with(&uri, false, &[("MLFLOW_TRACKING_TOKEN", token)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("MLFLOW_TRACKING_TOKEN"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(token));
    // The admin scripts/services creates on the basic-auth server.
    let (out, _keep) = train_with(
        &uri,
        true,
        &[
            ("MLFLOW_TRACKING_USERNAME", "admin"),
            ("MLFLOW_TRACKING_PASSWORD", &admin_password()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("tracking: run "), "{}", stderr(&out));
}

/// The admin password of the basic-auth server (`MLOPS_MLFLOW_ADMIN_PASSWORD` of scripts/services).
fn admin_password() -> String {
    std::env::var("MLOPS_TEST_MLFLOW_ADMIN_PASSWORD")
        .unwrap_or_else(|_| "mlops-test-admin-password".into())
}

/// Ctrl-C during training: the container goes (exit 130) and the MLflow run says KILLED.
#[test]
fn an_interrupted_step_is_killed_in_mlflow() {
    use std::time::{Duration, Instant};
    require_server(&mlflow_uri());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let model = unique("trk");
    project(
        dir,
        &model,
        &format!("{{type: mlflow, uri: \"{}\"}}", mlflow_uri()),
    );
    let yaml = std::fs::read_to_string(dir.join("mlops.yaml"))
        .unwrap()
        .replace(
            "command: [python3, train.py]",
            "command: [sh, -c, 'sleep 60']",
        );
    std::fs::write(dir.join("mlops.yaml"), yaml).unwrap();
    let child = mlops(dir)
        .arg("train")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let run_id = loop {
        assert!(
            Instant::now() < deadline,
            "the training container never started"
        );
        if let Ok(id) = std::fs::read_to_string(dir.join(".mlops/runs/latest")) {
            let id = id.trim().to_string();
            let ps = std::process::Command::new("/usr/bin/docker")
                .args(["ps", "-q", "--filter", &format!("label=dev.mlops.run={id}")])
                .output()
                .unwrap();
            if !stdout(&ps).trim().is_empty() {
                break id;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(500));
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let status = ask_mlflow(
        r#"
e = c.get_experiment_by_name(sys.argv[1])
runs = c.search_runs([e.experiment_id], filter_string="tags.`mlops.run_id` = '%s'" % sys.argv[2])
print(json.dumps([r.info.status for r in runs]))
"#,
        &[&model, &run_id],
    );
    assert_eq!(status, serde_json::json!(["KILLED"]), "{}", stderr(&out));
}
