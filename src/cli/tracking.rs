//! The tracking settings of a command, read as MLflow's own clients read them: the one place
//! that reads `MLFLOW_TRACKING_*`. `MLFLOW_TRACKING_URI`, when set, wins over `tracking.uri`
//! (so CI can point a committed mlops.yaml at another server); without `tracking:` in
//! mlops.yaml nothing is tracked, whatever the environment says.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::tracking::{Auth, Mlflow, Settings, Tracker};

/// The `after_help` lines of the commands that track.
pub(super) const HELP: &str = "\
  MLFLOW_TRACKING_URI          the MLflow server (wins over tracking.uri in mlops.yaml)
  MLFLOW_TRACKING_TOKEN        a bearer token for it
  MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD  basic authentication instead
  MLFLOW_TRACKING_INSECURE_TLS true: accept any TLS certificate (a test server)";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// MLflow's reading of a boolean variable: `true`/`1` (any case) is on.
fn flag(name: &str) -> Result<bool> {
    match var(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" || v == "1" => Ok(true),
        Some(v) if v == "false" || v == "0" => Ok(false),
        Some(v) => bail!("{name}={v:?} is neither true nor false"),
    }
}

/// The tracker of this command: off without `tracking:` in mlops.yaml.
pub(super) fn tracker(config: &Config) -> Result<Tracker> {
    let Some(tracking) = &config.tracking else {
        return Ok(Tracker::off());
    };
    let (uri, from) = match (var("MLFLOW_TRACKING_URI"), &tracking.uri) {
        (Some(env), _) => (env, "MLFLOW_TRACKING_URI".to_string()),
        (None, Some(uri)) => (
            uri.clone(),
            format!("tracking.uri in {}", config.file.display()),
        ),
        (None, None) => bail!(
            "tracking: in {} names no server: set tracking.uri or MLFLOW_TRACKING_URI",
            config.file.display()
        ),
    };
    let url =
        reqwest::Url::parse(uri.trim()).with_context(|| format!("{from}={uri:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("{from}={uri:?}: only http:// and https:// tracking servers are supported (not file stores or databricks)");
    }
    if !url.username().is_empty() || url.password().is_some() {
        bail!("{from} carries credentials in the URL: put them in MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD");
    }
    let auth = match (
        var("MLFLOW_TRACKING_TOKEN"),
        var("MLFLOW_TRACKING_USERNAME"),
        var("MLFLOW_TRACKING_PASSWORD"),
    ) {
        (Some(token), _, _) => Some(Auth::Token(token.trim().to_string())),
        (None, Some(username), Some(password)) => Some(Auth::Basic { username, password }),
        (None, Some(_), None) | (None, None, Some(_)) => {
            bail!("set both MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or neither")
        }
        (None, None, None) => None,
    };
    let settings = Settings {
        uri: url,
        auth,
        insecure_tls: flag("MLFLOW_TRACKING_INSECURE_TLS")?,
        // Optional tracking must not hold a step up for long: a silent server costs at most
        // three tries of 30 s.
        policy: crate::http::Policy {
            backoff: Duration::from_millis(200),
            attempts: 3,
            ..crate::http::Policy::default()
        },
        read_timeout: Duration::from_secs(30),
    };
    let client = Mlflow::new(&settings)?;
    let user = var("GITHUB_ACTOR")
        .or_else(|| var("USER"))
        .or_else(|| var("LOGNAME"))
        .unwrap_or_default();
    Ok(Tracker::new(
        client,
        &tracking.experiment,
        &config.model,
        &user,
        tracking.required,
    ))
}
