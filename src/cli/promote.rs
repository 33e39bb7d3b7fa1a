//! `mlops promote <env>`: pins the run's image digest in `.mlops/environments/<env>.yaml` on
//! the branch `mlops/promote/<model>/<env>`, with the report as the change's description.
//! The policy (what may be pinned, refusals, the change) is [`crate::promote`]; this file maps
//! the arguments, passes the registry and the forge in, and prints.

use std::path::Path;

use super::{block_on, Cli, ResultFormat, Status};
use crate::oci::credentials::RegistrySettings;
use crate::outcome::Outcome;
use crate::promote::{self, PromoteRequest, Signatures, Source};
use crate::signing::{self, cosign};
use crate::{config, gha};

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
    pub format: ResultFormat,
}

/// Signatures as the registry holds them, verified with cosign's conventions.
struct Registry<'a>(&'a RegistrySettings);

impl Signatures for Registry<'_> {
    fn verify(&mut self, key: &Path, image: &str) -> anyhow::Result<Outcome<()>> {
        let key = signing::verification_key(key)?;
        let (image, digest) = cosign::parse_pinned(image)?;
        let verified = block_on(cosign::verify(&key, &image, &digest, false, self.0))?;
        Ok(verified.map(|_| ()))
    }
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let config = config::load(&cli.config)?;
    let source = match (&args.digest, &args.from) {
        (Some(d), _) => Source::Digest(d.clone()),
        (None, Some(env)) => Source::From(env.clone()),
        (None, None) => Source::Run(args.run_id.clone()),
    };
    let request = PromoteRequest {
        environment: args.environment.clone(),
        source,
    };
    let settings = super::registry::settings(Some(&config))?;
    let plan = match promote::plan(&config, &request, &mut Registry(&settings))? {
        Outcome::Done(plan) => plan,
        Outcome::Refused(why) => return Ok(super::refuse("promote", "not promoted", why.as_str())),
    };
    for n in &plan.notes {
        eprintln!("mlops promote: {}", crate::text::neutralise(n));
    }
    let digest = plan.digest().to_string();
    let mut forge = super::forge::open(&config)?;
    let promoted = promote::propose(&config, plan, forge.as_mut())?;
    super::notify::proposed(&config, &promoted, args.digest.is_some());
    let (env, proposal) = (&promoted.environment, &promoted.proposal);
    for n in &proposal.notes {
        eprintln!("mlops promote: {}", crate::text::clean(n));
    }
    match &proposal.commit {
        Some(c) => eprintln!(
            "mlops promote: {digest} → {env} proposed on {} ({}); merge it to deploy",
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
        ("digest", &digest),
    ])?;
    match args.format {
        ResultFormat::Json => super::print_json(&promoted)?,
        _ => println!("{}", proposal.url),
    }
    Ok(Status::Done)
}
