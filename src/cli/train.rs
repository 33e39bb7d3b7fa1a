//! `mlops train`: a new run directory, the training container, the run record.

use super::{block_on, step_exit, Cli, Status};
use crate::config;
use crate::runner::{self, RunnerKind};
use crate::steps;

#[derive(Debug, clap::Args)]
#[command(after_help = format!("Environment (the training image is pulled from its registry):\n{}\n{}", super::registry::HELP, super::tracking::HELP))]
pub struct Args {
    /// Override a training parameter (repeatable): --param C=0.5 --param solver=saga.
    /// (MLOPS_SET_PARAMS: one KEY=VALUE per line.)
    #[arg(
        long = "param",
        value_name = "KEY=VALUE",
        env = "MLOPS_SET_PARAMS",
        value_delimiter = '\n'
    )]
    pub params: Vec<String>,
    /// Where the step runs: docker (a container, the default) or process (this machine, to debug).
    #[arg(long, value_enum, default_value = "docker", env = "MLOPS_RUNNER")]
    pub runner: RunnerKind,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let config = config::load(&cli.config)?;
    let overrides = steps::parse_overrides(&args.params)?;
    // Engine pulls get the credentials of exactly the registry they pull from.
    super::registry::settings(Some(&config))?;
    let tracker = super::tracking::tracker(&config)?;
    block_on(async {
        let runner = runner::select(args.runner).await?;
        let (run, result) = steps::train(&config, runner.as_ref(), &overrides).await?;
        tracker.trained(&config, &run, result.outcome).await?;
        crate::gha::set_outputs(&[("run-id", run.id.as_str())])?;
        if let Some(code) = step_exit("training", &result, &run)? {
            return Ok(code);
        }
        println!("{}", run.id);
        Ok(Status::Done)
    })
}
