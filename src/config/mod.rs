//! `mlops.yaml`: parse with positions → JSON Schema → semantic checks → typed [`Config`].

pub mod monitor;
mod monitor_checks;
pub mod notify;
pub mod raw;
pub mod resolved;
pub mod schema;
mod semantic;
pub mod units;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use monitor::{MonitorConfig, MonitorInputs, OnAlert};
pub use notify::{NotifyConfig, NotifyEvent, NotifyKind, Setting};
pub use raw::{
    ChampionMode, ChangedCheck, Compression, DeployTarget, Direction, DriftTest, ForgeKind,
    SchemaCheck,
};
pub use resolved::*;

use crate::diagnostic::{sort_and_dedup, Diagnostic};

pub const DEFAULT_FILE: &str = "mlops.yaml";

/// mlops.yaml is read only up to this size (1 MiB); a larger file is refused unparsed.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}", .path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not valid ({} error{}); run `mlops validate` for details:\n{}",
        .file, .diagnostics.len(), if .diagnostics.len() == 1 { "" } else { "s" },
        .diagnostics.iter().map(Diagnostic::human).collect::<Vec<_>>().join("\n"))]
    Invalid {
        file: String,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("no environment {name:?} in {} (environments: {}); add it under `environments:` first",
        .file.display(), if .known.is_empty() { "none".to_string() } else { .known.join(", ") })]
    UnknownEnvironment {
        name: String,
        file: PathBuf,
        known: Vec<String>,
    },
}

impl Config {
    /// The environment `name`, or an error naming the ones mlops.yaml has.
    pub fn environment(&self, name: &str) -> Result<&EnvironmentConfig, ConfigError> {
        self.environments
            .get(name)
            .ok_or_else(|| ConfigError::UnknownEnvironment {
                name: name.to_string(),
                file: self.file.clone(),
                known: self.environments.keys().cloned().collect(),
            })
    }
}

/// The result of checking a file: every diagnostic, and the config when there were no errors.
pub struct Checked {
    pub diagnostics: Vec<Diagnostic>,
    pub config: Option<Config>,
}

/// The name a parameter gets in the environment: `MLOPS_PARAM_` + upper-cased, with every
/// character that is not a letter or digit replaced by `_`.
pub fn param_env_name(name: &str) -> String {
    let mut s = String::from("MLOPS_PARAM_");
    s.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    s
}

/// Reads and checks `path`. Only an unreadable file is an `Err`; everything wrong inside the
/// file is a diagnostic.
pub fn check(path: &Path) -> Result<Checked, ConfigError> {
    let unreadable = |source| ConfigError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    {
        use std::io::Read;
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(unreadable)?;
    }
    let file = path.display().to_string();
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Ok(Checked {
            diagnostics: vec![Diagnostic::error(
                &file,
                (1, 1),
                "",
                "the file is larger than 1 MiB, the limit for mlops.yaml; nothing was parsed"
                    .into(),
            )],
            config: None,
        });
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let valid = String::from_utf8_lossy(valid);
            let line = valid.matches('\n').count() + 1;
            let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            return Ok(Checked {
                diagnostics: vec![Diagnostic::error(
                    &file,
                    (line, column),
                    "",
                    "the file is not UTF-8 text".into(),
                )],
                config: None,
            });
        }
    };
    Ok(check_text(&file, path, &text))
}

pub fn check_text(file: &str, path: &Path, text: &str) -> Checked {
    let (doc, positions) = match yaml::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            return Checked {
                diagnostics: vec![Diagnostic::error(file, e.pos, "", e.message)],
                config: None,
            }
        }
    };
    if doc.is_null() {
        return Checked {
            diagnostics: vec![
                Diagnostic::error(file, (1, 1), "", "the file is empty".into())
                    .with_help("run `mlops init` to write a starting mlops.yaml"),
            ],
            config: None,
        };
    }
    let root = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut diagnostics = schema::validate(file, &doc, &positions);
    if doc.is_object() {
        diagnostics.extend(semantic::check(file, root, &doc, &positions));
    }
    sort_and_dedup(&mut diagnostics);
    let mut config = None;
    if diagnostics.is_empty() {
        match serde_json::from_value::<raw::RawConfig>(doc)
            .map_err(|e| e.to_string())
            .and_then(|raw| Config::resolve(raw, path))
        {
            Ok(c) => config = Some(c),
            // The schema and the types disagree: report it rather than hide it.
            Err(e) => diagnostics.push(Diagnostic::error(
                file,
                (1, 1),
                "",
                format!("internal: {e}"),
            )),
        }
    }
    Checked {
        diagnostics,
        config,
    }
}

/// Loads a config every later step can trust, or says exactly why not.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let checked = check(path)?;
    match checked.config {
        Some(c) => Ok(c),
        None => Err(ConfigError::Invalid {
            file: path.display().to_string(),
            diagnostics: checked.diagnostics,
        }),
    }
}
