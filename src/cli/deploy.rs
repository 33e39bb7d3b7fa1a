//! `mlops deploy <env>` (run on merge): reads `.mlops/environments/<env>.yaml`, verifies the
//! signature of exactly that digest (never a tag), then deploys per `deploy.target`. The same
//! digest twice is a no-op. Exit 1 when the signature does not verify or the new version is
//! unhealthy (the previous one keeps serving); 2 when the tool could not do its job.

use std::time::Duration;

use anyhow::Context;

use super::{block_on, Cli, ResultFormat, Status};
use crate::config::DeployConfig;
use crate::outcome::Outcome;
use crate::signing::{self, cosign};
use crate::{config, deploy, environment, gha, runs};

#[derive(Debug, clap::Args)]
#[command(
    after_help = format!("Environment:\n{}\n{}\n{}", super::registry::HELP, super::notify::HELP, super::tracking::HELP)
)]
pub struct Args {
    /// An environment of mlops.yaml.
    #[arg(env = "MLOPS_ENVIRONMENT")]
    pub environment: String,
    /// How long the new version has to answer its health check.
    #[arg(
        long,
        default_value = "60",
        value_name = "SECONDS",
        env = "MLOPS_HEALTH_TIMEOUT"
    )]
    pub health_timeout: u64,
    #[arg(long, value_enum, default_value = "human", env = "MLOPS_FORMAT")]
    pub format: ResultFormat,
}

fn refuse(why: &str) -> Status {
    super::refuse("deploy", "not deployed", why)
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let config = config::load(&cli.config)?;
    let env = args.environment.as_str();
    let env_cfg = super::environment(&config, env)?;
    let state = environment::read(&config, env)?.with_context(|| {
        format!(
            "nothing is promoted to {env}: {} does not exist (merge a promotion first)",
            environment::path(&config.root, env).display()
        )
    })?;
    if state.environment != env {
        anyhow::bail!(
            "{} says it is environment {:?}: the file was copied or edited by hand; fix `environment:`",
            environment::path(&config.root, env).display(),
            state.environment
        );
    }
    let (image, digest) = cosign::parse_pinned(&state.image)?;
    if digest != state.digest {
        anyhow::bail!(
            "{}: image {} and digest {} disagree; the environment file was edited by hand?",
            environment::path(&config.root, env).display(),
            state.image,
            state.digest
        );
    }
    let key_path = config.sign.public_key.clone().with_context(|| {
        format!(
            "sign.public_key is not set in {}: deploy runs only what verifies with it",
            config.file.display()
        )
    })?;
    let key = signing::verification_key(&key_path)?;
    let container_port = config.package.as_ref().and_then(|p| p.port).unwrap_or(8080);
    let log = runs::runs_root(&config.root).join(format!("deploy-{env}.log"));
    let timeout = Duration::from_secs(args.health_timeout);
    // The signature check and the engine's pull both use these.
    let settings = super::registry::settings(Some(&config))?;
    let tracker = super::tracking::tracker(&config)?;
    // What the deploy came to, for the `deploy` event: the URL, or why not; None: it already
    // ran that digest (nothing happened, nothing to tell).
    let mut told = Some(Err("it stopped before deploying".to_string()));
    let ended = block_on(async {
        if let Outcome::Refused(why) =
            cosign::verify(&key, &image, &digest, false, &settings).await?
        {
            told = Some(Err(why.as_str().to_string()));
            return Ok(refuse(why.as_str()));
        }
        let outcome = match &env_cfg.deploy {
            DeployConfig::Docker { host, port, health } => {
                let target = deploy::docker::Target {
                    host,
                    port: *port,
                    health,
                    container_port,
                    health_timeout: timeout,
                    capture: env_cfg.capture.as_deref(),
                };
                deploy::docker::deploy(&state, &target, &log).await?
            }
            DeployConfig::Kubernetes {
                template,
                output,
                apply,
            } => Outcome::Done(deploy::kubernetes::deploy(
                &state,
                template,
                output,
                *apply,
                container_port,
                env_cfg.capture.as_deref(),
            )?),
            DeployConfig::Command { command } => {
                let record = runs::runs_root(&config.root).join(format!("deploy-{env}.json"));
                deploy::command::deploy(
                    &state,
                    command,
                    &config.root,
                    &record,
                    env_cfg.capture.as_deref(),
                )?
            }
        };
        let deployed = match outcome {
            Outcome::Done(d) => d,
            Outcome::Refused(why) => {
                told = Some(Err(why.as_str().to_string()));
                return Ok(refuse(why.as_str()));
            }
        };
        told = (deployed.action != "unchanged").then(|| Ok(deployed.url.clone()));
        match deployed.action {
            "unchanged" => eprintln!(
                "mlops deploy: {env} already runs {} ({}): nothing to do",
                deployed.digest, deployed.container
            ),
            _ => eprintln!(
                "mlops deploy: {env} now runs {} at {}{}",
                deployed.digest,
                deployed.url,
                if deployed.replaced.is_empty() {
                    String::new()
                } else {
                    format!(" (replaced {})", deployed.replaced.join(", "))
                }
            ),
        }
        tracker.deployed(env, deployed.digest.as_ref()).await?;
        gha::set_outputs(&[("digest", deployed.digest.as_str()), ("url", &deployed.url)])?;
        match args.format {
            ResultFormat::Json => super::print_json(&deployed)?,
            _ => println!("{}", deployed.url),
        }
        Ok(Status::Done)
    });
    super::notify::deploy_ended(&config, env, state.digest.as_str(), &ended, told);
    ended
}
