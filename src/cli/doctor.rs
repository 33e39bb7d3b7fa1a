//! `mlops doctor [--checks NAME...]`: one line per check (ok / FAIL / skip) on stdout, the fix
//! under each failure; exit 0 when nothing failed, 1 when something needs fixing. The checks
//! live in `crate::doctor`; this file reads the environment and prints.

use super::{block_on, Cli, Status};
use crate::doctor::{self, Check, CheckName, Verdict};

#[derive(Debug, clap::Args)]
#[command(after_help = format!("Environment:\n  MLOPS_DOCTOR_CHECKS     the checks to run (space-separated), like --checks\n  MLOPS_SIGNING_KEY, MLOPS_SIGNING_PASSWORD  the key sign.key names and its password\n  GITHUB_TOKEN, GITHUB_API_URL, GITHUB_REPOSITORY  the github forge\n{}", super::registry::HELP))]
pub struct Args {
    /// Only these checks (default: all), e.g. --checks config engine registry
    #[arg(long, value_enum, num_args = 1.., value_delimiter = ' ', env = "MLOPS_DOCTOR_CHECKS")]
    pub checks: Vec<CheckName>,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let wanted = |c: CheckName| args.checks.is_empty() || args.checks.contains(&c);
    let mut report: Vec<Check> = Vec::new();
    let config = match crate::config::load(&cli.config) {
        Ok(c) => {
            if wanted(CheckName::Config) {
                report.push(Check {
                    name: CheckName::Config,
                    verdict: Verdict::Ok,
                    what: format!("{} is valid", cli.config.display()),
                    fix: None,
                });
            }
            Some(c)
        }
        Err(e) => {
            report.push(Check {
                name: CheckName::Config,
                verdict: Verdict::Fail,
                what: format!(
                    "{} does not validate: {}",
                    cli.config.display(),
                    first_line(&e.to_string())
                ),
                fix: Some("run `mlops validate` for every error with its line and column".into()),
            });
            None
        }
    };
    if wanted(CheckName::Engine) {
        report.push(block_on(async { Ok(doctor::engine().await) })?);
    }
    let needs_config = |c: CheckName| Check::skip(c, "needs a valid mlops.yaml");
    if wanted(CheckName::Registry) {
        report.push(match &config {
            Some(config) => {
                let settings = super::registry::settings(Some(config))?;
                block_on(async { Ok(doctor::registry(config, &settings).await) })?
            }
            None => needs_config(CheckName::Registry),
        });
    }
    if wanted(CheckName::Signing) {
        report.push(match &config {
            Some(config) => doctor::signing(config),
            None => needs_config(CheckName::Signing),
        });
    }
    if wanted(CheckName::Forge) {
        report.push(match &config {
            Some(config) => doctor::forge(config, super::forge::github_settings().ok()),
            None => needs_config(CheckName::Forge),
        });
    }
    if wanted(CheckName::Tracking) {
        report.push(match &config {
            Some(config) => doctor::tracking(config),
            None => needs_config(CheckName::Tracking),
        });
    }
    let mut failed = 0;
    for check in &report {
        let mark = match check.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        };
        let line = format!("{mark} {}: {}", check.name.label(), check.what);
        println!("{}", crate::text::neutralise(&line));
        if let Some(fix) = &check.fix {
            println!("     fix: {}", crate::text::neutralise(fix));
        }
        if check.verdict == Verdict::Fail {
            failed += 1;
            if crate::gha::active() {
                eprintln!(
                    "::error title=mlops doctor {}::{}",
                    check.name.label(),
                    crate::text::escape_data(&format!(
                        "{} — {}",
                        check.what,
                        check.fix.as_deref().unwrap_or("")
                    ))
                );
            }
        }
    }
    if failed > 0 {
        return Ok(super::refuse(
            "doctor",
            "not ready",
            &format!("{failed} check(s) failed; each FAIL line says what to do"),
        ));
    }
    Ok(Status::Done)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_check_has_a_label() {
        let labels: Vec<&str> = crate::doctor::CheckName::ALL
            .iter()
            .map(|c| c.label())
            .collect();
        assert_eq!(
            labels,
            ["config", "engine", "registry", "signing", "forge", "tracking"]
        );
    }
}
