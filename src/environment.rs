//! Environment files `.mlops/environments/<env>.yaml` (committed): the desired state of an
//! environment. Their git history is the audit trail of what ran where.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::oci::digest::Digest;

pub const ENVIRONMENTS_DIR: &str = ".mlops/environments";

/// The desired state of one environment (`schemas/environment.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "mlops environment file (.mlops/environments/<env>.yaml)")]
pub struct EnvironmentState {
    /// The environment's name in mlops.yaml; must match the file name.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]*$"))]
    pub environment: String,
    /// The model (mlops.yaml `model`).
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]*$"))]
    pub model: String,
    /// `registry/repository@sha256:...` — always by digest.
    #[schemars(regex(pattern = r"^[^@\s]+@sha256:[0-9a-f]{64}$"))]
    pub image: String,
    /// The image's manifest digest; the same as in `image`.
    #[schemars(with = "String", regex(pattern = r"^sha256:[0-9a-f]{64}$"))]
    pub digest: Digest,
    /// Who signed it: the public key's fingerprint (`sha256:...`) or a keyless identity.
    #[serde(default)]
    pub signature: Option<String>,
    /// The run that produced the model (`.mlops/runs/<run_id>`): a name, never a path.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"))]
    pub run_id: String,
    /// The commit the model was trained from.
    pub git_commit: String,
    /// Dataset name → `sha256:...`.
    #[serde(default)]
    pub data: IndexMap<String, String>,
    #[serde(default)]
    pub metrics: IndexMap<String, f64>,
    /// When the promotion was first proposed (RFC 3339, UTC).
    pub promoted_at: String,
    /// Where the champion's model can be found without the registry (a run directory, relative
    /// to the repository root, inside it), used until the model is read from the image.
    #[serde(default)]
    pub model_dir: Option<String>,
    /// The pull request (URL) or branch that carried this promotion.
    #[serde(default)]
    pub change: Option<String>,
}

pub fn path(repo_root: &Path, env: &str) -> PathBuf {
    repo_root.join(ENVIRONMENTS_DIR).join(format!("{env}.yaml"))
}

/// Reads the desired state of `env`; `Ok(None)` when nothing was promoted there yet. The file
/// must be about this environment of this config's model.
pub fn read(config: &crate::config::Config, env: &str) -> Result<Option<EnvironmentState>> {
    let p = path(&config.root, env);
    let mut bytes = Vec::new();
    {
        use std::io::Read;
        match std::fs::File::open(&p) {
            Ok(f) => f
                .take(MAX_FILE_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read {}", p.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
        };
    }
    let file = p.display().to_string();
    let state = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{file} is not UTF-8 text"))
        .and_then(|text| parse_file(&file, &text))
        .and_then(|state| {
            if state.model != config.model {
                anyhow::bail!(
                    "it is about model {:?}, but {} is about model {:?}",
                    state.model,
                    config.file.display(),
                    config.model
                );
            }
            if state.environment != env {
                anyhow::bail!(
                    "it names environment {:?}; the file of environment {env:?} must say `environment: {env}`",
                    state.environment
                );
            }
            Ok(state)
        })
        .with_context(|| format!("{file} is not a valid environment file"))?;
    Ok(Some(state))
}

/// An environment file is read only up to this size (64 KiB); a larger one is refused unparsed.
pub const MAX_FILE_BYTES: usize = 64 << 10;

/// Parses the text of an environment file; errors say where, as `environment file:line:col`.
pub fn parse(text: &str) -> Result<EnvironmentState> {
    parse_file("environment file", text)
}

/// Parses the text of the environment file `file` (its name in messages): at most 64 KiB, no
/// YAML anchors or aliases, valid against `schemas/environment.schema.json`.
pub fn parse_file(file: &str, text: &str) -> Result<EnvironmentState> {
    if text.len() > MAX_FILE_BYTES {
        anyhow::bail!(
            "{file} is larger than 64 KiB, the limit for an environment file; nothing was parsed"
        );
    }
    let (value, _) = crate::config::yaml::parse(text)
        .map_err(|e| anyhow::anyhow!("{file}:{}:{}: {}", e.pos.0, e.pos.1, e.message))?;
    static VALIDATOR: std::sync::OnceLock<std::result::Result<jsonschema::Validator, String>> =
        std::sync::OnceLock::new();
    let validator = VALIDATOR
        .get_or_init(|| jsonschema::validator_for(&schema()).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("the environment schema does not compile: {e}"))?;
    let problems: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!(
                "{}: {e}",
                if at.is_empty() {
                    "(top level)"
                } else {
                    at.trim_start_matches('/')
                }
            )
        })
        .collect();
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("; "));
    }
    let state: EnvironmentState = serde_json::from_value(value)?;
    if let Some(dir) = &state.model_dir {
        let inside = Path::new(dir).components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
        if !inside || dir.is_empty() {
            anyhow::bail!(
                "{file}: model_dir {dir:?} must be a path inside the repository, relative to its root"
            );
        }
    }
    Ok(state)
}

/// The schema committed as `schemas/environment.schema.json` (a test keeps the two equal).
pub fn schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut value = generator
        .into_root_schema_for::<EnvironmentState>()
        .to_value();
    if let serde_json::Value::Object(map) = &mut value {
        map.insert(
            "$id".into(),
            "https://mlops.dev/schemas/environment.schema.json".into(),
        );
    }
    value
}

pub fn render(state: &EnvironmentState) -> Result<String> {
    let value = serde_json::to_value(state)?;
    Ok(format!(
        "# Desired state of environment {}, written by `mlops promote`. Merging a change to this\n# file deploys it; its git history is the record of what ran here.\n{}",
        state.environment,
        crate::yamlio::to_yaml(&value)
    ))
}

pub fn write(repo_root: &Path, state: &EnvironmentState) -> Result<()> {
    crate::fsutil::write_atomic(
        &path(repo_root, &state.environment),
        render(state)?.as_bytes(),
    )
}

/// What a change to an environment file did, judged against the older changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// A digest this environment never had before.
    Promotion,
    /// Back to a digest the environment had earlier (but not just before).
    Rollback,
    /// Same digest as before; other fields changed.
    Update,
    /// The file was deleted: nothing is pinned any more.
    Removed,
}

/// One commit that touched `.mlops/environments/<env>.yaml`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub commit: String,
    pub author: String,
    pub date: String,
    pub subject: String,
    pub kind: ChangeKind,
    /// The file as of that commit (None when it was removed).
    pub state: Option<EnvironmentState>,
}

/// The last commit that touched the environment file: (commit, author, date), if any.
pub fn last_change(repo_root: &Path, env: &str) -> Option<(String, String, String)> {
    let rel = format!("{ENVIRONMENTS_DIR}/{env}.yaml");
    let out = crate::git::run(
        repo_root,
        &["log", "-1", "--format=%H%x1f%an%x1f%aI", "--", &rel],
    )
    .ok()?;
    let mut f = out.trim().split('\x1f');
    Some((
        f.next().filter(|s| !s.is_empty())?.to_string(),
        f.next()?.to_string(),
        f.next()?.to_string(),
    ))
}

/// How a commit reached the checked-out branch: the first merge on the way (GitHub's "Merge
/// pull request #N from …"), else the commit itself (squash merges end in "(#N)").
#[derive(Debug, Clone, Serialize)]
pub struct MergedBy {
    pub commit: String,
    pub subject: String,
    /// The pull request number the subject names, if any.
    pub pull_request: Option<u64>,
}

pub fn merged_by(repo_root: &Path, commit: &str) -> Option<MergedBy> {
    let merge = crate::git::run(
        repo_root,
        &[
            "log",
            "--merges",
            "--ancestry-path",
            "--reverse",
            "--format=%H%x1f%s",
            &format!("{commit}..HEAD"),
        ],
    )
    .ok()
    .and_then(|out| out.lines().next().map(str::to_string))
    .filter(|l| !l.is_empty());
    let line = match merge {
        Some(l) => l,
        None => crate::git::run(repo_root, &["log", "-1", "--format=%H%x1f%s", commit]).ok()?,
    };
    let (sha, subject) = line.trim().split_once('\x1f')?;
    let pull_request = subject.split('#').skip(1).find_map(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    });
    Some(MergedBy {
        commit: sha.to_string(),
        subject: subject.to_string(),
        pull_request,
    })
}

/// Every committed change of the environment file, newest first, each classified as a
/// promotion, rollback, update or removal. Reads `git log` and the file at each commit.
pub fn history(repo_root: &Path, env: &str) -> Result<Vec<HistoryEntry>> {
    let rel = format!("{ENVIRONMENTS_DIR}/{env}.yaml");
    crate::git::run(repo_root, &["rev-parse", "--git-dir"]).with_context(|| {
        format!(
            "{} is not in a git repository: the history of an environment is the git log of {rel}",
            repo_root.display()
        )
    })?;
    let log = crate::git::run(
        repo_root,
        &[
            "log",
            "--reverse",
            "--format=%H%x1f%an%x1f%aI%x1f%s",
            "--",
            &rel,
        ],
    )
    .unwrap_or_default(); // a repository without commits has no history yet
    let mut seen: Vec<String> = Vec::new();
    let mut entries = Vec::new();
    for line in log.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.splitn(4, '\x1f').collect();
        let [commit, author, date, subject] = f[..] else {
            continue;
        };
        let state = match crate::git::run(repo_root, &["show", &format!("{commit}:./{rel}")]) {
            Ok(text) => Some(parse_file(&rel, &text).with_context(|| {
                format!("{rel} as of commit {commit} is not a valid environment file")
            })?),
            Err(_) => None,
        };
        let kind = match &state {
            None => ChangeKind::Removed,
            Some(s) if seen.last() == Some(&s.digest.to_string()) => ChangeKind::Update,
            Some(s) if seen.contains(&s.digest.to_string()) => ChangeKind::Rollback,
            Some(_) => ChangeKind::Promotion,
        };
        match &state {
            Some(s) => seen.push(s.digest.to_string()),
            None => seen.push(String::new()),
        }
        entries.push(HistoryEntry {
            commit: commit.to_string(),
            author: author.to_string(),
            date: date.to_string(),
            subject: subject.to_string(),
            kind,
            state,
        });
    }
    entries.reverse();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut metrics = IndexMap::new();
        metrics.insert("f1".to_string(), 0.93);
        let s = EnvironmentState {
            environment: "staging".into(),
            model: "churn".into(),
            image: format!("127.0.0.1:5000/acme/churn@sha256:{}", "a".repeat(64)),
            digest: Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
            signature: Some("sha256:beef".into()),
            run_id: "r1".into(),
            git_commit: "abc".into(),
            data: IndexMap::new(),
            metrics,
            promoted_at: "2026-11-22T00:00:00Z".into(),
            model_dir: None,
            change: None,
        };
        let path = dir.path().join(".mlops/environments/staging.yaml");
        assert!(!path.exists());
        write(dir.path(), &s).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(parse_file("staging.yaml", &text).unwrap(), s);
    }
}

#[cfg(test)]
mod schema_tests {
    /// `MLOPS_UPDATE_SCHEMA=1` rewrites the committed schema.
    #[test]
    fn committed_environment_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas/environment.schema.json");
        let generated = format!(
            "{}\n",
            serde_json::to_string_pretty(&super::schema()).unwrap()
        );
        if std::env::var_os("MLOPS_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "schemas/environment.schema.json is out of date: run `MLOPS_UPDATE_SCHEMA=1 cargo test committed_environment_schema` and commit it"
        );
    }

    #[test]
    fn a_tag_instead_of_a_digest_is_refused_by_the_schema() {
        let text = "environment: staging\nmodel: churn\nimage: 127.0.0.1:5000/acme/churn:latest\ndigest: sha256:abc\nrun_id: r1\ngit_commit: 0123\npromoted_at: 2026-11-25T00:00:00Z\n";
        let err = super::parse(text).unwrap_err().to_string();
        assert!(err.contains("image:") && err.contains("digest:"), "{err}");
    }
}

#[cfg(test)]
mod name_tests {
    const REST: &str = "image: 127.0.0.1:5000/acme/churn@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ndigest: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nrun_id: r1\ngit_commit: '0123'\npromoted_at: 2026-11-25T00:00:00Z\n";

    /// Found by `cargo fuzz run environment`: a name with a newline went into the file's
    /// leading comment, so the rendered file no longer parsed back to the same state.
    #[test]
    fn names_are_what_mlops_yaml_allows_so_they_render_safely() {
        for (env, model) in [
            ("\"a\\nmodel: evil\"", "churn"),
            ("Staging", "churn"),
            ("../x", "churn"),
            ("staging", "\"churn\\r\\n::stop-commands::x\""),
        ] {
            let text = format!("environment: {env}\nmodel: {model}\n{REST}");
            let err = format!("{:#}", super::parse(&text).expect_err(&text));
            assert!(err.contains("does not match"), "{err}");
        }
        let state = super::parse(&format!("environment: staging-2\nmodel: churn\n{REST}")).unwrap();
        let rendered = super::render(&state).unwrap();
        assert_eq!(super::parse(&rendered).unwrap(), state);
    }
}
