//! Which registry secret goes where, and the other settings of the registry client.
//!
//! A [`RegistrySettings`] value is built once by the command line (`cli::registry`, the only
//! code that reads the environment for it) and handed to every [`super::registry::Registry`].
//! Each secret belongs to exactly one registry `host[:port]`:
//! - `MLOPS_REGISTRY_USER`/`_PASSWORD` to the registry `MLOPS_REGISTRY` names (default: the
//!   host of `package.repository`);
//! - each `auths` entry of Docker's `config.json` to the `host[:port]` of its key
//!   (`https://index.docker.io/v1/` is Docker Hub, `docker.io`).
//!
//! A registry gets the credentials of its own `host[:port]` and nothing else; a registry with
//! none is spoken to anonymously.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;

use super::reference::parse_host;

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

/// Default read timeout between bytes (`MLOPS_REGISTRY_TIMEOUT_SECS`).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(300);
/// Default first backoff delay (`MLOPS_REGISTRY_BACKOFF_MS`).
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(250);
/// Default upload chunk (`MLOPS_REGISTRY_CHUNK_MIB`): larger blobs go up in chunks of this size.
pub const DEFAULT_CHUNK: u64 = 64 << 20;

/// Credentials per registry and the client's timeouts; see the module documentation.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// `(host[:port], credentials)`, the host as references write it; matched exactly.
    credentials: Vec<(String, Credentials)>,
    /// Hosts allowed as token realms besides the registry's own (`MLOPS_REGISTRY_TOKEN_HOSTS`):
    /// `host` (any port) or `host:port`.
    pub(crate) token_hosts: Vec<String>,
    pub(crate) backoff: Duration,
    pub(crate) read_timeout: Duration,
    /// Blobs larger than this go up in PATCH chunks of this size (`MLOPS_REGISTRY_CHUNK_MIB`).
    pub(crate) chunk: u64,
    /// Loopback registries that speak https (`MLOPS_REGISTRY_HTTPS_HOSTS`); every other registry
    /// does anyway.
    pub(crate) https_hosts: Vec<String>,
    /// CA certificates trusted besides the system's (`MLOPS_REGISTRY_CA_FILE`, `SSL_CERT_FILE`).
    pub(crate) extra_roots: Vec<reqwest::Certificate>,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            credentials: Vec::new(),
            token_hosts: Vec::new(),
            backoff: DEFAULT_BACKOFF,
            read_timeout: DEFAULT_READ_TIMEOUT,
            chunk: DEFAULT_CHUNK,
            https_hosts: Vec::new(),
            extra_roots: Vec::new(),
        }
    }
}

impl RegistrySettings {
    /// No credentials for any registry, default timeouts.
    pub fn anonymous() -> RegistrySettings {
        RegistrySettings::default()
    }

    /// Gives `host` these credentials, replacing what it had.
    pub fn with_credentials(mut self, host: &str, credentials: Credentials) -> RegistrySettings {
        let host = host.to_ascii_lowercase();
        self.credentials.retain(|(h, _)| *h != host);
        self.credentials.push((host, credentials));
        self
    }

    pub fn with_token_hosts(mut self, hosts: Vec<String>) -> RegistrySettings {
        self.token_hosts = hosts;
        self
    }

    pub fn with_backoff(mut self, backoff: Duration) -> RegistrySettings {
        self.backoff = backoff;
        self
    }

    pub fn with_read_timeout(mut self, timeout: Duration) -> RegistrySettings {
        self.read_timeout = timeout;
        self
    }

    /// Blobs above `bytes` go up in chunks of `bytes` (at least 1 MiB).
    pub fn with_chunk(mut self, bytes: u64) -> RegistrySettings {
        self.chunk = bytes.max(1 << 20);
        self
    }

    /// Loopback registries (`host[:port]` as references write it) spoken to over https.
    pub fn with_https_hosts(mut self, hosts: Vec<String>) -> RegistrySettings {
        self.https_hosts = hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect();
        self
    }

    /// Trusts these CA certificates too (besides the system's).
    pub fn with_extra_roots(mut self, roots: Vec<reqwest::Certificate>) -> RegistrySettings {
        self.extra_roots.extend(roots);
        self
    }

    /// Whether `host` is spoken to over https: always, except loopback registries not listed
    /// in `https_hosts`.
    pub fn speaks_https(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        !super::reference::is_loopback_host(&host) || self.https_hosts.contains(&host)
    }

    /// The credentials of exactly this `host[:port]`.
    pub fn credentials_for(&self, host: &str) -> Option<&Credentials> {
        let host = host.to_ascii_lowercase();
        self.credentials
            .iter()
            .find(|(h, _)| *h == host)
            .map(|(_, c)| c)
    }

    /// The hosts that have credentials (for diagnostics: never the secrets).
    pub fn hosts_with_credentials(&self) -> Vec<&str> {
        self.credentials.iter().map(|(h, _)| h.as_str()).collect()
    }
}

/// The `auths` entries of a Docker `config.json`, each under the `host[:port]` of its key.
/// Entries without inline credentials (a credential helper's) are left out; `origin` names the
/// file in errors.
pub fn docker_config_auths(
    json: &[u8],
    origin: &str,
) -> Result<Vec<(String, Credentials)>, String> {
    let config: serde_json::Value = serde_json::from_slice(json).map_err(|e| {
        format!(
            "{origin}: not valid JSON ({e}); fix it or point DOCKER_CONFIG at another directory"
        )
    })?;
    let Some(auths) = config.get("auths") else {
        return Ok(Vec::new());
    };
    let auths = auths
        .as_object()
        .ok_or_else(|| format!("{origin}: \"auths\" is not an object"))?;
    let mut out = Vec::new();
    for (key, entry) in auths {
        let Some(host) = config_key_host(key) else {
            tracing::warn!("{origin}: auths key {key:?} names no registry host; ignored");
            continue;
        };
        let inline = match entry["auth"].as_str().filter(|a| !a.is_empty()) {
            Some(auth) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok())
                    .ok_or_else(|| {
                        format!("{origin}: the auth of {key:?} is not base64 of user:password")
                    })?;
                let (u, p) = decoded.split_once(':').ok_or_else(|| {
                    format!("{origin}: the auth of {key:?} is not base64 of user:password")
                })?;
                Some((u.to_string(), p.to_string()))
            }
            None => match (entry["username"].as_str(), entry["password"].as_str()) {
                (Some(u), Some(p)) => Some((u.to_string(), p.to_string())),
                _ => None,
            },
        };
        match inline {
            Some((username, password)) => out.push((host, Credentials { username, password })),
            None => tracing::debug!(
                "{origin}: {key:?} has no inline credentials (credential helpers are not read)"
            ),
        }
    }
    Ok(out)
}

/// The registry a `config.json` key names: a scheme and a path may surround the
/// `host[:port]`, and Docker Hub's legacy key `https://index.docker.io/v1/` means `docker.io`.
fn config_key_host(key: &str) -> Option<String> {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or("");
    parse_host(host).ok()
}

/// The settings the Docker engine's pulls use (the engine reads no client credentials: we
/// hand over the pulled registry's own, if any). Set by the command line with the same value
/// it gives the registry client; unset, the engine pulls anonymously.
static ENGINE: Mutex<Option<RegistrySettings>> = Mutex::new(None);

pub fn set_for_engine(settings: &RegistrySettings) {
    let mut slot = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    *slot = Some(settings.clone());
}

/// The credentials an engine pull from exactly `host` may carry.
pub fn engine_credentials(host: &str) -> Option<Credentials> {
    let slot = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    slot.as_ref()?.credentials_for(host).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn config_keys_name_host_and_port_exactly() {
        let json = br#"{"auths": {
            "https://reg.example:5000/v2/": {"auth": "dXNlcjpwYXNz"},
            "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
            "ghcr.io": {"username": "bot", "password": "tok"},
            "helper.example": {}
        }}"#;
        let auths = docker_config_auths(json, "config.json").unwrap();
        let settings = auths
            .into_iter()
            .fold(RegistrySettings::anonymous(), |s, (h, c)| {
                s.with_credentials(&h, c)
            });
        assert_eq!(
            settings.credentials_for("reg.example:5000"),
            Some(&creds("user", "pass"))
        );
        assert_eq!(settings.credentials_for("reg.example"), None);
        assert_eq!(settings.credentials_for("reg.example:5001"), None);
        assert_eq!(
            settings.credentials_for("docker.io"),
            Some(&creds("hub", "secret"))
        );
        assert_eq!(
            settings.credentials_for("ghcr.io"),
            Some(&creds("bot", "tok"))
        );
        assert_eq!(settings.credentials_for("helper.example"), None);
        assert_eq!(settings.credentials_for("other.example"), None);
    }

    #[test]
    fn a_broken_config_names_the_file() {
        let e = docker_config_auths(b"{", "/home/u/.docker/config.json").unwrap_err();
        assert!(e.contains("/home/u/.docker/config.json"), "{e}");
        let e =
            docker_config_auths(br#"{"auths": {"x.io": {"auth": "!!"}}}"#, "c.json").unwrap_err();
        assert!(e.contains("x.io") && e.contains("base64"), "{e}");
        assert!(docker_config_auths(b"{}", "c.json").unwrap().is_empty());
    }

    #[test]
    fn later_credentials_replace_earlier_ones_for_the_same_host_only() {
        let s = RegistrySettings::anonymous()
            .with_credentials("ghcr.io", creds("a", "1"))
            .with_credentials("quay.io", creds("b", "2"))
            .with_credentials("GHCR.io", creds("c", "3"));
        assert_eq!(s.credentials_for("ghcr.io"), Some(&creds("c", "3")));
        assert_eq!(s.credentials_for("quay.io"), Some(&creds("b", "2")));
        assert!(!format!("{:?}", creds("u", "hunter2")).contains("hunter2"));
    }
}
