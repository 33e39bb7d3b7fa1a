//! Deployment targets: what `mlops deploy <env>` does once the environment file's digest has
//! been verified. `docker` runs the image on this machine's engine.

pub mod docker;

use serde::Serialize;

/// What a deployment did.
#[derive(Debug, Clone, Serialize)]
pub struct Deployed {
    pub environment: String,
    pub image: String,
    pub digest: String,
    /// `deployed`, or `unchanged` when that digest was already running.
    pub action: &'static str,
    pub container: String,
    pub url: String,
    /// Containers of the previous version that were replaced.
    pub replaced: Vec<String>,
}
