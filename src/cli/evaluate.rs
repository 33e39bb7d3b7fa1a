//! `mlops evaluate`: the challenger and, when an environment pins one, the champion, scored on
//! the same frozen test set.

use super::{block_on, step_exit, Cli, Status};
use crate::config;
use crate::runner::{self, RunnerKind};
use crate::runs;
use crate::steps::{self, ChampionEvaluation};

#[derive(Debug, clap::Args)]
#[command(
    after_help = format!("Environment (the champion's image is pulled from its registry):\n{}\n{}", super::registry::HELP, super::tracking::HELP)
)]
pub struct Args {
    /// The run to evaluate (default: the latest).
    #[arg(long = "run", value_name = "ID", env = "MLOPS_RUN_ID")]
    pub run_id: Option<String>,
    #[arg(long, value_enum, default_value = "docker", env = "MLOPS_RUNNER")]
    pub runner: RunnerKind,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let config = config::load(&cli.config)?;
    let run = runs::open(&config.root, args.run_id.as_deref())?;
    // Engine pulls get the credentials of exactly the registry they pull from.
    super::registry::settings(Some(&config))?;
    let tracker = super::tracking::tracker(&config)?;
    block_on(async {
        let runner = runner::select(args.runner).await?;
        let eval = steps::evaluate(&config, runner.as_ref(), &run).await?;
        tracker
            .evaluated(&run, crate::tracking::evaluation_outcome(&eval))
            .await?;
        if let Some(code) = step_exit("evaluation of the challenger", &eval.challenger, &run)? {
            return Ok(code);
        }
        match &eval.champion {
            None => eprintln!("no champion to score: the comparison will apply thresholds only"),
            Some(ChampionEvaluation::Recorded { env }) => {
                eprintln!("champion of {env}: using its recorded metrics")
            }
            Some(ChampionEvaluation::Reevaluated { env, result }) => {
                if let Some(code) = step_exit(
                    &format!("evaluation of the champion of {env}"),
                    result,
                    &run,
                )? {
                    return Ok(code);
                }
            }
        }
        println!("{}", run.eval_dir(runs::Side::Challenger).display());
        Ok(Status::Done)
    })
}
