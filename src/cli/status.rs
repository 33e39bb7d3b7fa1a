//! `mlops status`: every environment of mlops.yaml with what is pinned there now — model,
//! digest, run, metrics, when and through which change — from the committed environment files.

use serde_json::json;

use super::{Cli, Format, Status};
use crate::{config, environment};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value = "human", env = "MLOPS_FORMAT")]
    pub format: Format,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let config = config::load(&cli.config)?;
    let mut rows = Vec::new();
    for (name, env) in &config.environments {
        let state = environment::read(&config, name)?;
        let last = environment::last_change(&config.root, name);
        let merged = last
            .as_ref()
            .and_then(|(c, _, _)| environment::merged_by(&config.root, c));
        rows.push(json!({
            "environment": name,
            "requires": env.requires,
            "state": state,
            "last_commit": last.map(|(c, a, d)| json!({"commit": c, "author": a, "date": d})),
            "merged_by": merged,
        }));
    }
    match args.format {
        Format::Json => super::print_json(&json!({ "environments": rows }))?,
        Format::Markdown | Format::Github => {
            println!("| environment | model | digest | run | metrics | promoted | change |");
            println!("|---|---|---|---|---|---|---|");
            for r in &rows {
                let s = &r["state"];
                if s.is_null() {
                    println!(
                        "| {} | – | nothing promoted yet | | | | |",
                        md(&r["environment"])
                    );
                } else {
                    println!(
                        "| {} | {} | `{}` | {} | {} | {} | {} |",
                        md(&r["environment"]),
                        md(&s["model"]),
                        short(&s["digest"]),
                        md(&s["run_id"]),
                        metrics(s, crate::text::escape_markdown),
                        md(&s["promoted_at"]),
                        match r["merged_by"]["pull_request"].as_u64() {
                            Some(n) => format!("#{n}"),
                            None => md(&s["change"]),
                        },
                    );
                }
            }
        }
        Format::Human => {
            for r in &rows {
                let s = &r["state"];
                let env = r["environment"].as_str().unwrap_or_default();
                if s.is_null() {
                    println!("{:<12} nothing promoted yet", clean(env));
                    continue;
                }
                println!(
                    "{} {} {}  run {}  {}  promoted {}{}",
                    format_args!("{:<12}", clean(env)),
                    clean(s["model"].as_str().unwrap_or_default()),
                    clean(&short(&s["digest"])),
                    clean(s["run_id"].as_str().unwrap_or_default()),
                    metrics(s, clean),
                    clean(s["promoted_at"].as_str().unwrap_or_default()),
                    match r["merged_by"]["pull_request"].as_u64() {
                        Some(n) => format!("  via pull request #{n}"),
                        None => s["change"]
                            .as_str()
                            .map(|c| format!("  via {}", clean(c)))
                            .unwrap_or_default(),
                    },
                );
            }
        }
    }
    Ok(Status::Done)
}

fn short(digest: &serde_json::Value) -> String {
    let d = digest.as_str().unwrap_or_default();
    d.get(..19).unwrap_or(d).to_string()
}

fn metrics(state: &serde_json::Value, esc: fn(&str) -> String) -> String {
    state["metrics"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{} {}", esc(k), v))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn clean(s: &str) -> String {
    crate::text::clean(s)
}

fn md(v: &serde_json::Value) -> String {
    crate::text::escape_markdown(v.as_str().unwrap_or(""))
}
