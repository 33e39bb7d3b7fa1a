//! The registry settings of a command, from the environment and mlops.yaml: the one place that
//! reads them. Every registry client and every engine pull of the command gets this value.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::config::Config;
use crate::oci::credentials::{self, Credentials, RegistrySettings};
use crate::oci::reference::{parse_host, ImageLocation};

/// The `after_help` lines of the commands that talk to registries.
pub(super) const HELP: &str = "\
  MLOPS_REGISTRY               the registry (host[:port]) MLOPS_REGISTRY_USER/_PASSWORD are for;
                               default: the host of package.repository. No other registry gets them
  MLOPS_REGISTRY_USER, MLOPS_REGISTRY_PASSWORD  that registry's credentials
  MLOPS_REGISTRY_TOKEN_HOSTS   hosts (host or host:port, comma-separated) besides the registry's own
                               that may serve its tokens
  MLOPS_REGISTRY_TIMEOUT_SECS  how long a registry may send nothing (default 300)
  MLOPS_REGISTRY_CHUNK_MIB     blobs larger than this go up in resumable chunks of it (default 64)
  MLOPS_REGISTRY_CA_FILE       PEM file of CA certificates trusted besides the system's (also read:
                               SSL_CERT_FILE)
  MLOPS_REGISTRY_HTTPS_HOSTS   loopback registries (host:port, comma-separated) that speak https;
                               other loopback registries are spoken to over plain http
  DOCKER_CONFIG                where config.json is (default ~/.docker): each auths entry goes to
                               the host:port of its key only
  MLOPS_BUILD_ARGS             NAME=value pairs (whitespace-separated) passed as build arguments
                               to train.build and package.dockerfile builds, e.g.
                               PYTHON_IMAGE=python:3.12-slim";

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

/// The registry settings for this command; `config` gives the default `MLOPS_REGISTRY`.
pub(super) fn settings(config: Option<&Config>) -> Result<RegistrySettings> {
    let mut settings = RegistrySettings::anonymous();
    if let Some(ms) = number("MLOPS_REGISTRY_BACKOFF_MS")? {
        settings = settings.with_backoff(Duration::from_millis(ms));
    }
    match number("MLOPS_REGISTRY_TIMEOUT_SECS")? {
        Some(0) => bail!("MLOPS_REGISTRY_TIMEOUT_SECS must be at least 1 (seconds)"),
        Some(secs) => settings = settings.with_read_timeout(Duration::from_secs(secs)),
        None => {}
    }
    match number("MLOPS_REGISTRY_CHUNK_MIB")? {
        Some(0) => bail!("MLOPS_REGISTRY_CHUNK_MIB must be at least 1 (MiB)"),
        Some(mib) if mib > 4096 => bail!("MLOPS_REGISTRY_CHUNK_MIB={mib} is over 4096 (4 GiB)"),
        Some(mib) => settings = settings.with_chunk(mib << 20),
        None => {}
    }
    if let Some(hosts) = host_list("MLOPS_REGISTRY_TOKEN_HOSTS")? {
        settings = settings.with_token_hosts(hosts);
    }
    if let Some(hosts) = host_list("MLOPS_REGISTRY_HTTPS_HOSTS")? {
        settings = settings.with_https_hosts(hosts);
    }
    for name in ["MLOPS_REGISTRY_CA_FILE", "SSL_CERT_FILE"] {
        if let Some(path) = var(name) {
            settings = settings.with_extra_roots(ca_file(name, &path)?);
        }
    }
    if let Some(path) = docker_config_file() {
        match std::fs::read(&path) {
            Ok(bytes) => {
                let origin = path.display().to_string();
                for (host, c) in
                    credentials::docker_config_auths(&bytes, &origin).map_err(anyhow::Error::msg)?
                {
                    settings = settings.with_credentials(&host, c);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!("cannot read {}: {e}", path.display()),
        }
    }
    match (var("MLOPS_REGISTRY_USER"), var("MLOPS_REGISTRY_PASSWORD")) {
        (Some(username), Some(password)) => match registry_host(config)? {
            Some(host) => {
                settings = settings.with_credentials(&host, Credentials { username, password });
            }
            None => tracing::warn!(
                "MLOPS_REGISTRY_USER/_PASSWORD are set but name no registry: set MLOPS_REGISTRY=host[:port] (no package.repository registry to default to); they are not used"
            ),
        },
        (Some(_), None) | (None, Some(_)) => tracing::warn!(
            "only one of MLOPS_REGISTRY_USER and MLOPS_REGISTRY_PASSWORD is set; set both (they are not used)"
        ),
        (None, None) => {}
    }
    credentials::set_for_engine(&settings);
    if let Some(text) = var("MLOPS_BUILD_ARGS") {
        let args = crate::runner::docker::parse_build_args(&text)
            .map_err(|e| anyhow::anyhow!("MLOPS_BUILD_ARGS: {e}"))?;
        crate::runner::docker::set_build_args(args);
    }
    Ok(settings)
}

/// A comma-separated list of `host[:port]`.
fn host_list(name: &str) -> Result<Option<Vec<String>>> {
    let Some(list) = var(name) else {
        return Ok(None);
    };
    list.split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| parse_host(h).map_err(|e| anyhow::anyhow!("{name}: {e}")))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// The CA certificates of a PEM file (`name` is the variable that names it).
fn ca_file(name: &str, path: &str) -> Result<Vec<reqwest::Certificate>> {
    let pem =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("{name}={path}: cannot read it: {e}"))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| anyhow::anyhow!("{name}={path}: not a PEM file of certificates ({e})"))?;
    if certs.is_empty() {
        bail!("{name}={path}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
    }
    Ok(certs)
}

/// `MLOPS_REGISTRY`, else the registry host of `package.repository`.
fn registry_host(config: Option<&Config>) -> Result<Option<String>> {
    if let Some(text) = var("MLOPS_REGISTRY") {
        return parse_host(&text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("MLOPS_REGISTRY: {e}"));
    }
    let repository = config
        .and_then(|c| c.package.as_ref())
        .and_then(|p| match &p.repository {
            ImageLocation::Registry(r) => Some(r.clone()),
            ImageLocation::Layout(_) => None,
        });
    Ok(repository.map(|r| r.registry))
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn docker_config_file() -> Option<PathBuf> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
    Some(dir.join("config.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_is_missing_or_not_pem_names_the_variable_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = ca_file("MLOPS_REGISTRY_CA_FILE", missing.to_str().unwrap()).unwrap_err();
        let e = format!("{e}");
        assert!(
            e.contains("MLOPS_REGISTRY_CA_FILE") && e.contains("nope.pem"),
            "{e}"
        );
        let text = dir.path().join("ca.pem");
        std::fs::write(&text, "not a certificate\n").unwrap();
        let e = format!(
            "{}",
            ca_file("SSL_CERT_FILE", text.to_str().unwrap()).unwrap_err()
        );
        assert!(e.contains("SSL_CERT_FILE") && e.contains("ca.pem"), "{e}");
    }
}
