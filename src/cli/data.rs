//! `mlops data check` and `mlops data accept`: the data gate against accepted references, and
//! accepting new references. Check: exit 0 passed, 1 a check failed, 2 unreadable data.

use anyhow::Result;

use super::{Cli, Format, Status};
use crate::data::check;
use crate::{config, gha};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Compare each dataset with its accepted reference: schema, changed content, drift.
    Check(CheckArgs),
    /// Accept the datasets as they are now: write .mlops/data/<dataset>.json (commit it).
    Accept(AcceptArgs),
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Only this dataset (a key under data: in mlops.yaml).
    #[arg(long, value_name = "NAME", env = "MLOPS_DATASET")]
    pub dataset: Option<String>,
    #[arg(long, value_enum, default_value = "human", env = "MLOPS_FORMAT")]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct AcceptArgs {
    /// Only this dataset (default: every dataset).
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<String>,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let config = config::load(&cli.config)?;
    match &args.command {
        DataCommand::Check(a) => {
            let report = check::check(&config, a.dataset.as_deref())?;
            print_report(&report, a.format)?;
            super::notify::data_failed(&config, &report);
            Ok(exit_code(&report))
        }
        DataCommand::Accept(a) => {
            for (path, r) in check::accept(&config, a.dataset.as_deref())? {
                let rel = std::path::Path::new(&path)
                    .strip_prefix(&config.root)
                    .map(|p| p.display().to_string())
                    .unwrap_or(path.clone());
                let line = format!(
                    "accepted {} ({}, {} rows, {} columns, {}) → {rel}",
                    r.dataset,
                    r.path,
                    r.profile.rows,
                    r.schema.len(),
                    r.digest
                );
                eprintln!("{}", crate::text::neutralise(&line));
            }
            Ok(Status::Done)
        }
    }
}

/// Prints the report in the chosen format; under GitHub Actions also a job summary, error
/// annotations and the `data-passed` output.
pub fn print_report(report: &check::Report, format: Format) -> Result<()> {
    match format {
        Format::Human | Format::Github => print!("{}", check::human(report)),
        Format::Json => super::print_json(report)?,
        Format::Markdown => print!("{}", check::markdown(report)),
    }
    if gha::active() || format == Format::Github {
        for d in &report.datasets {
            for m in &d.messages {
                let level = match m.level {
                    check::Level::Error => "error",
                    check::Level::Warning => "warning",
                    check::Level::Notice => "notice",
                };
                eprintln!(
                    "::{level} title=data check ({})::{}",
                    crate::text::escape_property(&d.name),
                    crate::text::escape_data(&m.text)
                );
            }
        }
    }
    if gha::active() {
        gha::append_summary(&check::markdown(report))?;
        gha::set_outputs(&[("data-passed", if report.passed { "true" } else { "false" })])?;
    }
    Ok(())
}

pub fn exit_code(report: &check::Report) -> Status {
    if report.passed {
        Status::Done
    } else {
        Status::Refused
    }
}
