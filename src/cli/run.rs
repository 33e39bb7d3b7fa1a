//! `mlops run`: the loop on one machine — validate → train → evaluate → compare — stopping at
//! the first step that fails or gate that says no, with that step's exit code.

use std::process::ExitCode;

use anyhow::Result;

use super::{block_on, step_exit, Cli, EXIT_REJECTED};
use crate::compare::{self, Verdict};
use crate::runner::{self, steps};
use crate::{config, report};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Override a training parameter (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    #[arg(long, value_parser = ["docker", "process"], default_value = "docker", env = "MLOPS_RUNNER")]
    pub runner: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<ExitCode> {
    // 1. validate: every problem at once, like `mlops validate`.
    let checked = config::check(&cli.config)?;
    let Some(config) = checked.config else {
        for d in &checked.diagnostics {
            eprintln!("{}", d.human());
        }
        eprintln!(
            "mlops run: stopped at validate ({} errors)",
            checked.diagnostics.len()
        );
        return Ok(ExitCode::from(EXIT_REJECTED));
    };
    eprintln!("mlops run: validate ok");
    let overrides = steps::parse_overrides(&args.params)?;
    block_on(async {
        let runner = runner::select(&args.runner).await?;
        // 2. train
        let (run, trained) = steps::train(&config, runner.as_ref(), &overrides).await?;
        crate::gha::set_outputs(&[("run-id", run.id.as_str())])?;
        if let Some(code) = step_exit("training", &trained, &run) {
            eprintln!("mlops run: stopped at train");
            return Ok(code);
        }
        eprintln!("mlops run: train ok (run {})", run.id);
        // 3. evaluate
        let eval = steps::evaluate(&config, runner.as_ref(), &run).await?;
        if let Some(code) = step_exit("evaluation of the challenger", &eval.challenger, &run) {
            eprintln!("mlops run: stopped at evaluate");
            return Ok(code);
        }
        if let Some(steps::ChampionEvaluation::Reevaluated { env, result }) = &eval.champion {
            if let Some(code) = step_exit(
                &format!("evaluation of the champion of {env}"),
                result,
                &run,
            ) {
                eprintln!("mlops run: stopped at evaluate");
                return Ok(code);
            }
        }
        eprintln!("mlops run: evaluate ok");
        // 4. compare
        let comparison = compare::compare_run(&config, &run)?;
        print!("{}", report::human(&comparison));
        Ok(match comparison.verdict {
            Verdict::Promote => {
                eprintln!(
                    "mlops run: compare says promote; report: {}",
                    run.report_md().display()
                );
                println!("{}", run.id);
                ExitCode::SUCCESS
            }
            Verdict::Reject => {
                eprintln!(
                    "mlops run: stopped at compare (reject); report: {}",
                    run.report_md().display()
                );
                ExitCode::from(EXIT_REJECTED)
            }
        })
    })
}
