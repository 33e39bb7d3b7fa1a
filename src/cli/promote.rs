//! `mlops promote <env>`: pins the run's image digest in `.mlops/environments/<env>.yaml` on
//! the branch `mlops/promote/<model>/<env>`, with the report as the change's description.
//! Refuses (exit 1) without a promote verdict, a valid signature by `sign.public_key`, or —
//! for an environment with `requires` — a digest the required environment has had.
//! Running it again with nothing new makes no commit.

use anyhow::{Context, Result};
use indexmap::IndexMap;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{block_on, Cli, Format, Status};
use crate::environment::{self, EnvironmentState};
use crate::forge::{self, Change};
use crate::outcome::Outcome;
use crate::runs::Side;
use crate::signing::{self, cosign};
use crate::{compare, config, fsutil, gha, oci, runs};

#[derive(Debug, clap::Args)]
#[command(
    after_help = format!("Environment (github forge):\n  GITHUB_TOKEN            a token with contents: write and pull-requests: write\n  GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_INSTALLATION_ID  or a GitHub App instead\n  GITHUB_API_URL          the API (GitHub Enterprise; default https://api.github.com)\n  GITHUB_REPOSITORY       owner/name, when forge.repository is not set\n{}", super::registry::HELP)
)]
pub struct Args {
    /// An environment of mlops.yaml.
    #[arg(env = "MLOPS_ENVIRONMENT")]
    pub environment: String,
    /// The run to promote (default: the latest).
    #[arg(long = "run", value_name = "ID", env = "MLOPS_RUN_ID")]
    pub run_id: Option<String>,
    /// Roll back: pin a digest this environment (or another) had before, found in the
    /// environment files' git history (a unique prefix is enough).
    #[arg(long, value_name = "DIGEST", env = "MLOPS_DIGEST")]
    pub digest: Option<String>,
    /// Pin the digest another environment has now (e.g. `--from staging` for production).
    #[arg(long, value_name = "ENVIRONMENT", env = "MLOPS_FROM")]
    pub from: Option<String>,
    #[arg(long, value_enum, default_value = "human", env = "MLOPS_FORMAT")]
    pub format: Format,
}

fn refuse(why: String) -> super::Exit {
    Ok(super::refuse("promote", "not promoted", &why))
}

/// What is about to be pinned, from a run or (rollback) from history.
struct Candidate {
    reference: String,
    digest: String,
    run_id: String,
    git_commit: String,
    data: IndexMap<String, String>,
    metrics: IndexMap<String, f64>,
    title: String,
    body: String,
    /// Accepted data references travelling with the change (a new run's, not a rollback's).
    data_files: bool,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let config = config::load(&cli.config)?;
    let env = args.environment.as_str();
    let env_cfg = super::environment(&config, env)?;
    let pinned_in = |source: &String| -> Result<String> {
        super::environment(&config, source)?;
        Ok(environment::read(&config, source)?
            .with_context(|| {
                format!(
                    "--from {source}: nothing is pinned in {source} yet (no {})",
                    environment::path(&config.root, source).display()
                )
            })?
            .digest)
    };
    let wanted = match (&args.digest, &args.from) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(source)) => Some(pinned_in(source)?),
        (None, None) => None,
    };
    let candidate = match &wanted {
        Some(d) => match from_history(&config, env, d)? {
            Ok(c) => c,
            Err(why) => return refuse(why),
        },
        None => match from_run(&config, env, args.run_id.as_deref())? {
            Ok(c) => c,
            Err(why) => return refuse(why),
        },
    };

    // `requires`: the digest has been in the required environment.
    if let Some(required) = &env_cfg.requires {
        let had = environment::history(&config.root, required)?
            .iter()
            .filter_map(|e| e.state.as_ref())
            .chain(environment::read(&config, required)?.as_ref())
            .any(|s| s.digest == candidate.digest);
        if !had {
            return refuse(format!(
                "{env} requires {required}, and {} has never been in {required}: promote it there and merge that first",
                candidate.digest
            ));
        }
    }

    // A valid signature of exactly that digest, by the configured key.
    let key_path = config.sign.public_key.clone().with_context(|| {
        format!(
            "sign.public_key is not set in {}: promote verifies the image's signature before pinning its digest",
            config.file.display()
        )
    })?;
    let key = signing::verification_key(&key_path)?;
    let pem = std::fs::read(&key_path)?;
    let (image, digest) = cosign::parse_pinned(&candidate.reference)?;
    let settings = super::registry::settings(Some(&config))?;
    let verified = block_on(async {
        match cosign::verify(&key, &image, &digest, false, &settings).await? {
            Outcome::Done(_) => Ok(Status::Done),
            Outcome::Refused(why) => refuse(why.to_string()),
        }
    })?;
    if verified != Status::Done {
        return Ok(verified);
    }

    // The desired state, proposed on the promotion branch.
    let mut forge = forge::open(&config.root, &config.forge)?;
    let rel = format!("{}/{env}.yaml", environment::ENVIRONMENTS_DIR);
    let mut change = Change {
        branch: format!("mlops/promote/{}/{env}", config.model),
        base: config.forge.base.clone(),
        files: Vec::new(),
        title: candidate.title.clone(),
        body: crate::report::defuse(&candidate.body),
        trailer: format!("Mlops-Promotion: {}/{env}", config.model),
    };
    // The same candidate again keeps its first promotion time, so repeating it is a no-op.
    let previous = forge
        .read(&change, &rel)?
        .and_then(|t| environment::parse(&t).ok())
        .filter(|s| s.digest == candidate.digest && s.run_id == candidate.run_id);
    let state = EnvironmentState {
        environment: env.to_string(),
        model: config.model.clone(),
        image: candidate.reference.clone(),
        digest: candidate.digest.clone(),
        signature: Some(format!("sha256:{}", hex::encode(Sha256::digest(&pem)))),
        run_id: candidate.run_id.clone(),
        git_commit: candidate.git_commit.clone(),
        data: candidate.data.clone(),
        metrics: candidate.metrics.clone(),
        promoted_at: previous
            .map(|p| p.promoted_at)
            .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        model_dir: None,
        change: Some(change.branch.clone()),
    };
    change
        .files
        .push((rel, environment::render(&state)?.into_bytes()));
    // Data references accepted for this run travel in the same change.
    let data_dir = config.root.join(".mlops/data");
    if let (true, Ok(entries)) = (candidate.data_files, std::fs::read_dir(&data_dir)) {
        let mut refs: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        refs.sort();
        for p in refs {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            change
                .files
                .push((format!(".mlops/data/{name}"), std::fs::read(&p)?));
        }
    }
    let proposal = forge.propose(&change)?;
    for n in &proposal.notes {
        eprintln!("mlops promote: {}", crate::report::clean(n));
    }
    match &proposal.commit {
        Some(c) => eprintln!(
            "mlops promote: {} → {env} proposed on {} ({}); merge it to deploy",
            candidate.digest,
            proposal.branch,
            &c[..c.len().min(12)]
        ),
        None => eprintln!(
            "mlops promote: nothing new to propose on {}",
            proposal.branch
        ),
    }
    gha::set_outputs(&[
        ("promotion-branch", &proposal.branch),
        ("pull-request-url", &proposal.url),
        ("digest", &candidate.digest),
    ])?;
    match args.format {
        Format::Json => {
            super::print_json(&json!({"environment": env, "state": state, "proposal": proposal}))?
        }
        _ => println!("{}", proposal.url),
    }
    Ok(Status::Done)
}

/// A run the gate said to promote, packaged to a registry.
fn from_run(
    config: &config::Config,
    env: &str,
    run_id: Option<&str>,
) -> Result<std::result::Result<Candidate, String>> {
    let run = runs::open(&config.root, run_id)?;
    let verdict: Value = fsutil::read_json(&run.compare_json()).with_context(|| {
        format!(
            "run {} has no comparison: run `mlops compare --run {}` first",
            run.id, run.id
        )
    })?;
    if verdict["verdict"] != "promote" {
        let reasons: Vec<&str> = verdict["reasons"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        return Ok(Err(format!(
            "the gate rejected run {} ({})",
            run.id,
            crate::report::clean(&reasons.join("; "))
        )));
    }
    let packaged = oci::image::load(&run)?;
    if packaged.reference.starts_with("oci:") {
        anyhow::bail!(
            "run {} was packaged to an OCI layout ({}); an environment pins an image in a registry: set package.repository to one",
            run.id,
            packaged.reference
        );
    }
    let record = run.read_record()?;
    let report = std::fs::read_to_string(run.report_md()).unwrap_or_default();
    Ok(Ok(Candidate {
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
        metrics: compare::metrics::load_metrics(&run.metrics(Side::Challenger)).unwrap_or_default(),
        data_files: true,
    }))
}

/// Rollback: the newest committed state (of `env` first, then of any environment) that pinned
/// `wanted` (a digest or a unique prefix of one).
fn from_history(
    config: &config::Config,
    env: &str,
    wanted: &str,
) -> Result<std::result::Result<Candidate, String>> {
    let wanted = wanted.trim();
    let matches = |d: &str| {
        d == wanted
            || (wanted.len() >= 7 + 6 && d.starts_with(wanted))
            || (wanted.len() >= 6
                && d.strip_prefix("sha256:")
                    .is_some_and(|h| h.starts_with(wanted)))
    };
    let mut envs: Vec<&String> = config.environments.keys().collect();
    envs.sort_by_key(|e| e.as_str() != env);
    let mut found: Vec<(String, EnvironmentState)> = Vec::new();
    for e in envs {
        for entry in environment::history(&config.root, e)?.into_iter().rev() {
            if let Some(s) = entry.state.filter(|s| matches(&s.digest)) {
                found.push((entry.commit, s));
            }
        }
        // The working tree's file counts too (a checkout of the merge that pinned it).
        if let Some(s) = environment::read(config, e)?.filter(|s| matches(&s.digest)) {
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
        return Ok(Err(format!(
            "{wanted} was never pinned in any environment of this repository (see `mlops history {env}`): a rollback only goes to a digest that was promoted before"
        )));
    };
    let current = environment::read(config, env)?;
    if current.as_ref().is_some_and(|c| c.digest == state.digest) {
        eprintln!("mlops promote: {env} already pins {}", state.digest);
    }
    let from = current
        .map(|c| format!("`{}` (run {})", c.digest, c.run_id))
        .unwrap_or_else(|| "nothing".into());
    let rollback = state.environment == env;
    Ok(Ok(Candidate {
        title: if rollback {
            format!("Roll back {env} of {} to run {}", config.model, state.run_id)
        } else {
            format!(
                "Promote {} run {} to {env} (from {})",
                config.model, state.run_id, state.environment
            )
        },
        body: format!(
            "{} `{env}` from {from} to `{}` (run {}), as pinned in {} at {}.\n\nThe image's signature was verified again before this change was proposed.\n",
            if rollback { "Rolls back" } else { "Moves" },
            state.image,
            state.run_id,
            state.environment,
            if commit == "working tree" { commit.clone() } else { format!("commit {}", &commit[..commit.len().min(12)]) }
        ),
        reference: state.image,
        digest: state.digest,
        run_id: state.run_id,
        git_commit: state.git_commit,
        data: state.data,
        metrics: state.metrics,
        data_files: false,
    }))
}
