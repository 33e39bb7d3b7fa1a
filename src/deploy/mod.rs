//! Deployment targets: what `mlops deploy <env>` does once the environment file's digest has
//! been verified. `docker` runs the image on this machine's engine; `kubernetes` renders
//! manifests for Argo CD or Flux (and applies them when asked); `command` runs the user's command.

pub mod capture;
pub mod command;
pub mod docker;
pub mod kubernetes;

use serde::Serialize;

/// What a deployment did.
#[derive(Debug, Clone, Serialize)]
pub struct Deployed {
    pub environment: String,
    pub image: String,
    pub digest: crate::oci::digest::Digest,
    /// `deployed`, or `unchanged` when that digest was already running.
    pub action: &'static str,
    pub container: String,
    pub url: String,
    /// Containers of the previous version that were replaced.
    pub replaced: Vec<String>,
}
