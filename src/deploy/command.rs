//! The command target: run the user's command with the pinned image in the environment
//! (`MLOPS_DEPLOY_IMAGE` = repository@digest, `MLOPS_DEPLOY_DIGEST`, `MLOPS_DEPLOY_ENVIRONMENT`,
//! `MLOPS_DEPLOY_MODEL`, `MLOPS_DEPLOY_RUN_ID`, `MLOPS_DEPLOY_PREVIOUS_DIGEST`, and for the
//! serving runtime it starts `MLOPS_DIGEST`, `MLOPS_MODEL`, `MLOPS_ENVIRONMENT`, and
//! `MLOPS_CAPTURE_DIR` = deploy.capture when set), in the
//! repository root. The last digest deployed from this checkout is recorded in
//! `.mlops/runs/deploy-<env>.json`, so the same digest twice is a no-op.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::Deployed;
use crate::environment::EnvironmentState;
use crate::outcome::Outcome;

/// Refused when the command failed: the deployment said no.
pub fn deploy(
    state: &EnvironmentState,
    command: &[String],
    root: &Path,
    record: &Path,
    capture: Option<&Path>,
) -> Result<Outcome<Deployed>> {
    let previous: Option<String> = std::fs::read(record)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["digest"].as_str().map(str::to_string));
    let done = |action| Deployed {
        environment: state.environment.clone(),
        image: state.image.clone(),
        digest: state.digest.clone(),
        action,
        container: String::new(),
        url: command.join(" "),
        replaced: Vec::new(),
    };
    if previous.as_deref() == Some(state.digest.as_str()) {
        return Ok(Outcome::Done(done("unchanged")));
    }
    let (program, args) = command
        .split_first()
        .context("deploy.command is empty: give the program and its arguments")?;
    let capture = capture.map(|p| p.display().to_string());
    let status = std::process::Command::new(program)
        .args(args)
        .current_dir(root)
        .envs(super::capture::serving_env(state, capture.as_deref()))
        .env("MLOPS_DEPLOY_IMAGE", &state.image)
        .env("MLOPS_DEPLOY_DIGEST", state.digest.as_str())
        .env("MLOPS_DEPLOY_ENVIRONMENT", &state.environment)
        .env("MLOPS_DEPLOY_MODEL", &state.model)
        .env("MLOPS_DEPLOY_RUN_ID", &state.run_id)
        .env(
            "MLOPS_DEPLOY_PREVIOUS_DIGEST",
            previous.as_deref().unwrap_or(""),
        )
        .status()
        .with_context(|| format!("cannot run deploy.command {program:?}"))?;
    if !status.success() {
        return Ok(Outcome::refused(format!(
            "deploy.command `{}` exited with {}",
            command.join(" "),
            status
                .code()
                .map_or("a signal".to_string(), |c| c.to_string())
        )));
    }
    crate::fsutil::write_json_atomic(
        record,
        &json!({"digest": state.digest, "image": state.image, "run_id": state.run_id,
                "deployed_at": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()}),
    )?;
    Ok(Outcome::Done(done("deployed")))
}
