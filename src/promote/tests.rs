//! The promotion policy against an in-memory forge and in-memory signatures: no Docker, no
//! registry. The project is a real directory with a git history (environment files' history is
//! the git log).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::json;

use super::*;
use crate::forge::{Change, Forge, Incidents, Issue, Proposal};

const YAML: &str = "version: 1
model: churn
data:
  train: {path: data/train.csv}
  test: {path: data/test.csv}
train:
  image: mlops-test/python-sklearn
  command: [python3, train.py]
evaluate:
  command: [python3, evaluate.py]
compare:
  metrics:
    f1: {direction: maximize, threshold: 0.8}
package:
  repository: 127.0.0.1:5000/acme/churn
  base_image: 127.0.0.1:5000/acme/serve-sklearn:1
sign:
  key: env:MLOPS_SIGNING_KEY
  public_key: cosign.pub
environments:
  staging: {deploy: {target: command, command: ['true']}}
  production:
    requires: staging
    deploy: {target: command, command: ['true']}
forge: {type: local, base: main}
";

const REPOSITORY: &str = "127.0.0.1:5000/acme/churn";

fn sha(byte: &str) -> String {
    format!("sha256:{}", byte.repeat(32))
}

/// Branches and their files, as a forge would keep them; a proposal with the files a branch
/// already has makes no commit.
#[derive(Default)]
struct MemoryForge {
    branches: BTreeMap<String, Vec<(String, Vec<u8>)>>,
    commits: usize,
    proposed: Vec<Change>,
}

impl Forge for MemoryForge {
    fn read(&mut self, change: &Change, rel: &str) -> anyhow::Result<Option<String>> {
        Ok(self.branches.get(&change.branch).and_then(|files| {
            files
                .iter()
                .find(|(path, _)| path == rel)
                .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        }))
    }

    fn propose(&mut self, change: &Change) -> anyhow::Result<Proposal> {
        self.proposed.push(change.clone());
        let same = self.branches.get(&change.branch) == Some(&change.files);
        let commit = (!same).then(|| {
            self.commits += 1;
            self.branches
                .insert(change.branch.clone(), change.files.clone());
            format!("{:040x}", self.commits)
        });
        Ok(Proposal {
            branch: change.branch.clone(),
            commit,
            url: format!("memory://{}", change.branch),
            body_path: None,
            notes: Vec::new(),
        })
    }
}

/// Promotion never asks a forge about incidents.
impl Incidents for MemoryForge {
    fn find_issue(&mut self, _: &str) -> anyhow::Result<Option<Issue>> {
        anyhow::bail!("promotion looks for no issue")
    }
    fn open_issue(&mut self, _: &str, _: &str) -> anyhow::Result<Issue> {
        anyhow::bail!("promotion opens no issue")
    }
    fn update_issue(&mut self, _: u64, _: &str, _: &str) -> anyhow::Result<()> {
        anyhow::bail!("promotion updates no issue")
    }
    fn comment(&mut self, _: u64, _: &str) -> anyhow::Result<()> {
        anyhow::bail!("promotion comments on no issue")
    }
    fn close_issue(&mut self, _: u64) -> anyhow::Result<()> {
        anyhow::bail!("promotion closes no issue")
    }
    fn dispatch(&mut self, _: &str, _: &serde_json::Value) -> anyhow::Result<String> {
        anyhow::bail!("promotion dispatches nothing")
    }
}

/// Signatures the registry holds: the digests signed by the configured key.
#[derive(Default)]
struct MemorySignatures {
    signed: BTreeSet<String>,
    asked: Vec<String>,
}

impl Signatures for MemorySignatures {
    fn verify(&mut self, key: &Path, image: &str) -> anyhow::Result<Outcome<()>> {
        assert!(key.ends_with("cosign.pub"), "{}", key.display());
        self.asked.push(image.to_string());
        let digest = image.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        Ok(if self.signed.contains(digest) {
            Outcome::Done(())
        } else {
            Outcome::refused(format!("{image}: no valid signature by this key"))
        })
    }
}

impl MemorySignatures {
    fn of(digests: &[&str]) -> MemorySignatures {
        MemorySignatures {
            signed: digests.iter().map(|d| d.to_string()).collect(),
            asked: Vec::new(),
        }
    }
}

struct Project {
    dir: tempfile::TempDir,
    config: Config,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["-c", "user.name=Test", "-c", "user.email=test@localhost"];
    all.extend_from_slice(args);
    crate::git::run(dir, &all).unwrap()
}

fn project() -> Project {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::write(root.join("data/train.csv"), "x,label\n1,0\n").unwrap();
    std::fs::write(root.join("data/test.csv"), "x,label\n1,0\n").unwrap();
    std::fs::write(root.join("cosign.pub"), "-----BEGIN PUBLIC KEY-----\n").unwrap();
    std::fs::write(root.join("mlops.yaml"), YAML).unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "project"]);
    let config = crate::config::load(&root.join("mlops.yaml")).unwrap();
    Project { dir, config }
}

impl Project {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A run `id` whose gate said `verdict`, packaged as `digest`, with a data reference
    /// accepted for it.
    fn run(&self, id: &str, verdict: &str, digest: &str) {
        let run = runs::RunDir {
            id: id.to_string(),
            path: runs::runs_root(self.root()).join(id),
        };
        std::fs::create_dir_all(run.eval_dir(Side::Challenger)).unwrap();
        let write = |path: std::path::PathBuf, value: serde_json::Value| {
            fsutil::write_json_atomic(&path, &value).unwrap();
        };
        write(
            run.run_json(),
            json!({"run_id": id, "model": "churn", "git": {"commit": format!("commit-of-{id}"), "dirty": false},
                   "params": {}, "data": {"train": {"path": "data/train.csv", "digest": digest}},
                   "resources": {}, "steps": {}}),
        );
        let reasons: Vec<&str> = match verdict {
            "promote" => vec![],
            _ => vec!["f1 threshold: 0.7 is below 0.8"],
        };
        write(
            run.compare_json(),
            json!({"verdict": verdict, "model": "churn", "run_id": id, "against": null,
                   "first_run": true, "checks": [], "significance": null,
                   "challenger": {"f1": 0.9}, "champion": null, "reasons": reasons}),
        );
        write(
            run.package_json(),
            json!({"reference": format!("{REPOSITORY}@{digest}"), "digest": digest, "tag": id,
                   "size": 1, "base_image": "b", "base_digest": sha("00"),
                   "model_layer": {"digest": digest, "diff_id": digest, "size": 1, "media_type": "t"},
                   "uploaded_bytes": 0, "annotations": {}}),
        );
        write(run.metrics(Side::Challenger), json!({"f1": 0.9}));
        std::fs::write(run.report_md(), "## churn: promote\n").unwrap();
        runs::set_latest(self.root(), &run).unwrap();
        write(
            self.root().join(".mlops/data/train.json"),
            json!({"dataset": "train", "digest": digest}),
        );
    }

    /// Commits `env`'s file pinning `digest` from run `run_id` (a merged promotion).
    fn merge(&self, env: &str, digest: &str, run_id: &str) {
        let state = EnvironmentState {
            environment: env.to_string(),
            model: "churn".into(),
            image: format!("{REPOSITORY}@{digest}"),
            digest: Digest::parse(digest).unwrap(),
            signature: None,
            run_id: run_id.to_string(),
            git_commit: format!("commit-of-{run_id}"),
            data: IndexMap::new(),
            metrics: IndexMap::new(),
            promoted_at: "2026-11-22T00:00:00Z".into(),
            model_dir: None,
            change: None,
        };
        environment::write(self.root(), &state).unwrap();
        git(self.root(), &["add", ".mlops/environments"]);
        git(
            self.root(),
            &["commit", "-q", "-m", &format!("pin {digest} in {env}")],
        );
    }

    fn plan(&self, env: &str, source: Source, signed: &mut MemorySignatures) -> Outcome<Plan> {
        let request = PromoteRequest {
            environment: env.to_string(),
            source,
        };
        plan(&self.config, &request, signed).unwrap()
    }
}

fn done(outcome: Outcome<Plan>) -> Plan {
    match outcome {
        Outcome::Done(p) => p,
        Outcome::Refused(why) => panic!("refused: {why}"),
    }
}

fn refused(outcome: Outcome<Plan>) -> String {
    match outcome {
        Outcome::Done(p) => panic!("planned {} for {}", p.digest(), p.environment),
        Outcome::Refused(why) => why.to_string(),
    }
}

#[test]
fn a_run_without_a_promote_verdict_is_refused_before_any_signature_is_asked() {
    let p = project();
    p.run("r1", "reject", &sha("a1"));
    let mut signed = MemorySignatures::of(&[&sha("a1")]);
    let why = refused(p.plan("staging", Source::Run(None), &mut signed));
    assert!(why.contains("the gate rejected run r1"), "{why}");
    assert!(why.contains("f1 threshold: 0.7 is below 0.8"), "{why}");
    assert!(signed.asked.is_empty(), "{:?}", signed.asked);
}

#[test]
fn a_digest_without_a_valid_signature_is_refused_and_nothing_is_proposed() {
    let p = project();
    p.run("r1", "promote", &sha("a1"));
    let mut signed = MemorySignatures::of(&[&sha("b2")]);
    let why = refused(p.plan("staging", Source::Run(Some("r1".into())), &mut signed));
    assert!(why.contains("no valid signature by this key"), "{why}");
    assert_eq!(signed.asked, [format!("{REPOSITORY}@{}", sha("a1"))]);
}

#[test]
fn requires_is_unmet_until_the_required_environment_had_the_digest() {
    let p = project();
    p.run("r1", "promote", &sha("a1"));
    let mut signed = MemorySignatures::of(&[&sha("a1")]);
    let why = refused(p.plan("production", Source::Run(None), &mut signed));
    assert!(
        why.contains("production requires staging")
            && why.contains(&format!("{} has never been in staging", sha("a1"))),
        "{why}"
    );
    assert!(signed.asked.is_empty(), "the signature is checked last");
    // Staging had it once, then moved on: production may take it.
    p.merge("staging", &sha("a1"), "r1");
    p.merge("staging", &sha("b2"), "r2");
    let plan = done(p.plan("production", Source::Run(None), &mut signed));
    assert_eq!(plan.digest().as_str(), sha("a1"));
}

#[test]
fn the_same_candidate_twice_makes_no_second_commit() {
    let p = project();
    p.run("r1", "promote", &sha("a1"));
    let mut signed = MemorySignatures::of(&[&sha("a1")]);
    let mut forge = MemoryForge::default();
    let first = propose(
        &p.config,
        done(p.plan("staging", Source::Run(None), &mut signed)),
        &mut forge,
    )
    .unwrap();
    assert!(first.proposal.commit.is_some());
    assert_eq!(first.proposal.branch, "mlops/promote/churn/staging");
    assert_eq!(first.state.digest.as_str(), sha("a1"));
    assert_eq!(first.state.image, format!("{REPOSITORY}@{}", sha("a1")));
    assert_eq!(first.state.run_id, "r1");
    assert_eq!(first.state.git_commit, "commit-of-r1");
    let change = &forge.proposed[0];
    assert_eq!(change.trailer, "Mlops-Promotion: churn/staging");
    assert_eq!(change.title, "Promote churn run r1 to staging");
    assert!(change
        .body
        .starts_with(&format!("Pins `{REPOSITORY}@{}` in `staging`.", sha("a1"))));
    let paths: Vec<&str> = change.files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [".mlops/environments/staging.yaml", ".mlops/data/train.json"]
    );
    let second = propose(
        &p.config,
        done(p.plan("staging", Source::Run(None), &mut signed)),
        &mut forge,
    )
    .unwrap();
    assert_eq!(second.proposal.commit, None);
    assert_eq!(second.state.promoted_at, first.state.promoted_at);
    assert_eq!(forge.commits, 1);
}

#[test]
fn the_runs_test_set_predictions_travel_with_the_promotion_for_monitoring() {
    let p = project();
    p.run("r1", "promote", &sha("a1"));
    let eval = runs::runs_root(p.root()).join("r1/eval/challenger/predictions.csv");
    std::fs::write(&eval, "y_true,y_pred,score\n1,1,0.9\n0,0,0.25\n").unwrap();
    let mut signed = MemorySignatures::of(&[&sha("a1")]);
    let mut forge = MemoryForge::default();
    propose(
        &p.config,
        done(p.plan("staging", Source::Run(None), &mut signed)),
        &mut forge,
    )
    .unwrap();
    let change = &forge.proposed[0];
    let hex = sha("a1").trim_start_matches("sha256:").to_string();
    let (_, content) = change
        .files
        .iter()
        .find(|(path, _)| *path == format!(".mlops/predictions/{hex}.csv"))
        .unwrap_or_else(|| {
            panic!(
                "{:?}",
                change.files.iter().map(|f| &f.0).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        String::from_utf8_lossy(content),
        "y_pred,score\n1,0.9\n0,0.25\n"
    );
}

#[test]
fn a_rollback_finds_an_earlier_digest_by_its_prefix() {
    let p = project();
    p.merge("staging", &sha("a1"), "r1");
    p.merge("staging", &sha("b2"), "r2");
    let mut signed = MemorySignatures::of(&[&sha("a1"), &sha("b2")]);
    // Six hex digits without the algorithm, or `sha256:` and six.
    for prefix in ["a1a1a1", "sha256:a1a1a1"] {
        let plan = done(p.plan("staging", Source::Digest(prefix.into()), &mut signed));
        assert_eq!(plan.digest().as_str(), sha("a1"));
        let mut forge = MemoryForge::default();
        let promoted = propose(&p.config, plan, &mut forge).unwrap();
        assert_eq!(promoted.state.run_id, "r1");
        let change = &forge.proposed[0];
        assert_eq!(change.title, "Roll back staging of churn to run r1");
        assert!(change.body.starts_with(&format!(
            "Rolls back `staging` from `{}` (run r2) to `{REPOSITORY}@{}` (run r1), as pinned in staging at commit ",
            sha("b2"),
            sha("a1")
        )), "{}", change.body);
        // A rollback carries no data references: they belong to the run that was accepted.
        assert_eq!(change.files.len(), 1);
    }
    // Too short to mean one digest, or never pinned: refused.
    let why = refused(p.plan("staging", Source::Digest("a1a1".into()), &mut signed));
    assert!(why.contains("was never pinned"), "{why}");
    let why = refused(p.plan("staging", Source::Digest(sha("c3")), &mut signed));
    assert!(why.contains("was never pinned"), "{why}");
}

#[test]
fn a_prefix_of_several_digests_is_an_error_asking_for_more() {
    let p = project();
    p.merge("staging", &format!("sha256:abcdef{}", "1".repeat(58)), "r1");
    p.merge("staging", &format!("sha256:abcdef{}", "2".repeat(58)), "r2");
    let request = PromoteRequest {
        environment: "staging".into(),
        source: Source::Digest("abcdef".into()),
    };
    let e = plan(&p.config, &request, &mut MemorySignatures::default()).unwrap_err();
    assert!(e.to_string().contains("matches several digests"), "{e:#}");
}

#[test]
fn from_takes_what_the_other_environment_pins_now() {
    let p = project();
    p.merge("staging", &sha("a1"), "r1");
    p.merge("staging", &sha("b2"), "r2");
    let mut signed = MemorySignatures::of(&[&sha("a1"), &sha("b2")]);
    let planned = done(p.plan("production", Source::From("staging".into()), &mut signed));
    assert_eq!(planned.digest().as_str(), sha("b2"));
    let mut forge = MemoryForge::default();
    let promoted = propose(&p.config, planned, &mut forge).unwrap();
    assert_eq!(promoted.environment, "production");
    assert_eq!(promoted.state.environment, "production");
    assert_eq!(promoted.state.run_id, "r2");
    assert_eq!(
        forge.proposed[0].title,
        "Promote churn run r2 to production (from staging)"
    );
    assert_eq!(forge.proposed[0].branch, "mlops/promote/churn/production");
    // Nothing pinned in the source yet, or no such environment: errors, not refusals.
    let empty = project();
    let request = PromoteRequest {
        environment: "production".into(),
        source: Source::From("staging".into()),
    };
    let e = plan(&empty.config, &request, &mut signed).unwrap_err();
    assert!(
        e.to_string().contains("nothing is pinned in staging yet"),
        "{e:#}"
    );
    let request = PromoteRequest {
        environment: "production".into(),
        source: Source::From("qa".into()),
    };
    let e = plan(&empty.config, &request, &mut signed).unwrap_err();
    assert!(e.to_string().contains("no environment \"qa\""), "{e:#}");
}

#[test]
fn the_environment_file_records_the_key_that_verified_it() {
    let p = project();
    p.run("r1", "promote", &sha("a1"));
    let mut signed = MemorySignatures::of(&[&sha("a1")]);
    let plan = done(p.plan("staging", Source::Run(None), &mut signed));
    let promoted = propose(&p.config, plan, &mut MemoryForge::default()).unwrap();
    let pem = std::fs::read(p.root().join("cosign.pub")).unwrap();
    assert_eq!(promoted.state.signature, Some(Digest::of(&pem).to_string()));
    assert_eq!(
        promoted.state.change.as_deref(),
        Some("mlops/promote/churn/staging")
    );
}

#[test]
fn a_digest_rolled_back_out_is_not_proposed_again_unless_named() {
    let p = project();
    p.merge("staging", &sha("a1"), "r1");
    p.merge("staging", &sha("b2"), "r2");
    // People rolled b2 back: a1 again.
    p.merge("staging", &sha("a1"), "r1");
    let mut signed = MemorySignatures::of(&[&sha("a1"), &sha("b2"), &sha("c3")]);
    // A retrain that rebuilt the same image as b2 is refused, before any signature is asked.
    p.run("r3", "promote", &sha("b2"));
    let why = refused(p.plan("staging", Source::Run(None), &mut signed));
    assert!(
        why.contains(&format!("{} was rolled back out of staging", sha("b2"))),
        "{why}"
    );
    assert!(why.contains("--digest"), "{why}");
    assert!(signed.asked.is_empty(), "{:?}", signed.asked);
    // Named explicitly, it is pinned again.
    let plan = done(p.plan("staging", Source::Digest(sha("b2")), &mut signed));
    assert_eq!(plan.digest().as_str(), sha("b2"));
    // A new digest from a run is not affected, and a1 (rolled back to, never out) neither.
    p.run("r4", "promote", &sha("c3"));
    done(p.plan("staging", Source::Run(None), &mut signed));
    p.run("r5", "promote", &sha("a1"));
    done(p.plan("staging", Source::Run(None), &mut signed));
    // Another environment never rolled b2 back: it may take it.
    p.merge("production", &sha("a1"), "r1");
    p.run("r6", "promote", &sha("b2"));
    let plan = done(p.plan("production", Source::Run(None), &mut signed));
    assert_eq!(plan.digest().as_str(), sha("b2"));
}
