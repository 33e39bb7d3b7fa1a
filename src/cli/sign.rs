//! `mlops sign`: a cosign-compatible signature of an image by digest, plus in-toto
//! attestations of the run's evidence; `--generate-key` writes a cosign key pair.

use std::path::PathBuf;

use super::{block_on, Cli, Status};
use crate::oci::reference::ImageLocation;
use crate::signing::{self, attest, cosign, Signer};
use crate::{config, fsutil, gha, oci, runs};

#[derive(Debug, clap::Args)]
#[command(
    after_help = format!("Environment:\n  MLOPS_SIGNING_KEY       the key itself, when sign.key is env:MLOPS_SIGNING_KEY (the default in `mlops init`)\n  MLOPS_SIGNING_PASSWORD  the password of the encrypted key\n{}", super::registry::HELP)
)]
pub struct Args {
    /// IMAGE@sha256:<hex> (default: the image `mlops package` made for the run).
    #[arg(env = "MLOPS_IMAGE")]
    pub image: Option<String>,
    /// Private key: a file or env:VAR (cosign's encrypted PEM; password in
    /// MLOPS_SIGNING_PASSWORD). Default: sign.key in mlops.yaml.
    #[arg(long)]
    pub key: Option<String>,
    /// The run whose evidence to attest (default: the latest, when IMAGE is not given).
    #[arg(long = "run", value_name = "ID", env = "MLOPS_RUN_ID")]
    pub run_id: Option<String>,
    /// Sign only; no attestation.
    #[arg(long, env = "MLOPS_NO_ATTEST", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_attest: bool,
    /// Write a new key pair PREFIX.key / PREFIX.pub instead of signing (PREFIX defaults to
    /// cosign, as with `cosign generate-key-pair`).
    #[arg(
        long,
        value_name = "PREFIX",
        num_args = 0..=1,
        default_missing_value = "cosign",
        conflicts_with_all = ["image", "key"]
    )]
    pub generate_key: Option<PathBuf>,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    if let Some(prefix) = &args.generate_key {
        let (key, public) = signing::generate_key_pair(prefix)?;
        eprintln!(
            "wrote {} (private, encrypted with MLOPS_SIGNING_PASSWORD) and {} (public: commit it, set sign.public_key)",
            key.display(),
            public.display()
        );
        println!("{}", public.display());
        return Ok(Status::Done);
    }
    let config = if args.image.is_some() && !cli.config.exists() {
        None
    } else {
        Some(config::load(&cli.config)?)
    };
    let signer = Signer::resolve(config.as_ref(), args.key.as_deref())?;
    let settings = super::registry::settings(config.as_ref())?;
    // The run: given, or the latest when no image is named.
    let run = match (&config, &args.run_id, &args.image) {
        (Some(c), Some(id), _) => Some(runs::open(&c.root, Some(id))?),
        (Some(c), None, None) => Some(runs::open(&c.root, None)?),
        _ => None,
    };
    let packaged = run.as_ref().map(oci::image::load).transpose()?;
    let image_text = match (&args.image, &packaged) {
        (Some(i), _) => i.clone(),
        (None, Some(p)) => p.reference.clone(),
        (None, None) => anyhow::bail!("name the image to sign: mlops sign IMAGE@sha256:<hex>"),
    };
    if ImageLocation::names_layout(&image_text) {
        anyhow::bail!(
            "{image_text} is an OCI layout on disk; signatures live in a registry: set package.repository to a registry"
        );
    }
    let (image, digest) = cosign::parse_pinned(&image_text)?;
    let name = image.name();
    let tracker = match &config {
        Some(c) => super::tracking::tracker(c)?,
        None => crate::tracking::Tracker::off(),
    };
    block_on(async {
        let outcome = cosign::sign(&signer, &image, &digest, &settings).await?;
        if outcome.added {
            eprintln!(
                "signed {name}@{digest} ({} signature(s) in {})",
                outcome.signatures, outcome.signature_tag
            );
        } else {
            eprintln!("{name}@{digest} already carries this key's signature; nothing added");
        }
        let mut record = serde_json::json!({
            "image": format!("{name}@{digest}"),
            "signature": format!("{name}:{}", outcome.signature_tag),
            "public_key": signer.public_pem,
        });
        if let (Some(run), Some(p), false) = (&run, &packaged, args.no_attest) {
            if p.digest == digest {
                let statements = attest::statements(run, p, &name)?;
                let n = cosign::attest(&signer, &image, &digest, &statements, &settings).await?;
                let tag = cosign::artifact_tag(&digest, "att");
                eprintln!("attested provenance and evaluation evidence ({n} in {tag})");
                record["attestation"] = serde_json::json!(format!("{name}:{tag}"));
            }
        }
        if let Some(run) = &run {
            fsutil::write_json_atomic(&run.sign_json(), &record)?;
        }
        let signature = format!("{name}:{}", outcome.signature_tag);
        tracker.signed(digest.as_ref(), &signature).await?;
        if gha::active() {
            gha::set_outputs(&[("image", &format!("{name}@{digest}"))])?;
        }
        println!("{name}@{digest}");
        Ok(Status::Done)
    })
}
