//! `mlops init [--forge github|local] [--example] [--check]`: writes mlops.yaml (a skeleton or
//! the churn example) and, for the github forge, the CI, promote and deploy workflows with every
//! action pinned by SHA. Existing files are never overwritten without --force; --check exits 1
//! when the workflows drifted from the templates.

use anyhow::Context;

use super::{Cli, Status};
use crate::init::{self, Action, Options};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ForgeArg {
    Github,
    Local,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where promotions are proposed: github (pull requests, and the workflows) or local.
    #[arg(long, value_enum, default_value = "github")]
    pub forge: ForgeArg,
    /// The churn example (code, data, mlops.yaml) instead of a skeleton mlops.yaml.
    #[arg(long)]
    pub example: bool,
    /// Compare the workflows with the templates; exit 1 on drift, write nothing.
    #[arg(long)]
    pub check: bool,
    /// Overwrite files that differ from the templates.
    #[arg(long, conflicts_with = "check")]
    pub force: bool,
    /// mlops' actions as OWNER/REPO@<commit SHA> (default: the commit this binary was built
    /// from; with --check, the one the workflows pin).
    #[arg(long, value_name = "OWNER/REPO@SHA", env = "MLOPS_ACTIONS_REF")]
    pub actions_ref: Option<String>,
    /// Runner label for training jobs.
    #[arg(long, default_value = "ubuntu-latest", value_name = "LABEL")]
    pub runs_on: String,
    /// Runner label for deploy jobs (a docker target deploys on that machine).
    #[arg(long, default_value = "ubuntu-latest", value_name = "LABEL")]
    pub deploy_runs_on: String,
}

pub fn run(cli: &Cli, args: &Args) -> super::Exit {
    let root = match cli.config.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.to_path_buf(),
        None => std::env::current_dir()?,
    };
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let actions_ref = match &args.actions_ref {
        Some(r) => r.clone(),
        None => {
            let pinned = args.check.then(|| init::pinned_in(&root)).flatten();
            match pinned.or_else(|| {
                init::build_commit().map(|c| format!("{}@{c}", init::ACTIONS_REPOSITORY))
            }) {
                Some(r) => r,
                None => anyhow::bail!(
                    "this mlops was not built from a git checkout, so it cannot name the commit of its actions: pass --actions-ref OWNER/REPO@<commit SHA>"
                ),
            }
        }
    };
    let opts = Options {
        actions_ref,
        github: args.forge == ForgeArg::Github,
        example: args.example,
        runs_on: args.runs_on.clone(),
        deploy_runs_on: args.deploy_runs_on.clone(),
        owner: std::env::var("GITHUB_REPOSITORY")
            .ok()
            .and_then(|r| r.split('/').next().map(str::to_string)),
    };
    let files = init::plan(&root, &opts)?;
    if args.check {
        let drift = init::check(&root, &files);
        if drift.is_empty() {
            eprintln!("mlops init --check: the workflows match the templates");
            return Ok(Status::Done);
        }
        for (where_, what) in &drift {
            println!("{where_}: {what}");
        }
        return Ok(super::refuse(
            "init",
            "drift",
            &format!(
                "{} workflow file(s) differ from the templates; `mlops init --force` rewrites them",
                drift.len()
            ),
        ));
    }
    let mut kept = 0;
    for (path, outcome) in init::write(&root, &files, args.force)? {
        let rel = path.strip_prefix(&root).unwrap_or(&path).display();
        match outcome {
            Action::Written => println!("wrote {rel}"),
            Action::Unchanged => println!("unchanged {rel}"),
            Action::Appended(n) => println!("appended {n} line(s) to {rel}"),
            Action::Kept => {
                kept += 1;
                println!("kept {rel} (differs from the template; --force overwrites it)")
            }
        }
    }
    if kept > 0 {
        eprintln!("mlops init: {kept} existing file(s) left as they were");
    }
    eprintln!("mlops init: next, `mlops validate`, then `mlops sign --generate-key cosign` and store cosign.key and its password as the secrets MLOPS_SIGNING_KEY and MLOPS_SIGNING_PASSWORD");
    Ok(Status::Done)
}
