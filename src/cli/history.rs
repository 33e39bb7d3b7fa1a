//! `mlops history <env>`: every promotion, rollback and removal of an environment, newest
//! first, from the git log of `.mlops/environments/<env>.yaml` — the record of what ran where.

use super::{Cli, Format, Status};
use crate::config;
use crate::environment::{self, ChangeKind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An environment of mlops.yaml.
    pub environment: String,
    #[arg(long, value_enum, default_value = "human", env = "MLOPS_FORMAT")]
    pub format: Format,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let config = config::load(&cli.config)?;
    super::environment(&config, &args.environment)?;
    let entries = environment::history(&config.root, &args.environment)?;
    match args.format {
        Format::Json => super::print_json(&serde_json::json!({
            "environment": args.environment,
            "changes": entries,
        }))?,
        Format::Markdown | Format::Github => {
            println!("| when | change | digest | run | commit | by |");
            println!("|---|---|---|---|---|---|");
            for e in &entries {
                let (digest, run) = e
                    .state
                    .as_ref()
                    .map(|s| (s.digest.as_str(), s.run_id.as_str()))
                    .unwrap_or(("–", "–"));
                println!(
                    "| {} | {} | `{}` | {} | {} | {} |",
                    crate::text::escape_markdown(&e.date),
                    kind(e.kind),
                    crate::text::escape_markdown(digest.get(..19).unwrap_or(digest)),
                    crate::text::escape_markdown(run),
                    &e.commit[..e.commit.len().min(12)],
                    crate::text::escape_markdown(&e.author),
                );
            }
        }
        Format::Human => {
            if entries.is_empty() {
                println!(
                    "{}: nothing promoted yet (no commit touches {})",
                    crate::text::clean(&args.environment),
                    environment::path(&config.root, &args.environment).display()
                );
            }
            let mut table = vec![
                ["when", "change", "pinned", "run", "commit", "by", "subject"]
                    .map(String::from)
                    .to_vec(),
            ];
            for e in &entries {
                let (pinned, run) = match &e.state {
                    Some(s) => (format!("{} {}", s.model, s.digest), s.run_id.clone()),
                    None => ("environment file removed".to_string(), String::new()),
                };
                table.push(vec![
                    crate::text::clean(&e.date),
                    kind(e.kind).to_string(),
                    crate::text::clean(&pinned),
                    crate::text::clean(&run),
                    e.commit[..e.commit.len().min(12)].to_string(),
                    crate::text::clean(&e.author),
                    crate::text::clean(&e.subject),
                ]);
            }
            if !entries.is_empty() {
                for line in crate::report::human::aligned(&table) {
                    println!("{line}");
                }
            }
        }
    }
    Ok(Status::Done)
}

fn kind(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Promotion => "promotion",
        ChangeKind::Rollback => "rollback",
        ChangeKind::Update => "update",
        ChangeKind::Removed => "removed",
    }
}
