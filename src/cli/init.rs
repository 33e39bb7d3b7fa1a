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
    /// The registry package.repository is in: REGISTRY/<owner>/<repo>, the repository from
    /// GITHUB_REPOSITORY or the `origin` remote.
    #[arg(long, default_value = init::DEFAULT_REGISTRY, value_name = "HOST[:PORT]")]
    pub registry: String,
}

/// `OWNER/REPO` of the project: GITHUB_REPOSITORY under Actions, else the `origin` remote.
fn github_repository(root: &std::path::Path) -> Option<String> {
    if let Some(r) = std::env::var("GITHUB_REPOSITORY")
        .ok()
        .filter(|r| r.split('/').count() == 2)
    {
        return Some(r);
    }
    let url = crate::git::run(root, &["remote", "get-url", "origin"]).ok()?;
    init::github_repository_from_remote(&url)
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
    if args.registry.contains('/') || args.registry.trim().is_empty() {
        anyhow::bail!(
            "--registry {:?}: give the registry host[:port] only (e.g. ghcr.io); the repository path comes from GITHUB_REPOSITORY or the origin remote",
            args.registry
        );
    }
    let github = github_repository(&root);
    let opts = Options {
        actions_ref,
        github: args.forge == ForgeArg::Github,
        example: args.example,
        runs_on: args.runs_on.clone(),
        deploy_runs_on: args.deploy_runs_on.clone(),
        package_repository: init::package_repository(
            &args.registry,
            github.as_deref(),
            &init::model_name(&root),
        ),
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
    next_steps(&opts, github.is_some(), &args.registry);
    Ok(Status::Done)
}

/// The closing message: what to run and which secrets to set, by their exact names.
fn next_steps(opts: &Options, has_repository: bool, registry: &str) {
    eprintln!(
        "mlops init: package.repository is {}",
        opts.package_repository
    );
    if !has_repository {
        eprintln!("  (no GITHUB_REPOSITORY and no github.com origin remote: edit package.repository's owner)");
    }
    eprintln!("next:");
    eprintln!("  1. MLOPS_SIGNING_PASSWORD=<a password> mlops sign --generate-key cosign   (cosign.key stays out of git; commit cosign.pub)");
    eprintln!("  2. mlops validate");
    if opts.github {
        eprintln!(
            "  3. set these repository secrets (Settings > Secrets and variables > Actions):"
        );
        eprintln!("       MLOPS_SIGNING_KEY       the contents of cosign.key   (gh secret set MLOPS_SIGNING_KEY < cosign.key)");
        eprintln!("       MLOPS_SIGNING_PASSWORD  its password                  (gh secret set MLOPS_SIGNING_PASSWORD)");
        if registry == init::DEFAULT_REGISTRY {
            eprintln!("     ghcr.io needs no secret: the workflows log in with GITHUB_TOKEN as github.actor");
        } else {
            eprintln!("       MLOPS_REGISTRY_PASSWORD the password or token for {registry}");
            eprintln!("     and the repository variable MLOPS_REGISTRY_USER (its user name)");
        }
        eprintln!("  4. git add -A && git commit && git push   (cosign.key is git-ignored; `mlops doctor` checks the setup)");
    } else {
        eprintln!("  3. MLOPS_SIGNING_KEY=\"$(cat cosign.key)\" mlops doctor, then mlops run");
    }
}
