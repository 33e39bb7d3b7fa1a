//! `mlops validate`: every problem in mlops.yaml, sorted by position.

use super::{Cli, Status};
use crate::config;
use crate::diagnostic::Diagnostic;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// human (file:line:col), json (a list), github (workflow annotations).
    #[arg(long, value_enum, default_value = "human", env = "MLOPS_FORMAT")]
    pub format: ValidateFormat,
}

/// What validate renders (no markdown: a list of diagnostics is not a report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ValidateFormat {
    Human,
    Json,
    Github,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let checked = config::check(&cli.config)?;
    let diags = &checked.diagnostics;
    let errors = diags
        .iter()
        .filter(|d| d.severity == crate::diagnostic::Severity::Error)
        .count();
    match args.format {
        ValidateFormat::Json => {
            super::print_json(&serde_json::json!({
                "file": cli.config.display().to_string(),
                "valid": errors == 0,
                "diagnostics": diags,
            }))?;
        }
        ValidateFormat::Github => {
            for d in diags {
                println!("{}", d.github());
            }
            if errors == 0 {
                println!("{} is valid", cli.config.display());
            }
        }
        ValidateFormat::Human => {
            for d in diags {
                println!("{}", crate::text::neutralise(&d.human()));
            }
            if errors == 0 {
                println!("{} is valid", cli.config.display());
            } else {
                println!("{}", summary(errors, diags));
            }
        }
    }
    Ok(if errors == 0 {
        Status::Done
    } else {
        Status::Refused
    })
}

fn summary(errors: usize, diags: &[Diagnostic]) -> String {
    let file = diags
        .first()
        .map(|d| d.file.as_str())
        .unwrap_or("mlops.yaml");
    format!(
        "{file}: {errors} error{}",
        if errors == 1 { "" } else { "s" }
    )
}
