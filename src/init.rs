//! `mlops init`: the files a repository needs — mlops.yaml (a skeleton, or the churn example
//! with its code and data) and three GitHub workflows rendered from `templates/init/`. Workflows
//! pin every action by commit SHA; `--check` compares the workflows with what the templates
//! render now and reports drift. The templates use `__NAME__` placeholders rather than
//! minijinja, whose `{{ }}` would collide with GitHub's `${{ }}` expressions on every line; a
//! placeholder left unfilled is an error, as minijinja's strict undefined would be. It also
//! writes a `.gitignore` and a `.dockerignore` that keep `cosign.key` and `.mlops/runs/` out
//! of commits and images; existing ones only gain the lines they lack.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// actions/checkout v4.2.2.
pub const CHECKOUT: &str = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2";
/// Where mlops' own actions live.
pub const ACTIONS_REPOSITORY: &str = "mlops-dev/mlops";

const CI: &str = include_str!("../templates/init/mlops-ci.yml");
const PROMOTE: &str = include_str!("../templates/init/mlops-promote.yml");
const DEPLOY: &str = include_str!("../templates/init/mlops-deploy.yml");
const MONITOR: &str = include_str!("../templates/init/mlops-monitor.yml");
const SKELETON: &str = include_str!("../templates/init/mlops.yaml");
const K8S: &str = include_str!("../fixtures/churn/templates/k8s/deployment.yaml.j2");
const GITIGNORE: &str = include_str!("../templates/init/gitignore");
const DOCKERIGNORE: &str = include_str!("../templates/init/dockerignore");
const TRAIN_DOCKERFILE: &str = include_str!("../templates/init/train.Dockerfile");
const SERVE_DOCKERFILE: &str = include_str!("../templates/init/serve.Dockerfile");
const REQUIREMENTS: &str = include_str!("../templates/init/requirements.txt");
/// The serving runtime: the same file the test images are built with (one source of truth).
const SERVE_PY: &str = include_str!("../fixtures/serve/serve.py");
/// The registry the generated project pushes to unless `--registry` says otherwise.
pub const DEFAULT_REGISTRY: &str = "ghcr.io";
/// What the example adds to the .gitignore.
const EXAMPLE_GITIGNORE: &str = include_str!("../fixtures/churn/.gitignore");

/// The churn example: (path, content).
const EXAMPLE: &[(&str, &[u8])] = &[
    ("mlops.yaml", include_bytes!("../fixtures/churn/mlops.yaml")),
    ("train.py", include_bytes!("../fixtures/churn/train.py")),
    (
        "evaluate.py",
        include_bytes!("../fixtures/churn/evaluate.py"),
    ),
    (
        "data/train.csv",
        include_bytes!("../fixtures/churn/data/train.csv"),
    ),
    (
        "data/test.csv",
        include_bytes!("../fixtures/churn/data/test.csv"),
    ),
];

pub const WORKFLOWS: &[&str] = &[
    ".github/workflows/mlops-ci.yml",
    ".github/workflows/mlops-promote.yml",
    ".github/workflows/mlops-deploy.yml",
    ".github/workflows/mlops-monitor.yml",
];

#[derive(Debug, Clone)]
pub struct Options {
    /// `owner/name@<40 hex>` of mlops' actions.
    pub actions_ref: String,
    pub github: bool,
    pub example: bool,
    pub runs_on: String,
    pub deploy_runs_on: String,
    /// `package.repository`: `<registry>/<owner>/<repo>`, see [`package_repository`].
    pub package_repository: String,
}

/// `OWNER/REPO` of a GitHub remote URL (`https://github.com/o/r(.git)`, `git@github.com:o/r`,
/// `ssh://git@github.com/o/r`); None for anything else.
pub fn github_repository_from_remote(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = [
        "https://github.com/",
        "http://github.com/",
        "ssh://git@github.com/",
        "git@github.com:",
    ]
    .iter()
    .find_map(|p| url.strip_prefix(p))?;
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let (owner, name) = rest.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    (ok(owner) && ok(name)).then(|| format!("{owner}/{name}"))
}

/// `package.repository` for a project: `<registry>/<owner>/<repo>` lowercased (OCI names are
/// lowercase; GitHub names are not), or `<registry>/your-org/<model>` without a repository.
pub fn package_repository(registry: &str, github: Option<&str>, model: &str) -> String {
    let registry = registry.trim().trim_end_matches('/');
    let path = match github.filter(|r| r.contains('/')) {
        Some(r) => r.to_ascii_lowercase(),
        None => format!("your-org/{model}"),
    };
    format!("{registry}/{path}")
}

/// The model name of a project directory (mlops.yaml's `model:` rule: a lowercase letter
/// first, so `.tmpXYZ` gives `tmpxyz`).
pub fn model_name(root: &Path) -> String {
    root.file_name()
        .and_then(|n| n.to_str())
        .map(sanitize)
        .map(|m| {
            m.trim_start_matches(|c: char| !c.is_ascii_lowercase())
                .trim_end_matches(['-', '_'])
                .to_string()
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "model".into())
}

/// The example's mlops.yaml made to run anywhere: the fixture names the test machine's local
/// images and registry; the example builds its images from the Dockerfiles init writes.
fn example_config(fixture: &str, repository: &str, forge: &str) -> Result<String> {
    let swaps = [
        (
            "  image: mlops-test/python-sklearn\n",
            "  build: {context: ., dockerfile: train.Dockerfile}\n".to_string(),
        ),
        (
            "  repository: 127.0.0.1:5000/acme/churn\n",
            format!("  repository: {repository}\n"),
        ),
        (
            "  base_image: 127.0.0.1:5000/acme/serve-sklearn:1\n",
            "  dockerfile: serve.Dockerfile\n".to_string(),
        ),
        (
            "  key: env:MLOPS_SIGNING_KEY\n",
            "  key: env:MLOPS_SIGNING_KEY\n  public_key: cosign.pub\n".to_string(),
        ),
        ("forge:\n  type: local", format!("forge:\n  type: {forge}")),
    ];
    let mut text = fixture.to_string();
    for (from, to) in swaps {
        if !text.contains(from) {
            bail!("the example's mlops.yaml no longer has {from:?}: update init::example_config");
        }
        text = text.replacen(from, &to, 1);
    }
    Ok(text)
}

/// One file `init` would write.
#[derive(Debug, Clone)]
pub struct Planned {
    pub path: String,
    pub content: Vec<u8>,
    /// Workflows are ours to keep in sync; mlops.yaml and the example are the user's.
    pub managed: bool,
    /// Ignore files: an existing one gains the lines it lacks, and is never replaced.
    pub merge: bool,
}

/// The commit this binary was built from, when built from a git checkout.
pub fn build_commit() -> Option<&'static str> {
    option_env!("MLOPS_BUILD_COMMIT").filter(|c| is_sha(c))
}

fn is_sha(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Checks `owner/name@sha`.
pub fn parse_actions_ref(s: &str) -> Result<(String, String)> {
    let Some((repo, sha)) = s.split_once('@') else {
        bail!("--actions-ref {s:?}: expected OWNER/REPO@<40-hex commit SHA>");
    };
    let valid_repo = repo.split('/').count() == 2
        && repo
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if !valid_repo {
        bail!("--actions-ref {s:?}: {repo:?} is not OWNER/REPO");
    }
    if !is_sha(sha) {
        bail!("--actions-ref {s:?}: workflows pin actions by full commit SHA (40 lowercase hex), not a tag or branch");
    }
    Ok((repo.to_string(), sha.to_string()))
}

/// The actions ref pinned in existing workflows, so `--check` judges structure, not an upgrade.
pub fn pinned_in(root: &Path) -> Option<String> {
    WORKFLOWS.iter().find_map(|w| {
        let text = std::fs::read_to_string(root.join(w)).ok()?;
        text.lines().find_map(|l| {
            let u = l.trim().trim_start_matches("- ").strip_prefix("uses: ")?;
            let u = u.split_whitespace().next()?;
            let (path, sha) = u.split_once('@')?;
            let repo = path.strip_suffix("/actions/setup")?;
            Some(format!("{repo}@{sha}"))
        })
    })
}

/// Everything `init` writes for the project at `root`.
pub fn plan(root: &Path, opts: &Options) -> Result<Vec<Planned>> {
    let (repo, sha) = parse_actions_ref(&opts.actions_ref)?;
    let mut files = Vec::new();
    let model = model_name(root);
    let forge = if opts.github { "github" } else { "local" };
    let config_text = if opts.example {
        for (path, bytes) in EXAMPLE {
            let content = if *path == "mlops.yaml" {
                example_config(
                    &String::from_utf8_lossy(bytes),
                    &opts.package_repository,
                    forge,
                )?
                .into_bytes()
            } else {
                bytes.to_vec()
            };
            files.push(Planned {
                path: path.to_string(),
                content,
                managed: false,
                merge: false,
            });
        }
        String::from_utf8_lossy(&files[0].content).into_owned()
    } else {
        let text = SKELETON
            .replace("__MODEL__", &model)
            .replace("__REPOSITORY__", &opts.package_repository)
            .replace("__FORGE__", forge)
            .replace("__BASE__", "main")
            .replace("__FIRST_ENV__", "staging");
        files.push(Planned {
            path: "mlops.yaml".into(),
            content: text.clone().into_bytes(),
            managed: false,
            merge: false,
        });
        text
    };
    for (path, content) in [
        ("templates/k8s/deployment.yaml.j2", K8S),
        ("train.Dockerfile", TRAIN_DOCKERFILE),
        ("serve.Dockerfile", SERVE_DOCKERFILE),
        ("requirements.txt", REQUIREMENTS),
        ("serve.py", SERVE_PY),
    ] {
        files.push(Planned {
            path: path.into(),
            content: content.as_bytes().to_vec(),
            managed: false,
            merge: false,
        });
    }
    let mut gitignore = GITIGNORE.to_string();
    if opts.example {
        gitignore.push_str(&missing_lines(GITIGNORE, EXAMPLE_GITIGNORE).join(""));
    }
    for (path, content) in [
        (".gitignore", gitignore.as_str()),
        (".dockerignore", DOCKERIGNORE),
    ] {
        files.push(Planned {
            path: path.into(),
            content: content.as_bytes().to_vec(),
            managed: false,
            merge: true,
        });
    }
    if !opts.github {
        return Ok(files);
    }

    files.extend(workflows(root, opts, config_text, (&repo, &sha))?);
    Ok(files)
}

/// The CI, promote and deploy workflows, rendered for the project's config: the one on disk
/// when there is one, else `config_text` (what init writes).
fn workflows(
    root: &Path,
    opts: &Options,
    config_text: String,
    (repo, sha): (&str, &str),
) -> Result<Vec<Planned>> {
    let mut files = Vec::new();
    // Workflows follow the project's config: the one on disk when there is one. Read leniently
    // (a skeleton names data that does not exist yet).
    let existing = root.join(crate::config::DEFAULT_FILE);
    let text = match std::fs::read_to_string(&existing) {
        Ok(t) => t,
        Err(_) => config_text,
    };
    let config = crate::yamlio::from_yaml(&text)
        .with_context(|| format!("{} is not YAML", existing.display()))?;
    let first = config["environments"]
        .as_object()
        .and_then(|envs| {
            envs.iter()
                .find(|(_, e)| e.get("requires").is_none_or(|r| r.is_null()))
                .map(|(n, _)| n.clone())
        })
        .context("mlops.yaml has no environment without `requires`: the promote workflow needs one to start from")?;
    let base = config["forge"]["base"]
        .as_str()
        .unwrap_or("main")
        .to_string();
    let paths = watched_paths(&config);
    let monitored = monitored(&config, &first);
    let path_lines: Vec<String> = paths
        .iter()
        .map(|p| format!("      - {}", crate::yamlio::quoted(p)))
        .collect();
    let pin = format!("mlops {}", env!("CARGO_PKG_VERSION"));
    let registry = registry_of(&config);
    // ghcr.io takes the job's own token (packages: write where it pushes); any other registry
    // a user and a password the repository stores.
    let (user, password) = if registry == DEFAULT_REGISTRY {
        ("${{ github.actor }}", "${{ secrets.GITHUB_TOKEN }}")
    } else {
        (
            "${{ vars.MLOPS_REGISTRY_USER }}",
            "${{ secrets.MLOPS_REGISTRY_PASSWORD }}",
        )
    };
    let render = |t: &str| {
        t.replace("__CHECKOUT__", CHECKOUT)
            .replace("__MLOPS__", repo)
            .replace("__REF__", sha)
            .replace("__PIN__", &pin)
            .replace("__BASE__", &base)
            .replace("__FIRST_ENV__", &first)
            .replace("__PATHS__", &path_lines.join("\n"))
            .replace("__MONITORED__", &monitored)
            .replace("__DEPLOY_RUNS_ON__", &opts.deploy_runs_on)
            .replace("__RUNS_ON__", &opts.runs_on)
            .replace("__REGISTRY_USER__", user)
            .replace("__REGISTRY_PASSWORD__", password)
            .replace("__REGISTRY__", &registry)
    };
    for (path, t) in WORKFLOWS.iter().zip([CI, PROMOTE, DEPLOY, MONITOR]) {
        let text = render(t);
        // Strict like an undefined template variable: a placeholder left over is a bug here.
        if let Some(i) = text.find("__") {
            let rest = &text[i + 2..];
            if let Some(end) = rest.find("__") {
                let name = &rest[..end];
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                    bail!("template {path} has no value for __{name}__");
                }
            }
        }
        files.push(Planned {
            path: path.to_string(),
            content: text.into_bytes(),
            managed: true,
            merge: false,
        });
    }
    Ok(files)
}

/// The registry host of `package.repository` (ghcr.io when it names none, or is a layout).
fn registry_of(config: &serde_json::Value) -> String {
    let repository = config["package"]["repository"].as_str().unwrap_or("");
    if repository.starts_with("oci:") {
        return DEFAULT_REGISTRY.into();
    }
    match repository.split_once('/') {
        Some((host, _)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            host.to_string()
        }
        _ => DEFAULT_REGISTRY.into(),
    }
}

/// The monitor workflow's matrix: the environments with `monitor:` (a flow list), else `first`.
fn monitored(config: &serde_json::Value, first: &str) -> String {
    let mut names: Vec<String> = config["environments"]
        .as_object()
        .map(|envs| {
            envs.iter()
                .filter(|(_, e)| e.get("monitor").is_some_and(|m| !m.is_null()))
                .map(|(n, _)| crate::yamlio::quoted(n))
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        names.push(crate::yamlio::quoted(first));
    }
    format!("[{}]", names.join(", "))
}

/// What the CI workflow runs on: mlops.yaml, the data (a file, or its top directory), code.
fn watched_paths(config: &serde_json::Value) -> Vec<String> {
    let mut paths: Vec<String> = vec!["mlops.yaml".into()];
    if let Some(data) = config["data"].as_object() {
        for ds in data.values() {
            let Some(path) = ds["path"].as_str() else {
                continue;
            };
            let rel = path.trim_start_matches("./").to_string();
            let top = rel.split('/').next().unwrap_or(&rel).to_string();
            let pattern = if top == rel { rel } else { format!("{top}/**") };
            if !paths.contains(&pattern) {
                paths.push(pattern);
            }
        }
    }
    for p in ["**/*.py", "**/requirements*.txt", "**/Dockerfile*"] {
        paths.push(p.into());
    }
    paths
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// What happened to one planned file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Written,
    Unchanged,
    /// Exists with other content and was left alone (no --force).
    Kept,
    /// An ignore file that existed and gained this many lines.
    Appended(usize),
}

/// The pattern lines of `wanted` (each with its newline) that `current` lacks; comments and
/// blank lines do not count.
fn missing_lines(current: &str, wanted: &str) -> Vec<String> {
    let have: Vec<&str> = current.lines().map(str::trim).collect();
    wanted
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !have.contains(l))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Writes the plan under `root`: new files are written (atomically), identical ones left, and
/// differing ones overwritten only with `force`; an existing ignore file only gains the lines
/// it lacks, with or without `force`.
pub fn write(root: &Path, files: &[Planned], force: bool) -> Result<Vec<(PathBuf, Action)>> {
    let mut out = Vec::new();
    for f in files {
        let path = root.join(&f.path);
        let outcome = match std::fs::read(&path) {
            Ok(current) if f.merge => {
                let current = String::from_utf8_lossy(&current).into_owned();
                let missing = missing_lines(&current, &String::from_utf8_lossy(&f.content));
                if missing.is_empty() {
                    Action::Unchanged
                } else {
                    let mut text = current;
                    if !text.is_empty() && !text.ends_with('\n') {
                        text.push('\n');
                    }
                    text.push_str("# added by mlops init\n");
                    text.push_str(&missing.concat());
                    crate::fsutil::write_atomic(&path, text.as_bytes())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    Action::Appended(missing.len())
                }
            }
            Ok(current) if current == f.content => Action::Unchanged,
            Ok(_) if !force => Action::Kept,
            Ok(_) | Err(_) => {
                crate::fsutil::write_atomic(&path, &f.content)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Action::Written
            }
        };
        out.push((path, outcome));
    }
    Ok(out)
}

/// Drift of the managed files: (path, description) for each one missing or different.
pub fn check(root: &Path, files: &[Planned]) -> Vec<(String, String)> {
    let mut drift = Vec::new();
    for f in files.iter().filter(|f| f.managed) {
        let wanted = String::from_utf8_lossy(&f.content);
        match std::fs::read_to_string(root.join(&f.path)) {
            Err(_) => drift.push((f.path.clone(), "missing".to_string())),
            Ok(current) if current == wanted => {}
            Ok(current) => {
                let (a, b): (Vec<&str>, Vec<&str>) =
                    (current.lines().collect(), wanted.lines().collect());
                let i = a
                    .iter()
                    .zip(&b)
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.len().min(b.len()));
                let show = |v: &[&str]| {
                    v.get(i)
                        .map(|l| format!("{:?}", l.trim()))
                        .unwrap_or_else(|| "end of file".into())
                };
                drift.push((
                    format!("{}:{}", f.path, i + 1),
                    format!("has {}, the template has {}", show(&a), show(&b)),
                ));
            }
        }
    }
    drift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(example: bool) -> Options {
        Options {
            actions_ref: format!("mlops-dev/mlops@{}", "a".repeat(40)),
            github: false,
            example,
            runs_on: "ubuntu-latest".into(),
            deploy_runs_on: "ubuntu-latest".into(),
            package_repository: "ghcr.io/acme/churn".into(),
        }
    }

    #[test]
    fn ignore_files_keep_the_key_and_the_runs_out_and_existing_ones_only_grow() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "node_modules/\n  .mlops/runs/").unwrap();
        let files = plan(root, &options(false)).unwrap();
        let outcomes = write(root, &files, true).unwrap();
        let of = |name: &str| {
            outcomes
                .iter()
                .find(|(p, _)| p.ends_with(name))
                .map(|(_, o)| o.clone())
                .unwrap()
        };
        assert_eq!(of(".gitignore"), Action::Appended(2));
        assert_eq!(of(".dockerignore"), Action::Written);
        let git = std::fs::read_to_string(root.join(".gitignore")).unwrap();
        assert_eq!(
            git,
            "node_modules/\n  .mlops/runs/\n# added by mlops init\n.mlops/monitor/\ncosign.key\n"
        );
        let docker = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
        for line in ["cosign.key", ".mlops/runs/", ".git/", "**/*.key"] {
            assert!(docker.lines().any(|l| l == line), "{line}: {docker}");
        }
        // Again, even with --force: nothing to add, nothing replaced.
        let again = write(root, &files, true).unwrap();
        for (path, outcome) in &again {
            if path.ends_with(".gitignore") || path.ends_with(".dockerignore") {
                assert_eq!(*outcome, Action::Unchanged, "{}", path.display());
            }
        }
        assert_eq!(
            std::fs::read_to_string(root.join(".gitignore")).unwrap(),
            git
        );
    }

    #[test]
    fn the_example_gitignore_also_has_its_own_lines() {
        let dir = tempfile::tempdir().unwrap();
        let files = plan(dir.path(), &options(true)).unwrap();
        let git = files.iter().find(|f| f.path == ".gitignore").unwrap();
        let text = String::from_utf8_lossy(&git.content);
        assert!(
            text.contains("__pycache__/\n") && text.contains("cosign.key\n"),
            "{text}"
        );
        assert_eq!(files.iter().filter(|f| f.path == ".gitignore").count(), 1);
    }
}
