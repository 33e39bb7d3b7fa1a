//! `mlops promote` with the local forge and `mlops deploy` to the local engine, on a real git
//! repository, after a real `mlops run` (train, evaluate, compare, package to the local
//! registry, sign): promote → merge → deploy → the container answers. Named scenarios, each on
//! a copy of one prepared run; those that run the staging container take turns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde_json::Value;

use crate::common::{copy_dir, git, mlops, signed_churn_project, signed_run, stderr, stdout};

const PASSWORD: &str = "promote-test-password";

/// Removes the containers of one deployment (`<model>/<env>`) however the test ends.
struct Deployment(&'static str);
impl Drop for Deployment {
    fn drop(&mut self) {
        let ids = Command::new("/usr/bin/docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=dev.mlops.deployment={}", self.0))
            .output()
            .map(|o| stdout(&o))
            .unwrap_or_default();
        for id in ids.split_whitespace() {
            let _ = Command::new("/usr/bin/docker")
                .args(["rm", "-f", id])
                .output();
        }
    }
}

/// Polls `ready` every 100 ms for up to `secs` seconds; false when it never became true.
fn eventually(secs: u64, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if ready() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Merges `branch` with a merge commit, as a reviewer merging the pull request would.
fn merge(dir: &Path, message: &str, branch: &str) {
    git(dir, &["merge", "-q", "--no-ff", "-m", message, branch]);
}

fn health(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(b"GET /health HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The digest the staging container was started from.
fn running_digest() -> String {
    let out = Command::new("/usr/bin/docker")
        .args([
            "inspect",
            "-f",
            "{{index .Config.Labels \"dev.mlops.digest\"}}",
            "mlops-churn-staging",
        ])
        .output()
        .unwrap();
    stdout(&out).trim().to_string()
}

fn promote(dir: &Path, env: &str, run: &str) -> Output {
    mlops(dir)
        .args(["promote", env, "--run", run, "--format", "json"])
        .output()
        .unwrap()
}

/// The signed churn project after one `mlops run` the gate said to promote, built once for
/// every scenario of this module (under cargo's temporary directory for tests); each scenario
/// works on a copy. Staging deploys with the docker target on `port`; `canary` and `broken`
/// with the command target.
struct Prepared {
    dir: PathBuf,
    repo: String,
    run_id: String,
    digest: String,
    port: u16,
}

fn prepared() -> &'static Prepared {
    static PREPARED: OnceLock<Prepared> = OnceLock::new();
    PREPARED.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("promote-scenarios");
        let _ = std::fs::remove_dir_all(&dir);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let repo = signed_churn_project(
            &dir,
            "promote-test",
            PASSWORD,
            &[
                ("port: 18080", &format!("port: {port}")),
                (
                    "\nforge:",
                    "\n  canary: {deploy: {target: command, command: [sh, -c, 'echo \"$MLOPS_DEPLOY_ENVIRONMENT $MLOPS_DEPLOY_IMAGE\" >> deployed.txt']}}\n  \
                     broken: {deploy: {target: command, command: [sh, -c, 'exit 4']}}\nforge:",
                ),
            ],
        );
        let run = signed_run(&dir, PASSWORD);
        assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
        assert!(stderr(&run).contains("sign ok"), "{}", stderr(&run));
        let run_id = std::fs::read_to_string(dir.join(".mlops/runs/latest"))
            .unwrap()
            .trim()
            .to_string();
        let packaged: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!(".mlops/runs/{run_id}/package.json")))
                .unwrap(),
        )
        .unwrap();
        let digest = packaged["digest"].as_str().unwrap().to_string();
        Prepared {
            dir,
            repo,
            run_id,
            digest,
            port,
        }
    })
}

/// One scenario's copy of the prepared project.
struct Scenario {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    repo: String,
    run_id: String,
    digest: String,
    port: u16,
}

fn scenario() -> Scenario {
    let p = prepared();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("churn");
    copy_dir(&p.dir, &dir);
    Scenario {
        _tmp: tmp,
        dir,
        repo: p.repo.clone(),
        run_id: p.run_id.clone(),
        digest: p.digest.clone(),
        port: p.port,
    }
}

impl Scenario {
    fn promote(&self, env: &str) -> Output {
        promote(&self.dir, env, &self.run_id)
    }

    fn deploy(&self, env: &str) -> Output {
        mlops(&self.dir)
            .args(["deploy", env, "--format", "json"])
            .output()
            .unwrap()
    }

    /// The run proposed to staging and the proposal merged, as a reviewer would.
    fn merge_staging(&self) {
        let out = self.promote("staging");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        merge(
            &self.dir,
            "Merge pull request #7 from acme/mlops/promote/churn/staging",
            "mlops/promote/churn/staging",
        );
    }

    /// Merged staging deployed: the run's digest serves on the environment's port.
    fn deploy_staging(&self) {
        self.merge_staging();
        let out = self.deploy("staging");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(running_digest(), self.digest);
    }

    /// A second training run (another digest to package).
    fn retrain(&self) {
        let out = mlops(&self.dir)
            .args(["train", "--param", "C=0.7"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }

    /// A new digest pinned by hand in staging (any signed image: deploy trusts the
    /// signature, not the path it came by), after `extra_yaml` is applied to mlops.yaml.
    fn pin_new(&self, extra_yaml: Option<(&str, &str)>) -> String {
        let dir = &self.dir;
        if let Some((from, to)) = extra_yaml {
            let y = std::fs::read_to_string(dir.join("mlops.yaml"))
                .unwrap()
                .replace(from, to);
            std::fs::write(dir.join("mlops.yaml"), y).unwrap();
        }
        let key = std::fs::read_to_string(dir.join("cosign.key")).unwrap();
        let out = mlops(dir)
            .args(["package", "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let p: Value = serde_json::from_slice(&out.stdout).unwrap();
        let out = mlops(dir)
            .args(["sign", p["reference"].as_str().unwrap(), "--no-attest"])
            .env("MLOPS_SIGNING_PASSWORD", PASSWORD)
            .env("MLOPS_SIGNING_KEY", key)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let new_digest = p["digest"].as_str().unwrap().to_string();
        let env_file = dir.join(".mlops/environments/staging.yaml");
        let text = std::fs::read_to_string(&env_file).unwrap();
        let current = text
            .lines()
            .find_map(|l| l.strip_prefix("digest: "))
            .unwrap()
            .trim_matches('"')
            .to_string();
        std::fs::write(&env_file, text.replace(&current, &new_digest)).unwrap();
        git(dir, &["commit", "-qam", "pin by hand"]);
        new_digest
    }

    /// The signing password never lands in a file, a commit, a proposal or a log.
    fn assert_password_nowhere(&self) {
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    assert!(
                        !bytes
                            .windows(PASSWORD.len())
                            .any(|w| w == PASSWORD.as_bytes()),
                        "the signing password is in {}",
                        path.display()
                    );
                }
            }
        }
        let history = git(&self.dir, &["log", "--all", "-p"]);
        assert!(!history.contains(PASSWORD));
    }
}

/// Scenarios that run the staging container (one name, one port) take turns; the container
/// goes when the scenario ends, however it ends (fields drop in order: containers, then the
/// turn).
pub(crate) struct StagingContainer {
    _cleanup: Deployment,
    _turn: MutexGuard<'static, ()>,
}

pub(crate) fn staging_container() -> StagingContainer {
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Whatever an interrupted earlier test left behind.
    drop(Deployment("churn/staging"));
    StagingContainer {
        _cleanup: Deployment("churn/staging"),
        _turn: turn,
    }
}

/// production requires staging: refused while staging never had the digest.
#[test]
fn production_is_refused_until_staging_had_the_digest() {
    let s = scenario();
    let out = s.promote("production");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("production requires staging"),
        "{}",
        stderr(&out)
    );
    s.assert_password_nowhere();
}

/// Staging: one commit on mlops/promote/churn/staging, the working tree untouched; again,
/// nothing new; a reviewer's commit on the branch is never overwritten; merged, staging has
/// it and says through which pull request.
#[test]
fn staging_gets_one_branch_that_a_reviewers_commit_is_never_overwritten_on() {
    let s = scenario();
    let (dir, run_id, digest, repo) = (&s.dir, &s.run_id, &s.digest, &s.repo);
    let out = s.promote("staging");
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
    let out = s.promote("staging");
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
    let out = s.promote("staging");
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

    // The reviewer merges: staging has it.
    merge(
        dir,
        &format!("Merge pull request #7 from acme/{fresh}"),
        &fresh,
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
    assert_eq!(status["environments"][0]["merged_by"]["pull_request"], 7);
    let human = mlops(dir).arg("status").output().unwrap();
    assert!(
        stdout(&human).contains("via pull request #7"),
        "{}",
        stdout(&human)
    );
    let out = s.promote("staging");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already has this content"),
        "{}",
        stderr(&out)
    );
    s.assert_password_nowhere();
}

/// Merged, so deploy: the signed digest runs and answers on the environment's port; the same
/// digest again changes nothing; a new digest replaces the running version once healthy.
#[test]
fn deploy_runs_the_merged_digest_and_replaces_it_once_the_next_is_healthy() {
    let _staging = staging_container();
    let s = scenario();
    let (digest, repo, port) = (&s.digest, &s.repo, s.port);
    s.merge_staging();
    let out = s.deploy("staging");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let deployed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(deployed["action"], "deployed");
    assert_eq!(deployed["digest"], digest.as_str());
    let answer = health(port).expect("the deployed model answers");
    assert!(
        answer.starts_with("HTTP/1.0 200") && answer.contains("\"status\": \"ok\""),
        "{answer}"
    );
    let labels = Command::new("/usr/bin/docker")
        .args([
            "inspect",
            "-f",
            "{{index .Config.Labels \"dev.mlops.digest\"}} {{.Config.Image}}",
            "mlops-churn-staging",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&labels).trim(), format!("{digest} {repo}@{digest}"));
    // The same digest again: nothing to do, the same container keeps running.
    let out = s.deploy("staging");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["action"], "unchanged");

    // A new digest pinned by hand replaces the running version once it is healthy.
    s.retrain();
    let second = s.pin_new(None);
    assert_ne!(&second, digest);
    let out = s.deploy("staging");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let replaced: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(replaced["action"], "deployed");
    assert_eq!(
        replaced["replaced"].as_array().unwrap().len(),
        1,
        "{replaced:#}"
    );
    assert!(health(port).is_some_and(|a| a.starts_with("HTTP/1.0 200")));
    let running = Command::new("/usr/bin/docker")
        .args([
            "ps",
            "-q",
            "--filter",
            "label=dev.mlops.deployment=churn/staging",
        ])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&running).lines().count(),
        1,
        "exactly one version runs"
    );
    assert_eq!(running_digest(), second);
    s.assert_password_nowhere();
}

/// Rollback: the first digest again, found in staging's history by a prefix, re-verified and
/// proposed like any promotion; a digest never pinned anywhere is refused; merged, history
/// calls it a rollback.
#[test]
fn rollback_proposes_an_earlier_digest_found_by_its_prefix() {
    let s = scenario();
    let (dir, digest, run_id) = (&s.dir, &s.digest, &s.run_id);
    s.merge_staging();
    s.retrain();
    let second = s.pin_new(None);
    assert_ne!(&second, digest);
    let out = mlops(dir)
        .args(["promote", "staging", "--format", "json", "--digest"])
        .arg(&digest[..19])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rollback: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rollback["state"]["digest"], digest.as_str());
    assert_eq!(rollback["state"]["run_id"], run_id.as_str());
    let rb_branch = rollback["proposal"]["branch"].as_str().unwrap().to_string();
    let subject = git(dir, &["log", "-1", "--format=%s", &rb_branch]);
    assert!(subject.starts_with("Roll back staging"), "{subject}");
    let out = mlops(dir)
        .args(["promote", "staging", "--digest", "sha256:0123456789abcdef"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("never pinned"), "{}", stderr(&out));
    // Merged, history calls it a rollback.
    merge(dir, "merge rollback", &rb_branch);
    let out = mlops(dir)
        .args(["history", "staging", "--format", "json"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("\"rollback\""), "{}", stdout(&out));
    // A retrain whose gate said promote but whose image is the one people rolled back out
    // (`second`, packaged from the latest run) is refused (exit 1); named, it is proposed.
    let latest = std::fs::read_to_string(dir.join(".mlops/runs/latest")).unwrap();
    let run_dir = dir.join(".mlops/runs").join(latest.trim());
    std::fs::write(run_dir.join("compare.json"), r#"{"verdict": "promote"}"#).unwrap();
    let out = mlops(dir).args(["promote", "staging"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{second} was rolled back out of staging")),
        "{}",
        stderr(&out)
    );
    let out = mlops(dir)
        .args(["promote", "staging", "--digest", &second])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    s.assert_password_nowhere();
}

/// A version that never becomes healthy never replaces the running one (exit 1); SIGTERM
/// while the new version is being probed removes the probe, exits 130, and leaves the running
/// version untouched.
#[test]
fn an_unhealthy_or_interrupted_deploy_leaves_the_running_version_serving() {
    let _staging = staging_container();
    let s = scenario();
    let (dir, port) = (&s.dir, s.port);
    s.deploy_staging();
    let running = s.digest.clone();
    let broken = s.pin_new(Some((
        "command: [python3, /app/serve.py]",
        "command: [python3, -c, 'import sys; sys.exit(3)']",
    )));
    let out = mlops(dir)
        .args(["deploy", "staging", "--health-timeout", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{broken} failed its health check")),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("the running version keeps serving"),
        "{}",
        stderr(&out)
    );
    assert_eq!(running_digest(), running);
    assert!(health(port).is_some_and(|a| a.starts_with("HTTP/1.0 200")));

    // SIGTERM while the new version is being probed.
    let mut child = mlops(dir)
        .args(["deploy", "staging", "--health-timeout", "60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let probing = |all: bool| {
        let mut args = vec!["ps", "-q", "--filter", "name=mlops-churn-staging-probe"];
        if all {
            args.insert(1, "-a");
        }
        let o = Command::new("/usr/bin/docker")
            .args(&args)
            .output()
            .unwrap();
        !stdout(&o).trim().is_empty()
    };
    assert!(eventually(30, || probing(true)), "the probe never started");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(!probing(true), "no probe container is left behind");
    assert_eq!(running_digest(), running);
    assert!(health(port).is_some_and(|a| a.starts_with("HTTP/1.0 200")));
    s.assert_password_nowhere();
}

/// Once staging has the digest, production may take it; production is kubernetes: merged,
/// deploy renders the manifests Argo CD or Flux syncs, pinned by digest and valid against the
/// Kubernetes schemas; rendering the same digest again changes nothing.
#[test]
fn production_takes_what_staging_had_as_kubernetes_manifests() {
    let s = scenario();
    let (dir, digest, repo) = (&s.dir, &s.digest, &s.repo);
    s.merge_staging();
    let out = s.promote("production");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        result["proposal"]["branch"],
        "mlops/promote/churn/production"
    );
    merge(dir, "merge production", "mlops/promote/churn/production");
    let out = s.deploy("production");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rendered = dir.join("deploy/production/deployment.yaml");
    let manifests = std::fs::read_to_string(&rendered).unwrap();
    assert!(
        manifests.contains(&format!("image: {repo}@{digest}")),
        "{manifests}"
    );
    assert!(manifests.contains("name: churn-production"), "{manifests}");
    let python = std::env::var("MLOPS_TEST_PYTHON").expect("scripts/test sets MLOPS_TEST_PYTHON");
    let validator = Path::new(&python).with_file_name("kubernetes-validate");
    let valid = Command::new(&validator)
        .arg("--strict")
        .arg(&rendered)
        .output()
        .unwrap();
    assert!(
        valid.status.success(),
        "kubernetes-validate: {}{}",
        stdout(&valid),
        stderr(&valid)
    );
    let out = s.deploy("production");
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["action"], "unchanged");
    s.assert_password_nowhere();
}

/// The command target: the user's command gets the pinned image; the same digest twice runs
/// it once; a failing command is a no (exit 1).
#[test]
fn the_command_target_runs_once_per_digest_and_a_failing_command_is_a_no() {
    let s = scenario();
    let dir = &s.dir;
    s.merge_staging();
    for env in ["canary", "broken"] {
        let text: String = std::fs::read_to_string(dir.join(".mlops/environments/staging.yaml"))
            .unwrap()
            .lines()
            .map(|l| {
                if l.starts_with("environment:") {
                    format!("environment: {env}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(dir.join(format!(".mlops/environments/{env}.yaml")), text).unwrap();
    }
    git(dir, &["add", "-A", ".mlops/environments"]);
    git(dir, &["commit", "-qm", "pin canary and broken"]);
    for _ in 0..2 {
        let out = mlops(dir).args(["deploy", "canary"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let log = std::fs::read_to_string(dir.join("deployed.txt")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        log.starts_with("canary ") && log.contains("@sha256:"),
        "{log}"
    );
    let out = mlops(dir).args(["deploy", "broken"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("exited with 4"), "{}", stderr(&out));
    s.assert_password_nowhere();
}

/// `--from staging`: production takes exactly what staging runs now (re-verified).
#[test]
fn production_from_staging_takes_what_staging_runs_now() {
    let s = scenario();
    let dir = &s.dir;
    s.merge_staging();
    let staging_now = std::fs::read_to_string(dir.join(".mlops/environments/staging.yaml"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("digest: "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let out = mlops(dir)
        .args([
            "promote",
            "production",
            "--from",
            "staging",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let moved: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(moved["state"]["digest"], staging_now.as_str());
    let subject = git(
        dir,
        &[
            "log",
            "-1",
            "--format=%s",
            moved["proposal"]["branch"].as_str().unwrap(),
        ],
    );
    assert!(
        subject.ends_with("to production (from staging)"),
        "{subject}"
    );
    s.assert_password_nowhere();
}

/// Another public key: the signature does not verify, nothing is proposed, and deploy refuses
/// it too while the running container keeps serving.
#[test]
fn another_public_key_stops_promote_and_deploy() {
    let _staging = staging_container();
    let s = scenario();
    let (dir, port) = (&s.dir, s.port);
    s.deploy_staging();
    let out = s.promote("production");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let other = mlops(dir)
        .args(["sign", "--generate-key", "other"])
        .env("MLOPS_SIGNING_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(other.status.success());
    std::fs::copy(dir.join("other.pub"), dir.join("cosign.pub")).unwrap();
    let before = git(dir, &["rev-parse", "mlops/promote/churn/production"]);
    let out = s.promote("production");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not promoted"), "{}", stderr(&out));
    assert_eq!(
        git(dir, &["rev-parse", "mlops/promote/churn/production"]),
        before
    );
    let out = mlops(dir).args(["deploy", "staging"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not deployed"), "{}", stderr(&out));
    assert!(health(port).is_some_and(|a| a.starts_with("HTTP/1.0 200")));
    s.assert_password_nowhere();
}

/// A run the gate rejected is never promoted.
#[test]
fn a_run_the_gate_rejected_is_never_promoted() {
    let s = scenario();
    let compare = s.dir.join(format!(".mlops/runs/{}/compare.json", s.run_id));
    std::fs::write(
        &compare,
        r#"{"verdict": "reject", "reasons": ["f1 threshold: 0.5 does not meet >= 0.8"]}"#,
    )
    .unwrap();
    let out = s.promote("staging");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the gate rejected run"),
        "{}",
        stderr(&out)
    );
    s.assert_password_nowhere();
}

/// An environment that does not exist: exit 2, naming the ones that do.
#[test]
fn an_unknown_environment_exits_2_naming_the_known_ones() {
    let s = scenario();
    let out = s.promote("prod");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("staging, production"),
        "{}",
        stderr(&out)
    );
    s.assert_password_nowhere();
}

/// SIGTERM after the swap, while the new version is starting on the environment's port: the
/// swap is undone. The previous version serves again under its own name and port, the new
/// container is gone, exit 130.
#[test]
fn deploy_interrupted_after_the_swap_restores_the_previous_version() {
    let inspect = |format: &str| -> String {
        let out = Command::new("/usr/bin/docker")
            .args(["inspect", "-f", format, "mlops-churn-undo"])
            .output()
            .unwrap();
        stdout(&out).trim().to_string()
    };
    let serving = |port: u16| {
        eventually(30, || {
            health(port).is_some_and(|a| a.starts_with("HTTP/1.0 200"))
        })
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _cleanup = Deployment("churn/undo");
    signed_churn_project(
        dir,
        "undo-test",
        PASSWORD,
        &[(
            "\nforge:",
            &format!(
                "\n  undo: {{deploy: {{target: docker, port: {port}, health: /health}}}}\nforge:"
            ),
        )],
    );
    let run = signed_run(dir, PASSWORD);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let run_id = std::fs::read_to_string(dir.join(".mlops/runs/latest"))
        .unwrap()
        .trim()
        .to_string();
    let out = promote(dir, "undo", &run_id);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    merge(dir, "merge undo", "mlops/promote/churn/undo");
    let out = mlops(dir).args(["deploy", "undo"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first_id = inspect("{{.Id}}");
    let first = inspect("{{index .Config.Labels \"dev.mlops.digest\"}}");
    assert!(serving(port));

    // The second version starts listening 6 s after its container starts, on the probe port
    // and again on the real one: long enough to be interrupted in the second wait.
    let yaml = std::fs::read_to_string(dir.join("mlops.yaml"))
        .unwrap()
        .replace(
            "command: [python3, /app/serve.py]",
            "command: [sh, -c, 'sleep 6; exec python3 /app/serve.py']",
        );
    std::fs::write(dir.join("mlops.yaml"), yaml).unwrap();
    let out = mlops(dir)
        .args(["package", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let packaged: Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = mlops(dir)
        .args([
            "sign",
            packaged["reference"].as_str().unwrap(),
            "--no-attest",
        ])
        .env("MLOPS_SIGNING_PASSWORD", PASSWORD)
        .env(
            "MLOPS_SIGNING_KEY",
            std::fs::read_to_string(dir.join("cosign.key")).unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let second = packaged["digest"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let env_file = dir.join(".mlops/environments/undo.yaml");
    let text = std::fs::read_to_string(&env_file).unwrap();
    std::fs::write(&env_file, text.replace(&first, &second)).unwrap();
    git(dir, &["commit", "-qam", "pin the slow version"]);

    let mut child = mlops(dir)
        .args(["deploy", "undo", "--health-timeout", "60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The swap happened once the environment's name holds the second version.
    assert!(
        eventually(60, || inspect(
            "{{index .Config.Labels \"dev.mlops.digest\"}}"
        ) == second),
        "the second version never took the name mlops-churn-undo"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("the new container was removed and the previous version restored"),
        "{err}"
    );
    assert_eq!(
        inspect("{{.Id}}"),
        first_id,
        "the previous container has its name back: {err}"
    );
    assert_eq!(inspect("{{.State.Running}}"), "true", "{err}");
    let leftover = Command::new("/usr/bin/docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=dev.mlops.digest={second}"))
        .output()
        .unwrap();
    assert_eq!(
        stdout(&leftover).trim(),
        "",
        "the new container is gone: {err}"
    );
    assert!(
        serving(port),
        "the previous version serves on {port} again: {err}"
    );
}
