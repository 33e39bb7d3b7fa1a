//! The promotion policy behind `mlops promote <env>`: what may be pinned in an environment, and
//! the one change that pins it. A candidate comes from a run the gate said to promote, from the
//! environment files' history (a rollback by digest), or from what another environment pins
//! now. It is refused without a promote verdict, without a valid signature by
//! `sign.public_key`, or — for an environment with `requires` — when the required environment
//! never had that digest. The change goes to the branch `mlops/promote/<model>/<env>` through
//! the forge it is given; the same candidate again makes no commit.
//!
//! Services are passed in: the forge, and [`Signatures`] for what promotion needs from the
//! registry. Nothing here prints, reads the environment or chooses an exit code.

use std::path::Path;

use anyhow::{Context, Result};
use indexmap::IndexMap;
use serde::Serialize;

use crate::compare::{Comparison, Verdict};
use crate::config::Config;
use crate::environment::{self, EnvironmentState};
use crate::forge::{Change, Forge, Proposal};
use crate::oci::digest::Digest;
use crate::oci::reference::ImageLocation;
use crate::outcome::Outcome;
use crate::runs::{self, Side};
use crate::{fsutil, oci};

/// What to promote where.
#[derive(Debug, Clone)]
pub struct PromoteRequest {
    /// An environment of mlops.yaml.
    pub environment: String,
    pub source: Source,
}

/// Where the digest to pin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A run the gate said to promote (None: the latest run).
    Run(Option<String>),
    /// Roll back: a digest (or a unique prefix of one) an environment of this repository had.
    Digest(String),
    /// What another environment pins now.
    From(String),
}

/// What promotion needs from the registry: whether `image` (`registry/repository@digest`)
/// carries a valid signature by the public key in `key` (a PEM file).
pub trait Signatures {
    fn verify(&mut self, key: &Path, image: &str) -> Result<Outcome<()>>;
}

/// A candidate that passed every check, ready to be proposed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub environment: String,
    candidate: Candidate,
    /// `sha256:<hex>` of the public key that verified the signature.
    signature: String,
    /// What a reviewer should know before the change is proposed.
    pub notes: Vec<String>,
}

impl Plan {
    pub fn digest(&self) -> &Digest {
        &self.candidate.digest
    }
}

/// The change that was proposed, and the state it pins.
#[derive(Debug, Clone, Serialize)]
pub struct Promoted {
    pub environment: String,
    pub state: EnvironmentState,
    pub proposal: Proposal,
}

/// What is about to be pinned, from a run or (rollback) from history.
#[derive(Debug, Clone)]
struct Candidate {
    reference: String,
    digest: Digest,
    run_id: String,
    git_commit: String,
    data: IndexMap<String, String>,
    metrics: IndexMap<String, f64>,
    title: String,
    body: String,
    /// Accepted data references travelling with the change (a new run's, not a rollback's).
    data_files: bool,
    /// The run's predictions on the frozen test set, kept with the promotion as
    /// `.mlops/predictions/<digest-hex>.csv` for `mlops monitor`'s prediction drift (a
    /// rollback's digest has its file from its own promotion).
    predictions: Option<std::path::PathBuf>,
}

/// Checks the request: the candidate, `requires`, and its signature. Refused when any says no.
pub fn plan(
    config: &Config,
    request: &PromoteRequest,
    signatures: &mut dyn Signatures,
) -> Result<Outcome<Plan>> {
    let env = request.environment.as_str();
    let env_cfg = config.environment(env)?;
    let mut notes = Vec::new();
    let found = match &request.source {
        Source::Run(id) => from_run(config, env, id.as_deref())?,
        Source::Digest(d) => from_history(config, env, d, &mut notes)?,
        Source::From(source) => {
            let digest = pinned_in(config, source)?;
            from_history(config, env, digest.as_str(), &mut notes)?
        }
    };
    let candidate = match found {
        Outcome::Done(c) => c,
        Outcome::Refused(why) => return Ok(Outcome::Refused(why)),
    };
    // A digest people rolled back is not proposed again by a run (a retrain that rebuilt the
    // same image, say): only naming it with --digest pins it again.
    if !matches!(request.source, Source::Digest(_)) {
        if let Some(commit) = rolled_back_out(config, env, &candidate.digest)? {
            return Ok(Outcome::refused(format!(
                "{} was rolled back out of {env} (commit {}); it is not proposed again unless named: `mlops promote {env} --digest {}`",
                candidate.digest,
                &commit[..commit.len().min(12)],
                candidate.digest
            )));
        }
    }
    if let Some(required) = &env_cfg.requires {
        if !had(config, required, &candidate.digest)? {
            return Ok(Outcome::refused(format!(
                "{env} requires {required}, and {} has never been in {required}: promote it there and merge that first",
                candidate.digest
            )));
        }
    }
    // A valid signature of exactly that digest, by the configured key.
    let key = config.sign.public_key.clone().with_context(|| {
        format!(
            "sign.public_key is not set in {}: promote verifies the image's signature before pinning its digest",
            config.file.display()
        )
    })?;
    if let Outcome::Refused(why) = signatures.verify(&key, &candidate.reference)? {
        return Ok(Outcome::Refused(why));
    }
    let pem = std::fs::read(&key)
        .with_context(|| format!("cannot read the public key {}", key.display()))?;
    Ok(Outcome::Done(Plan {
        environment: env.to_string(),
        candidate,
        signature: Digest::of(&pem).to_string(),
        notes,
    }))
}

/// Proposes the planned state on the promotion branch through `forge`.
pub fn propose(config: &Config, plan: Plan, forge: &mut dyn Forge) -> Result<Promoted> {
    let Plan {
        environment: env,
        candidate,
        signature,
        notes: _,
    } = plan;
    let rel = format!("{}/{env}.yaml", environment::ENVIRONMENTS_DIR);
    let mut change = Change {
        branch: format!("mlops/promote/{}/{env}", config.model),
        base: config.forge.base.clone(),
        files: Vec::new(),
        title: candidate.title.clone(),
        body: crate::text::neutralise(&candidate.body),
        trailer: format!("Mlops-Promotion: {}/{env}", config.model),
    };
    // The same candidate again keeps its first promotion time, so repeating it is a no-op.
    let previous = forge
        .read(&change, &rel)?
        .and_then(|t| environment::parse(&t).ok())
        .filter(|s| s.digest == candidate.digest && s.run_id == candidate.run_id);
    let state = EnvironmentState {
        environment: env.clone(),
        model: config.model.clone(),
        image: candidate.reference,
        digest: candidate.digest,
        signature: Some(signature),
        run_id: candidate.run_id,
        git_commit: candidate.git_commit,
        data: candidate.data,
        metrics: candidate.metrics,
        promoted_at: previous
            .map(|p| p.promoted_at)
            .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        model_dir: None,
        change: Some(change.branch.clone()),
    };
    change
        .files
        .push((rel, environment::render(&state)?.into_bytes()));
    if candidate.data_files {
        change.files.extend(data_references(&config.root)?);
    }
    if let Some(p) = candidate.predictions.as_deref().filter(|p| p.is_file()) {
        change.files.push((
            crate::monitor::predictions::path_in_repo(&state.digest),
            crate::monitor::predictions::compact(p)?,
        ));
    }
    let proposal = forge.propose(&change)?;
    Ok(Promoted {
        environment: env,
        state,
        proposal,
    })
}

/// The accepted data references (`.mlops/data/*.json`), which travel with a new run's change.
fn data_references(root: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let Ok(entries) = std::fs::read_dir(root.join(".mlops/data")) else {
        return Ok(Vec::new());
    };
    let mut refs: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    refs.sort();
    let mut files = Vec::new();
    for p in refs {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        files.push((format!(".mlops/data/{name}"), std::fs::read(&p)?));
    }
    Ok(files)
}

/// The digest `source` pins now (`--from`).
fn pinned_in(config: &Config, source: &str) -> Result<Digest> {
    config.environment(source)?;
    Ok(environment::read(config, source)?
        .with_context(|| {
            format!(
                "--from {source}: nothing is pinned in {source} yet (no {})",
                environment::path(&config.root, source).display()
            )
        })?
        .digest)
}

/// Whether `digest` has been in `env`: in its file's history, or in its file now.
fn had(config: &Config, env: &str, digest: &Digest) -> Result<bool> {
    let now = environment::read(config, env)?;
    Ok(environment::history(&config.root, env)?
        .iter()
        .filter_map(|e| e.state.as_ref())
        .chain(now.as_ref())
        .any(|s| s.digest == *digest))
}

/// The commit that rolled `digest` back out of `env`, if one did: a rollback whose previous
/// state pinned `digest`.
fn rolled_back_out(config: &Config, env: &str, digest: &Digest) -> Result<Option<String>> {
    // Newest first: each entry's predecessor is the next one.
    let history = environment::history(&config.root, env)?;
    Ok(history
        .windows(2)
        .find(|pair| {
            pair[0].kind == environment::ChangeKind::Rollback
                && pair[1].state.as_ref().is_some_and(|s| s.digest == *digest)
        })
        .map(|pair| pair[0].commit.clone()))
}

/// A run the gate said to promote, packaged to a registry.
fn from_run(config: &Config, env: &str, run_id: Option<&str>) -> Result<Outcome<Candidate>> {
    let run = runs::open(&config.root, run_id)?;
    let comparison: Comparison = fsutil::read_json(&run.compare_json()).with_context(|| {
        format!(
            "run {} has no comparison: run `mlops compare --run {}` first",
            run.id, run.id
        )
    })?;
    if comparison.verdict != Verdict::Promote {
        return Ok(Outcome::refused(format!(
            "the gate rejected run {} ({})",
            run.id,
            crate::text::clean(&comparison.reasons.join("; "))
        )));
    }
    let packaged = oci::image::load(&run)?;
    if let ImageLocation::Layout(_) = packaged.location()? {
        anyhow::bail!(
            "run {} was packaged to an OCI layout ({}); an environment pins an image in a registry: set package.repository to one",
            run.id,
            packaged.reference
        );
    }
    let record = run.read_record()?;
    let report = std::fs::read_to_string(run.report_md()).unwrap_or_default();
    Ok(Outcome::Done(Candidate {
        body: format!("Pins `{}` in `{env}`.\n\n{report}", packaged.reference),
        title: format!("Promote {} run {} to {env}", config.model, run.id),
        reference: packaged.reference,
        digest: packaged.digest,
        run_id: run.id.clone(),
        git_commit: record.git.commit.clone(),
        data: record
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.digest.clone()))
            .collect(),
        metrics: crate::compare::metrics::load_metrics(&run.metrics(Side::Challenger))
            .unwrap_or_default(),
        data_files: true,
        predictions: Some(run.predictions(Side::Challenger)),
    }))
}

/// Whether a pinned digest is what `wanted` names: the digest itself, or a prefix of it long
/// enough to mean one (`sha256:` and 6 hex digits, or 6 hex digits without the algorithm).
fn names(wanted: &str, digest: &Digest) -> bool {
    *digest == wanted
        || (wanted.len() >= 7 + 6 && digest.as_str().starts_with(wanted))
        || (wanted.len() >= 6 && digest.hex().starts_with(wanted))
}

/// Rollback: the newest committed state (of `env` first, then of any environment) that pinned
/// `wanted` (a digest or a unique prefix of one).
fn from_history(
    config: &Config,
    env: &str,
    wanted: &str,
    notes: &mut Vec<String>,
) -> Result<Outcome<Candidate>> {
    let wanted = wanted.trim();
    let mut envs: Vec<&String> = config.environments.keys().collect();
    envs.sort_by_key(|e| e.as_str() != env);
    let mut found: Vec<(String, EnvironmentState)> = Vec::new();
    for e in envs {
        for entry in environment::history(&config.root, e)?.into_iter().rev() {
            if let Some(s) = entry.state.filter(|s| names(wanted, &s.digest)) {
                found.push((entry.commit, s));
            }
        }
        // The working tree's file counts too (a checkout of the merge that pinned it).
        if let Some(s) = environment::read(config, e)?.filter(|s| names(wanted, &s.digest)) {
            found.push(("working tree".into(), s));
        }
    }
    let digests: std::collections::BTreeSet<&str> =
        found.iter().map(|(_, s)| s.digest.as_str()).collect();
    if digests.len() > 1 {
        anyhow::bail!(
            "--digest {wanted} matches several digests ({}); give more of it",
            digests.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let Some((commit, state)) = found.into_iter().next() else {
        return Ok(Outcome::refused(format!(
            "{wanted} was never pinned in any environment of this repository (see `mlops history {env}`): a rollback only goes to a digest that was promoted before"
        )));
    };
    let current = environment::read(config, env)?;
    if current.as_ref().is_some_and(|c| c.digest == state.digest) {
        notes.push(format!("{env} already pins {}", state.digest));
    }
    Ok(Outcome::Done(rollback(
        config, env, current, &commit, state,
    )))
}

/// The candidate that moves `env` from `current` to `state`, found at `commit`.
fn rollback(
    config: &Config,
    env: &str,
    current: Option<EnvironmentState>,
    commit: &str,
    state: EnvironmentState,
) -> Candidate {
    let from = current
        .map(|c| format!("`{}` (run {})", c.digest, c.run_id))
        .unwrap_or_else(|| "nothing".into());
    let back = state.environment == env;
    let at = if commit == "working tree" {
        commit.to_string()
    } else {
        format!("commit {}", &commit[..commit.len().min(12)])
    };
    Candidate {
        title: if back {
            format!("Roll back {env} of {} to run {}", config.model, state.run_id)
        } else {
            format!(
                "Promote {} run {} to {env} (from {})",
                config.model, state.run_id, state.environment
            )
        },
        body: format!(
            "{} `{env}` from {from} to `{}` (run {}), as pinned in {} at {at}.\n\nThe image's signature was verified again before this change was proposed.\n",
            if back { "Rolls back" } else { "Moves" },
            state.image,
            state.run_id,
            state.environment,
        ),
        reference: state.image,
        digest: state.digest,
        run_id: state.run_id,
        git_commit: state.git_commit,
        data: state.data,
        metrics: state.metrics,
        data_files: false,
        predictions: None,
    }
}

#[cfg(test)]
mod tests;
