//! The forge settings of a command, from the environment: the one place that reads them. The
//! github forge gets its API, credentials and retry settings from here, read only when
//! mlops.yaml names that forge.
//!
//! - `GITHUB_API_URL` (default https://api.github.com; GitHub Enterprise: https://HOST/api/v3)
//! - `GITHUB_TOKEN`, or a GitHub App: `GITHUB_APP_ID`, `GITHUB_APP_PRIVATE_KEY` (the PEM, or
//!   the path of a file holding it), optionally `GITHUB_APP_INSTALLATION_ID`
//! - `GITHUB_REPOSITORY` (owner/name) when forge.repository is not set
//! - `MLOPS_GITHUB_BACKOFF_MS` (first retry delay, default 1000), `MLOPS_GITHUB_MAX_WAIT_SECS`
//!   (the longest rate-limit wait, default 900), `MLOPS_GITHUB_TIMEOUT_SECS` (per request,
//!   default 30)

use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::config::{Config, ForgeKind};
use crate::forge::github::{Auth, GitHub, Settings};
use crate::forge::Forge;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn number(name: &str) -> Result<Option<u64>> {
    let Some(text) = var(name) else {
        return Ok(None);
    };
    match text.trim().parse::<u64>() {
        Ok(n) => Ok(Some(n)),
        Err(_) => bail!("{name}={text:?} is not a whole number"),
    }
}

/// The github forge's settings from the environment.
pub(super) fn github_settings() -> Result<Settings> {
    let mut settings = Settings::default();
    if let Some(api) = var("GITHUB_API_URL") {
        settings.api_url = api.trim().trim_end_matches('/').to_string();
    }
    settings.default_repository = var("GITHUB_REPOSITORY");
    if let Some(ms) = number("MLOPS_GITHUB_BACKOFF_MS")? {
        settings.policy.backoff = Duration::from_millis(ms);
    }
    if let Some(secs) = number("MLOPS_GITHUB_MAX_WAIT_SECS")? {
        settings.policy.max_wait = Duration::from_secs(secs);
    }
    match number("MLOPS_GITHUB_TIMEOUT_SECS")? {
        Some(0) => bail!("MLOPS_GITHUB_TIMEOUT_SECS must be at least 1 (seconds)"),
        Some(secs) => settings.timeout = Duration::from_secs(secs),
        None => {}
    }
    settings.auth = match (var("GITHUB_TOKEN"), var("GITHUB_APP_ID")) {
        (Some(token), _) => Some(Auth::Token(token)),
        (None, Some(id)) => Some(Auth::App {
            id,
            private_key: app_private_key()?,
            installation: number("GITHUB_APP_INSTALLATION_ID")?,
        }),
        // The forge says what to set when it needs credentials.
        (None, None) => None,
    };
    Ok(settings)
}

/// `GITHUB_APP_PRIVATE_KEY`: the PEM itself, or the path of a file holding it.
fn app_private_key() -> Result<String> {
    let raw = var("GITHUB_APP_PRIVATE_KEY").context(
        "GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY is not: set it to the App's private key (PEM, or a path to it)",
    )?;
    if raw.contains("-----BEGIN") {
        return Ok(raw);
    }
    std::fs::read_to_string(raw.trim()).with_context(|| {
        format!(
            "GITHUB_APP_PRIVATE_KEY names {}, which cannot be read",
            raw.trim()
        )
    })
}

/// The forge mlops.yaml configures (the environment is read only for the github forge).
pub(super) fn open(config: &Config) -> Result<Box<dyn Forge>> {
    let settings = match config.forge.kind {
        ForgeKind::Github => github_settings()?,
        ForgeKind::Local => Settings::default(),
    };
    crate::forge::open(&config.root, &config.forge, &settings)
}

/// The github forge of mlops.yaml, whatever its `forge.type` (for pull request comments).
pub(super) fn github(config: &Config) -> Result<GitHub> {
    GitHub::new(&config.root, &config.forge, &github_settings()?)
}
