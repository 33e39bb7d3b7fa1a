//! `mlops package`: the run's model as an OCI image on the serving base, pushed by digest
//! (or written to an OCI layout). Prints `registry/repository@sha256:…` on stdout.

use anyhow::Result;

use super::{block_on, Cli, ResultFormat, Status};
use crate::{config, gha, oci, runs};

#[derive(Debug, clap::Args)]
#[command(
    after_help = format!("Environment:\n{}\n{}", super::registry::HELP, super::tracking::HELP)
)]
pub struct Args {
    /// The run whose model to package (default: the latest).
    #[arg(long = "run", value_name = "ID", env = "MLOPS_RUN_ID")]
    pub run_id: Option<String>,
    #[arg(long, value_enum, default_value = "human", env = "MLOPS_FORMAT")]
    pub format: ResultFormat,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let config = config::load(&cli.config)?;
    let run = runs::open(&config.root, args.run_id.as_deref())?;
    let settings = super::registry::settings(Some(&config))?;
    let tracker = super::tracking::tracker(&config)?;
    let packaged = block_on(async {
        let p = crate::steps::package(&config, &run, &settings).await?;
        tracker.packaged(&run, &p).await?;
        print(&p, args.format)?;
        Ok(Status::Done)
    });
    packaged
}

fn print(p: &oci::image::Packaged, format: ResultFormat) -> Result<()> {
    match format {
        ResultFormat::Json => super::print_json(p)?,
        _ => {
            eprintln!(
                "packaged run {} → {} ({:.1} MiB, model layer {:.1} MiB, {:.1} MiB uploaded)",
                p.tag,
                p.reference,
                p.size as f64 / 1048576.0,
                p.model_layer.size as f64 / 1048576.0,
                p.uploaded_bytes as f64 / 1048576.0
            );
            println!("{}", p.reference);
        }
    }
    if gha::active() {
        gha::set_outputs(&[
            ("image", p.reference.as_str()),
            ("digest", p.digest.as_str()),
        ])?;
    }
    Ok(())
}
