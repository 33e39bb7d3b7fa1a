//! `mlops compare`: the champion/challenger gate. Exit 0 promote, 1 reject, 2 bad input.

use std::path::PathBuf;

use anyhow::Result;

use super::{Cli, Format, Status};
use crate::compare::{self, metrics, Inputs, Verdict};
use crate::{config, gha, report, runs};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Environment (--comment):\n  GITHUB_TOKEN            a token with pull-requests: write\n  GITHUB_API_URL, GITHUB_REPOSITORY, GITHUB_EVENT_PATH  as GitHub Actions sets them"
)]
pub struct Args {
    /// The run whose evaluation to judge (default: the latest).
    #[arg(
        long = "run",
        value_name = "ID",
        env = "MLOPS_RUN_ID",
        conflicts_with = "challenger"
    )]
    pub run_id: Option<String>,
    /// Compare two metrics.json files directly instead of a run.
    #[arg(long, value_name = "FILE")]
    pub challenger: Option<PathBuf>,
    /// The champion's metrics.json (leave out for a first run: thresholds only).
    #[arg(long, value_name = "FILE", requires = "challenger")]
    pub champion: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "human", env = "MLOPS_FORMAT")]
    pub format: Format,
    /// Also post the report as the pull request's sticky comment (one comment, found by a
    /// hidden marker and updated in place on every push). Needs the github forge.
    #[arg(long, env = "MLOPS_COMMENT", value_parser = clap::builder::FalseyValueParser::new())]
    pub comment: bool,
    /// The pull request to comment on (default: the one in $GITHUB_EVENT_PATH).
    #[arg(long, value_name = "NUMBER", env = "MLOPS_PULL_REQUEST")]
    pub pull_request: Option<u64>,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let config = config::load(&cli.config)?;
    let (comparison, run) = match &args.challenger {
        Some(chal) => {
            let challenger = metrics::load_metrics(chal)?;
            let champion = args
                .champion
                .as_deref()
                .map(metrics::load_metrics)
                .transpose()?;
            let pred = |p: &std::path::Path| p.with_file_name("predictions.csv");
            let preds = args.champion.as_ref().map(|c| (pred(chal), pred(c)));
            let c = compare::compare(
                &config,
                Inputs {
                    challenger,
                    champion,
                    predictions: preds.as_ref().map(|(a, b)| (a.as_path(), b.as_path())),
                    run_id: None,
                },
            )?;
            (c, None)
        }
        None => {
            let run = runs::open(&config.root, args.run_id.as_deref())?;
            let comparison = crate::steps::compare(&config, &run)?;
            let tracker = super::tracking::tracker(&config)?;
            super::block_on(tracker.compared(&run, &comparison))?;
            (comparison, Some(run))
        }
    };
    let markdown = report::markdown(&comparison, run.as_ref())?;
    match args.format {
        Format::Human => print!("{}", report::human(&comparison)),
        Format::Json => super::print_json(&comparison)?,
        Format::Markdown => print!("{markdown}"),
        Format::Github => print!("{}", report::github(&comparison)),
    }
    if args.comment {
        let number = match args.pull_request {
            Some(n) => n,
            None => pull_request_from_event()?,
        };
        if config.forge.kind != crate::config::ForgeKind::Github {
            anyhow::bail!(
                "--comment posts to a GitHub pull request: set `forge: {{type: github}}` in {}",
                config.file.display()
            );
        }
        let forge = super::forge::github(&config)?;
        let marker = format!("<!-- mlops:compare {} -->", config.model);
        let url = forge.sticky_comment(number, &marker, &markdown)?;
        eprintln!(
            "mlops compare: report on pull request #{number}: {}",
            crate::text::neutralise(&url)
        );
        gha::set_outputs(&[("comment-url", &url)])?;
    }
    super::notify::rejected(&config, &comparison);
    let verdict = match comparison.verdict {
        Verdict::Promote => "promote",
        Verdict::Reject => "reject",
    };
    if gha::active() {
        gha::append_summary(&markdown)?;
        let report_path = run
            .as_ref()
            .map(|r| r.report_md().display().to_string())
            .unwrap_or_default();
        gha::set_outputs(&[("verdict", verdict), ("report", &report_path)])?;
    }
    Ok(match comparison.verdict {
        Verdict::Promote => Status::Done,
        Verdict::Reject => Status::Refused,
    })
}

/// The pull request number of the workflow's event (`pull_request` / `pull_request_target`).
fn pull_request_from_event() -> Result<u64> {
    let path = std::env::var_os("GITHUB_EVENT_PATH").ok_or_else(|| {
        anyhow::anyhow!(
            "--comment needs --pull-request NUMBER (or GITHUB_EVENT_PATH of a pull_request event)"
        )
    })?;
    let event: serde_json::Value = crate::fsutil::read_json(std::path::Path::new(&path))?;
    event["pull_request"]["number"]
        .as_u64()
        .or_else(|| event["number"].as_u64())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} is not a pull_request event: pass --pull-request NUMBER",
                std::path::Path::new(&path).display()
            )
        })
}
