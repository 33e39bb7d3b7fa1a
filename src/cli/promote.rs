//! `mlops promote <env>`: pins the run's image digest in `.mlops/environments/<env>.yaml` on
//! the branch `mlops/promote/<model>/<env>`, with the report as the change's description.
//! Refuses (exit 1) without a promote verdict, a valid signature by `sign.public_key`, or —
//! for an environment with `requires` — a digest the required environment has had.
//! Running it again with nothing new makes no commit.

use std::process::ExitCode;

use anyhow::{Context, Result};
use indexmap::IndexMap;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{block_on, Cli, Format};
use crate::config::ForgeKind;
use crate::environment::{self, EnvironmentState};
use crate::forge::{self, Change};
use crate::runs::Side;
use crate::signing::{self, cosign};
use crate::{compare, config, fsutil, gha, oci, runs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An environment of mlops.yaml.
    pub environment: String,
    /// The run to promote (default: the latest).
    #[arg(long = "run", value_name = "ID", env = "MLOPS_RUN_ID")]
    pub run_id: Option<String>,
    #[arg(long, value_enum, default_value = "human", env = "MLOPS_FORMAT")]
    pub format: Format,
}

fn refuse(why: String) -> Result<ExitCode> {
    Ok(super::refuse("promote", "not promoted", &why))
}

pub fn run(cli: &Cli, args: &Args) -> Result<ExitCode> {
    let config = config::load(&cli.config)?;
    let env = args.environment.as_str();
    let env_cfg = super::environment(&config, env)?;
    let run = runs::open(&config.root, args.run_id.as_deref())?;

    // 1. The gate said promote.
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
        return refuse(format!(
            "the gate rejected run {} ({})",
            run.id,
            crate::report::clean(&reasons.join("; "))
        ));
    }

    // 2. An image pushed by digest.
    let packaged = oci::image::load(&run)?;
    if packaged.reference.starts_with("oci:") {
        anyhow::bail!(
            "run {} was packaged to an OCI layout ({}); an environment pins an image in a registry: set package.repository to one",
            run.id,
            packaged.reference
        );
    }

    // 3. `requires`: the digest has been in the required environment.
    if let Some(required) = &env_cfg.requires {
        let had = environment::history(&config.root, required)?
            .iter()
            .filter_map(|e| e.state.as_ref())
            .chain(environment::read(&config.root, required)?.as_ref())
            .any(|s| s.digest == packaged.digest);
        if !had {
            return refuse(format!(
                "{env} requires {required}, and {} has never been in {required}: promote it there and merge that first",
                packaged.digest
            ));
        }
    }

    // 4. A valid signature of exactly that digest, by the configured key.
    let key_path = config.sign.public_key.clone().with_context(|| {
        format!(
            "sign.public_key is not set in {}: promote verifies the image's signature before pinning its digest",
            config.file.display()
        )
    })?;
    let key = signing::verification_key(&key_path)?;
    let pem = std::fs::read(&key_path)?;
    let (image, digest) = cosign::parse_pinned(&packaged.reference)?;
    let verified = block_on(async {
        match cosign::verify(&key, &image, &digest, false).await? {
            Ok(_) => Ok(ExitCode::SUCCESS),
            Err(why) => refuse(why),
        }
    })?;
    if verified != ExitCode::SUCCESS {
        return Ok(verified);
    }

    // 5. The desired state, proposed on the promotion branch.
    let record = run.read_record()?;
    let metrics: IndexMap<String, f64> =
        compare::metrics::load_metrics(&run.metrics(Side::Challenger)).unwrap_or_default();
    let trailer = format!("Mlops-Promotion: {}/{env}", config.model);
    let wanted = format!("mlops/promote/{}/{env}", config.model);
    let (branch, _) =
        forge::local::available_branch(&config.root, &config.forge.base, &wanted, &trailer)?;
    let rel = format!("{}/{env}.yaml", environment::ENVIRONMENTS_DIR);
    // The same run again keeps its first promotion time, so an unchanged promotion is a no-op.
    let previous = forge::local::read_on_branch(&config.root, &branch, &rel)
        .and_then(|t| environment::parse(&t).ok())
        .filter(|s| s.digest == packaged.digest && s.run_id == run.id);
    let state = EnvironmentState {
        environment: env.to_string(),
        model: config.model.clone(),
        image: packaged.reference.clone(),
        digest: packaged.digest.clone(),
        signature: Some(format!("sha256:{}", hex::encode(Sha256::digest(&pem)))),
        run_id: run.id.clone(),
        git_commit: record.git.commit.clone(),
        data: record
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.digest.clone()))
            .collect(),
        metrics,
        promoted_at: previous
            .map(|p| p.promoted_at)
            .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        model_dir: None,
        change: Some(branch.clone()),
    };
    let mut files = vec![(rel, environment::render(&state)?.into_bytes())];
    // Data references accepted for this run travel in the same change.
    let data_dir = config.root.join(".mlops/data");
    if let Ok(entries) = std::fs::read_dir(&data_dir) {
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
            files.push((format!(".mlops/data/{name}"), std::fs::read(&p)?));
        }
    }
    let body = std::fs::read_to_string(run.report_md()).unwrap_or_default();
    let change = Change {
        branch: wanted,
        base: config.forge.base.clone(),
        files,
        title: format!("Promote {} run {} to {env}", config.model, run.id),
        body: crate::report::defuse(&format!(
            "Pins `{}` in `{env}`.\n\n{body}",
            packaged.reference
        )),
        trailer,
    };
    let proposal = match config.forge.kind {
        ForgeKind::Local => forge::local::propose(&config.root, &change)?,
        other => anyhow::bail!(
            "forge.type {other:?} is not available in this build yet; use `forge: {{type: local}}` (a branch in this repository)"
        ),
    };
    for n in &proposal.notes {
        eprintln!("mlops promote: {n}");
    }
    match &proposal.commit {
        Some(c) => eprintln!(
            "mlops promote: {} → {env} proposed on {} ({}); merge it to deploy",
            packaged.digest,
            proposal.branch,
            &c[..12]
        ),
        None => eprintln!(
            "mlops promote: nothing new to propose on {}",
            proposal.branch
        ),
    }
    gha::set_outputs(&[("promotion-branch", &proposal.branch)])?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"environment": env, "state": state, "proposal": proposal})
            )?
        ),
        _ => println!("{}", proposal.url),
    }
    Ok(ExitCode::SUCCESS)
}
