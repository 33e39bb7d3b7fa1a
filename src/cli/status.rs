//! `mlops status`: every environment of mlops.yaml with what is pinned there now — model,
//! digest, run, metrics, when and through which change — from the committed environment files.

use serde_json::json;

use super::{Cli, Format, Status};
use crate::report::human::{aligned, sig4};
use crate::text::clean;
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
                        metrics(s, crate::text::escape_markdown, |v| v.to_string()),
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
            let mut table = vec![[
                "environment",
                "pinned",
                "run",
                "metrics",
                "promoted",
                "change",
            ]
            .map(String::from)
            .to_vec()];
            for r in &rows {
                let s = &r["state"];
                let env = clean(r["environment"].as_str().unwrap_or_default());
                if s.is_null() {
                    table.push(vec![env, "nothing promoted yet".into()]);
                    continue;
                }
                let text = |key: &str| clean(s[key].as_str().unwrap_or_default());
                table.push(vec![
                    env,
                    format!("{} {}", text("model"), clean(&short(&s["digest"]))),
                    text("run_id"),
                    metrics(s, clean, |v| v.as_f64().map_or_else(|| v.to_string(), sig4)),
                    text("promoted_at"),
                    match r["merged_by"]["pull_request"].as_u64() {
                        Some(n) => format!("via pull request #{n}"),
                        None => s["change"]
                            .as_str()
                            .map(|c| format!("via {}", clean(c)))
                            .unwrap_or_default(),
                    },
                ]);
            }
            for line in aligned(&table) {
                println!("{line}");
            }
        }
    }
    Ok(Status::Done)
}

fn short(digest: &serde_json::Value) -> String {
    let d = digest.as_str().unwrap_or_default();
    d.get(..19).unwrap_or(d).to_string()
}

/// `name value, …`: names escaped by `esc`, values shown by `num` (exact, or rounded).
fn metrics(
    state: &serde_json::Value,
    esc: fn(&str) -> String,
    num: fn(&serde_json::Value) -> String,
) -> String {
    state["metrics"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{} {}", esc(k), num(v)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn md(v: &serde_json::Value) -> String {
    crate::text::escape_markdown(v.as_str().unwrap_or(""))
}
