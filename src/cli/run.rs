//! `mlops run`: the loop on one machine — validate → data check → train → evaluate → compare →
//! package → sign — stopping at the first step that fails or gate that says no, with that
//! step's exit code. The loop is [`crate::pipeline`]; this file validates, maps the arguments
//! and prints what the loop tells.

use super::{block_on, Cli, Status};
use crate::pipeline::{self, Ended, Event, Options, Stage};
use crate::runner::RunnerKind;
use crate::{config, gha, report};

#[derive(Debug, clap::Args)]
#[command(after_help = format!("Environment:\n{}\n{}", super::registry::HELP, super::tracking::HELP))]
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
    /// Where the steps run: docker (containers, the default) or process (this machine, to debug).
    #[arg(long, value_enum, default_value = "docker", env = "MLOPS_RUNNER")]
    pub runner: RunnerKind,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    // 1. validate: every problem at once, like `mlops validate`.
    let checked = config::check(&cli.config)?;
    let Some(config) = checked.config else {
        for d in &checked.diagnostics {
            eprintln!("{}", crate::text::neutralise(&d.human()));
        }
        eprintln!(
            "mlops run: stopped at validate ({} errors)",
            checked.diagnostics.len()
        );
        return Ok(Status::Refused);
    };
    eprintln!("mlops run: validate ok");
    let options = Options {
        runner: args.runner,
        params: args.params.clone(),
        settings: super::registry::settings(Some(&config))?,
        tracker: super::tracking::tracker(&config)?,
    };
    let mut show = |event: Event<'_>| {
        match &event {
            Event::DataChecked(r) => super::notify::data_failed(&config, r),
            Event::Compared(c, _) => super::notify::rejected(&config, c),
            _ => {}
        }
        show(event)
    };
    let ended = block_on(pipeline::run(&config, &options, &mut show))?;
    Ok(match ended {
        Ended::Done(run) => {
            println!("{}", run.id);
            Status::Done
        }
        Ended::Stopped { at, run } => {
            let report = run.map(|r| r.report_md().display().to_string());
            match at {
                Stage::DataCheck => eprintln!("mlops run: stopped at data check"),
                Stage::Train => eprintln!("mlops run: stopped at train"),
                Stage::Evaluate => eprintln!("mlops run: stopped at evaluate"),
                Stage::Compare => eprintln!(
                    "mlops run: stopped at compare (reject); report: {}",
                    report.unwrap_or_default()
                ),
            }
            Status::Refused
        }
    })
}

/// Prints one event of the loop: progress on stderr, the comparison on stdout.
fn show(event: Event<'_>) -> anyhow::Result<()> {
    match event {
        Event::DataChecked(r) => {
            eprint!("{}", crate::data::check::human(r));
            if r.passed {
                eprintln!("mlops run: data check ok");
            }
        }
        Event::Started(run) => gha::set_outputs(&[("run-id", run.id.as_str())])?,
        Event::StepFailed {
            reason,
            result,
            run,
        } => super::print_step_failure(reason, result, run),
        Event::Trained(run) => eprintln!("mlops run: train ok (run {})", run.id),
        Event::Evaluated => eprintln!("mlops run: evaluate ok"),
        Event::Compared(comparison, run) => {
            print!("{}", report::human(comparison));
            if comparison.verdict == crate::compare::Verdict::Promote {
                eprintln!(
                    "mlops run: compare says promote; report: {}",
                    run.report_md().display()
                );
            }
        }
        Event::Packaged(p) => eprintln!("mlops run: package ok ({})", p.reference),
        Event::NotSigned(why) => eprintln!("mlops run: not signed ({why})"),
        Event::Signed => eprintln!("mlops run: sign ok (signature and attestations pushed)"),
    }
    Ok(())
}
