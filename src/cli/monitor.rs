//! `mlops monitor <env>`: checks what the deployed model served in the window (see
//! [`crate::monitor`]), writes monitor.json and report.md under `.mlops/monitor/<env>/`, prints
//! the report, then hands the result to the incident side (`on_alert`). Exit 0 healthy (and
//! "not enough data", which is neither a pass nor an alert: the report and the `health` output
//! say which), 1 alert, 2 the monitor could not run. A failure of an `on_alert` action is a
//! warning and never changes the exit code.

use chrono::{DateTime, Utc};

use super::{Cli, Status};
use crate::monitor::{self, Health};
use crate::{config, gha};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MonitorFormat {
    Human,
    Json,
    Markdown,
    Github,
    /// The node-exporter textfile format (write it to the collector's directory).
    Prometheus,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = format!("Environment (on_alert with the github forge):\n  GITHUB_TOKEN            a token with issues: write and contents: write (repository_dispatch)\n  GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_INSTALLATION_ID  or a GitHub App instead\n  GITHUB_API_URL          the API (GitHub Enterprise; default https://api.github.com)\n{}", super::notify::HELP)
)]
pub struct Args {
    /// An environment of mlops.yaml with a `monitor:` block.
    #[arg(env = "MLOPS_ENVIRONMENT")]
    pub environment: String,
    /// Start of the window instead of monitor.window: a duration back from now (24h, 3d) or an
    /// RFC 3339 time.
    #[arg(long, value_name = "D", env = "MLOPS_SINCE")]
    pub since: Option<String>,
    #[arg(long, value_enum, default_value = "human", env = "MLOPS_FORMAT")]
    pub format: MonitorFormat,
    /// Local forge: on an alert with on_alert retrain, run `mlops run` and `mlops promote <env>`
    /// at once instead of only recording the trigger.
    #[arg(long)]
    pub run: bool,
}

fn since(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = config::units::parse_duration(text).map_err(|e| {
        anyhow::anyhow!("--since: {e}, or an RFC 3339 time such as 2026-12-01T00:00:00Z")
    })?;
    Ok(now - chrono::Duration::from_std(d)?)
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let config = config::load(&cli.config)?;
    let now = Utc::now();
    let request = monitor::Request {
        environment: &args.environment,
        since: args.since.as_deref().map(|s| since(s, now)).transpose()?,
        now,
    };
    let report = monitor::run(&config, &request)?;
    let dir = monitor::save(&config.root, &report)?;
    match args.format {
        MonitorFormat::Human | MonitorFormat::Github => {
            print!("{}", monitor::render::human(&report))
        }
        MonitorFormat::Json => super::print_json(&report)?,
        MonitorFormat::Markdown => print!("{}", monitor::render::markdown(&report)),
        MonitorFormat::Prometheus => print!("{}", monitor::render::prometheus(&report)),
    }
    let summary = report.summary();
    if gha::active() || args.format == MonitorFormat::Github {
        let level = if report.health == Health::Alert {
            "error"
        } else {
            "notice"
        };
        for reason in &report.reasons {
            eprintln!(
                "::{level} title=monitor ({})::{}",
                crate::text::escape_property(&report.environment),
                crate::text::escape_data(reason)
            );
        }
    }
    if gha::active() {
        gha::append_summary(&summary.report_markdown)?;
        let health = match report.health {
            Health::Healthy => "healthy",
            Health::Alert => "alert",
            Health::NotEnoughData => "not_enough_data",
        };
        let report_md = dir.join("report.md");
        gha::set_outputs(&[("health", health), ("report", &report_md.to_string_lossy())])?;
    }
    for warning in alert(&config, &summary, dir, args.run)? {
        eprintln!("warning: {}", crate::text::neutralise(&warning));
    }
    Ok(match report.health {
        Health::Alert => Status::Refused,
        Health::Healthy | Health::NotEnoughData => Status::Done,
    })
}

/// Hands the result to [`crate::incident::handle`] (through [`super::incident::alert`], which
/// opens the forge and the webhooks only when `on_alert` needs them); its failures come back as
/// warnings, except configuration errors (exit 2).
fn alert(
    config: &config::Config,
    summary: &monitor::Summary,
    state_dir: std::path::PathBuf,
    run_now: bool,
) -> anyhow::Result<Vec<String>> {
    super::incident::alert(config, summary, state_dir, run_now)
}
