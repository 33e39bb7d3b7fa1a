//! `mlops verify IMAGE@DIGEST --key PUB [--require-attestation]`: fails closed. Exit 0 with
//! the verified evidence as JSON on stdout; 1 when no valid signature (or attestation) exists,
//! saying why; 2 on bad input.

use std::path::PathBuf;

use anyhow::Context;

use super::{block_on, Cli, Status};
use crate::outcome::Outcome;
use crate::signing::{self, cosign};
use crate::{config, gha};

#[derive(Debug, clap::Args)]
#[command(after_help = format!("Environment:\n{}", super::registry::HELP))]
pub struct Args {
    /// IMAGE@sha256:<hex>.
    pub image: String,
    /// Public key (PEM). Default: sign.public_key in mlops.yaml.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Also require a verified attestation about this digest.
    #[arg(long)]
    pub require_attestation: bool,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let key_path = match &args.key {
        Some(k) => k.clone(),
        None => {
            let c = config::load(&cli.config)
                .context("no --key given, and no mlops.yaml to read sign.public_key from")?;
            c.sign.public_key.clone().with_context(|| {
                format!(
                    "no public key: pass --key or set sign.public_key in {}",
                    c.file.display()
                )
            })?
        }
    };
    let key = signing::verification_key(&key_path)?;
    let (image, digest) = cosign::parse_pinned(&args.image)?;
    // mlops.yaml only names the default registry for MLOPS_REGISTRY_USER here: optional.
    let config = cli
        .config
        .exists()
        .then(|| config::load(&cli.config).ok())
        .flatten();
    let settings = super::registry::settings(config.as_ref())?;
    block_on(async {
        match cosign::verify(&key, &image, &digest, args.require_attestation, &settings).await? {
            Outcome::Done(verified) => {
                eprintln!(
                    "verified {} ({} signature(s), {} attestation(s)) with {}",
                    verified.image,
                    verified.signatures,
                    verified.attestations.len(),
                    key_path.display()
                );
                super::print_json(&verified)?;
                Ok(Status::Done)
            }
            Outcome::Refused(reason) => {
                let reason = reason.as_str();
                eprintln!("verification failed: {}", crate::text::neutralise(reason));
                if gha::active() {
                    eprintln!(
                        "::error title=mlops verify::{}",
                        crate::text::escape_data(reason)
                    );
                }
                Ok(Status::Refused)
            }
        }
    })
}
