//! `mlops track`: mirrors a run that already happened into MLflow — after the server was down
//! during the run, or to add `tracking:` later. Idempotent: the MLflow run is found again by
//! its tag `mlops.run_id`, the model version by its digest. Failures are errors here (exit 2):
//! the command was asked for explicitly.

use super::{block_on, Cli, Status};
use crate::tracking::recorded_outcome;
use crate::{config, runs};

#[derive(Debug, clap::Args)]
#[command(after_help = format!("Environment:\n{}", super::tracking::HELP))]
pub struct Args {
    /// The run to mirror (default: the latest).
    #[arg(long = "run", value_name = "ID", env = "MLOPS_RUN_ID")]
    pub run_id: Option<String>,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let config = config::load(&cli.config)?;
    if config.tracking.is_none() {
        anyhow::bail!(
            "{} has no tracking: section: add `tracking: {{type: mlflow, uri: http://…}}` first",
            config.file.display()
        );
    }
    let run = runs::open(&config.root, args.run_id.as_deref())?;
    let record = run.read_record()?;
    let tracker = super::tracking::tracker(&config)?.required();
    block_on(async {
        let Some(train) = record.steps.get("train") else {
            anyhow::bail!("run {} has not trained: nothing to mirror", run.id);
        };
        tracker
            .trained(&config, &run, recorded_outcome(&train.outcome))
            .await?;
        if let Some(challenger) = record.steps.get("evaluate-challenger") {
            let champion = record.steps.get("evaluate-champion");
            let outcome = match champion {
                Some(c) if challenger.outcome == "ok" => &c.outcome,
                _ => &challenger.outcome,
            };
            tracker.evaluated(&run, recorded_outcome(outcome)).await?;
        }
        if crate::outputs::present(&run.compare_json()) {
            let comparison: crate::compare::Comparison =
                crate::fsutil::read_json(&run.compare_json())?;
            tracker.compared(&run, &comparison).await?;
        }
        if crate::outputs::present(&run.package_json()) {
            let packaged = crate::oci::image::load(&run)?;
            tracker.packaged(&run, &packaged).await?;
        }
        eprintln!("mlops track: run {} is in MLflow", run.id);
        println!("{}", run.id);
        Ok(Status::Done)
    })
}
