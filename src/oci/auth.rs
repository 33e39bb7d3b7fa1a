//! Answering a registry's `401`: its `WWW-Authenticate` challenge, and where a token may be
//! fetched from.
//!
//! A Bearer challenge names a token service (the realm). A hostile or compromised registry could
//! name any URL there, to collect the password we would send with the token request, or to make
//! us send requests into the machine's own network. So a realm is accepted only when
//! - it is `https`, or `http` on this machine's loopback, and
//! - its host is related to the registry: the registry's own host name (any port), the known
//!   token service of a public registry (Docker Hub: `auth.docker.io`; GitLab.com: `gitlab.com`),
//!   or a host listed in `MLOPS_REGISTRY_TOKEN_HOSTS` (`host` for any port, or `host:port`).
//!
//! Each redirect of the token request is held to the same rule. The registry's credentials go
//! only to an accepted realm (and, for a Basic challenge, only to the registry itself).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;
use reqwest::Url;

use super::registry::Registry;

/// Token services of public registries that live on another host than the registry's API.
const KNOWN_TOKEN_HOSTS: &[(&str, &str)] = &[
    ("registry-1.docker.io", "auth.docker.io"),
    ("registry.gitlab.com", "gitlab.com"),
];

/// A `WWW-Authenticate` challenge: its scheme and parameters.
#[derive(Debug, PartialEq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the first challenge of a header (RFC 9110 section 11.6.1): a scheme, then
/// `name=token` or `name="quoted, \"string\""` pairs separated by commas.
pub(crate) fn parse_challenge(header: &str) -> Challenge {
    let header = header.trim();
    let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim();
        if name.is_empty() || name.contains(' ') {
            // The start of a second challenge: only the first one is read.
            break;
        }
        let after = &rest[eq + 1..];
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.push((name.to_string(), value));
        rest = tail;
    }
    Challenge {
        scheme: scheme.to_string(),
        params,
    }
}

fn url_is_loopback(url: &Url) -> bool {
    url.host_str()
        .is_some_and(super::reference::is_loopback_host)
}

/// Whether a token realm may be asked for a token on behalf of the registry whose API host
/// name is `registry_host` (see the module documentation); the error says why not and what to
/// do.
pub(crate) fn check_realm(
    registry_host: &str,
    realm: &Url,
    token_hosts: &[String],
) -> Result<(), String> {
    match realm.scheme() {
        "https" => {}
        "http" if url_is_loopback(realm) => {}
        other => {
            return Err(format!(
                "the token service {realm} is not https ({other}): refusing to send anything there"
            ))
        }
    }
    let Some(host) = realm.host_str().map(str::to_ascii_lowercase) else {
        return Err(format!("the token service {realm} names no host"));
    };
    let registry_host = registry_host.to_ascii_lowercase();
    let port = realm.port_or_known_default();
    let related = host == registry_host
        || KNOWN_TOKEN_HOSTS
            .iter()
            .any(|(r, t)| *r == registry_host && *t == host)
        || token_hosts.iter().any(|listed| {
            let listed = listed.to_ascii_lowercase();
            let (lh, lp) = super::reference::split_host_port(&listed);
            lh == host && lp.is_none_or(|p| p.parse::<u16>().ok() == port)
        });
    if !related {
        let hostport = match realm.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        return Err(format!(
            "the token service {realm} is on {hostport}, a host unrelated to the registry: refusing to send it any request; if it is the registry's token service, add {hostport} to MLOPS_REGISTRY_TOKEN_HOSTS"
        ));
    }
    Ok(())
}

/// What a request needs a token for: pull (and push) on a repository, and pull on the
/// repository a blob is mounted from. One token may carry both repositories' scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub repo: String,
    pub push: bool,
    pub mount_from: Option<String>,
}

impl Scope {
    pub fn pull(repo: &str) -> Scope {
        Scope {
            repo: repo.to_string(),
            push: false,
            mount_from: None,
        }
    }

    pub fn push(repo: &str) -> Scope {
        Scope {
            push: true,
            ..Scope::pull(repo)
        }
    }

    pub fn mount(repo: &str, from: &str) -> Scope {
        Scope {
            mount_from: Some(from.to_string()),
            ..Scope::push(repo)
        }
    }

    /// Whether a token for `self` also serves a request that needs `other`.
    pub fn covers(&self, other: &Scope) -> bool {
        self.repo == other.repo
            && (self.push || !other.push)
            && (other.mount_from.is_none() || self.mount_from == other.mount_from)
    }

    /// The `scope` parameters of the token request (distribution's token specification).
    pub fn params(&self) -> Vec<String> {
        let actions = if self.push { "pull,push" } else { "pull" };
        let mut out = vec![format!("repository:{}:{actions}", self.repo)];
        if let Some(from) = self.mount_from.as_ref().filter(|f| **f != self.repo) {
            out.push(format!("repository:{from}:pull"));
        }
        out
    }
}

/// An Authorization header value that worked: Basic serves every request; a token serves the
/// scope it was issued for until shortly before it expires.
#[derive(Debug, Clone)]
pub(super) struct Granted {
    pub value: String,
    /// None for Basic.
    pub scope: Option<Scope>,
    pub expires: Option<Instant>,
}

/// How long before its announced expiry a token is no longer used.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
/// A token's life when the token service does not say (the token specification's default).
const DEFAULT_TOKEN_LIFE: u64 = 60;

impl Granted {
    pub fn serves(&self, scope: &Scope, now: Instant) -> bool {
        let fresh = self.expires.is_none_or(|e| now + EXPIRY_MARGIN < e);
        fresh && self.scope.as_ref().is_none_or(|s| s.covers(scope))
    }

    pub fn is_basic(&self) -> bool {
        self.scope.is_none()
    }
}

impl Registry {
    /// The Authorization that answers `challenge` for `scope`.
    pub(super) async fn authenticate(&self, challenge: &str, scope: &Scope) -> Result<Granted> {
        let challenge = parse_challenge(challenge);
        let repo = &scope.repo;
        if challenge.scheme.eq_ignore_ascii_case("basic") {
            let Some(c) = self.credentials.as_ref() else {
                bail!(
                    "registry {} (repository {repo}) asks for credentials: set MLOPS_REGISTRY={} with MLOPS_REGISTRY_USER and MLOPS_REGISTRY_PASSWORD, or `docker login {}`{}",
                    self.host,
                    self.host,
                    self.host,
                    self.credentials_elsewhere()
                );
            };
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.username, c.password));
            return Ok(Granted {
                value: format!("Basic {token}"),
                scope: None,
                expires: None,
            });
        }
        if !challenge.scheme.eq_ignore_ascii_case("bearer") {
            bail!(
                "registry {} answered 401 with an unsupported challenge {:?}",
                self.host,
                challenge.scheme
            );
        }
        let realm = challenge
            .param("realm")
            .with_context(|| format!("registry {}: Bearer challenge without a realm", self.host))?;
        let url = Url::parse(realm)
            .with_context(|| format!("registry {}: bad token realm {realm:?}", self.host))?;
        check_realm(self.api_host(), &url, &self.token_hosts)
            .map_err(|e| anyhow::anyhow!("registry {}: {e}", self.host))?;
        let service = challenge.param("service").map(str::to_string);
        *self.bearer.lock().unwrap_or_else(|e| e.into_inner()) = Some((url.clone(), service));
        self.fetch_token(scope).await
    }

    /// A token for `scope` from the token service a Bearer challenge named (checked then).
    pub(super) async fn fetch_token(&self, scope: &Scope) -> Result<Granted> {
        let known = self
            .bearer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some((mut url, service)) = known else {
            bail!("registry {}: no token service known yet", self.host);
        };
        let realm = url.to_string();
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = &service {
                q.append_pair("service", service);
            }
            for p in scope.params() {
                q.append_pair("scope", &p);
            }
        }
        let mut req = self.token_http.get(url);
        if let Some(c) = self.credentials.as_ref() {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = req.send().await.map_err(|e| {
            anyhow::anyhow!(
                "registry {}: token request to {realm} failed: {}",
                self.host,
                self.describe(&e)
            )
        })?;
        if !resp.status().is_success() {
            bail!(
                "registry {}: token request to {realm} answered {} (check the credentials for {}{})",
                self.host,
                resp.status(),
                self.host,
                self.credentials_elsewhere()
            );
        }
        let body = self
            .read_small(resp, 1 << 20, &format!("token response from {realm}"))
            .await?;
        let body: serde_json::Value = serde_json::from_slice(&body)
            .with_context(|| format!("registry {}: the token response is not JSON", self.host))?;
        let token = body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .with_context(|| format!("registry {}: token response without a token", self.host))?;
        let life = body["expires_in"].as_u64().unwrap_or(DEFAULT_TOKEN_LIFE);
        Ok(Granted {
            value: format!("Bearer {token}"),
            scope: Some(scope.clone()),
            expires: Some(Instant::now() + Duration::from_secs(life.min(86_400))),
        })
    }

    /// The error of a 401 that came although we sent what the registry asked for.
    pub(super) fn refused(&self, scope: &Scope, sent: Option<&Granted>) -> anyhow::Error {
        let repo = &scope.repo;
        match (sent, self.credentials.as_ref()) {
            (Some(g), Some(c)) if g.is_basic() => anyhow::anyhow!(
                "registry {} (repository {repo}) refused the credentials of user {:?} (HTTP 401): check MLOPS_REGISTRY_USER/_PASSWORD or the config.json entry for {}",
                self.host,
                c.username,
                self.host
            ),
            (Some(_), _) => {
                let realm = self
                    .bearer
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .map(|(u, _)| u.to_string())
                    .unwrap_or_default();
                anyhow::anyhow!(
                    "registry {} (repository {repo}) refused the token from {realm} even after fetching a new one (HTTP 401): the token is expired or not valid for this registry (check the clocks of both machines, and that the token service grants {})",
                    self.host,
                    scope.params().join(" ")
                )
            }
            (None, _) => anyhow::anyhow!(
                "registry {} (repository {repo}) answered 401 again after authentication{}",
                self.host,
                self.credentials_elsewhere()
            ),
        }
    }

    /// A hint when credentials exist, but for other registries.
    fn credentials_elsewhere(&self) -> String {
        if self.credentials.is_some() || self.hosts_with_credentials.is_empty() {
            return String::new();
        }
        format!(
            " (credentials are set only for {}; they are never sent to another registry)",
            self.hosts_with_credentials.join(", ")
        )
    }
}

/// The redirect rule of token requests: every hop is held to [`check_realm`].
pub(crate) fn token_redirects(
    registry_host: String,
    token_hosts: Vec<String>,
) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 10 {
            return attempt.error("more than 10 redirects");
        }
        match check_realm(&registry_host, attempt.url(), &token_hosts) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(format!("token request redirected: {e}")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn parses_challenges_with_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example/token"));
        assert_eq!(c.param("service"), Some("reg.example"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        let c = parse_challenge(r#"Basic realm="say \"hi\"", charset=UTF-8"#);
        assert_eq!(c.scheme, "Basic");
        assert_eq!(c.param("realm"), Some(r#"say "hi""#));
        assert_eq!(c.param("charset"), Some("UTF-8"));
        let c = parse_challenge(r#"Bearer realm="https://a/t", Basic realm="x""#);
        assert_eq!(c.params.len(), 1);
        assert_eq!(parse_challenge("Basic").params, vec![]);
    }

    #[test]
    fn realms_on_the_registry_host_or_its_known_service() {
        assert!(check_realm("ghcr.io", &url("https://ghcr.io/token"), &[]).is_ok());
        assert!(check_realm("reg.example", &url("https://reg.example:5001/auth"), &[]).is_ok());
        assert!(check_realm(
            "registry-1.docker.io",
            &url("https://auth.docker.io/token"),
            &[]
        )
        .is_ok());
        assert!(check_realm("127.0.0.1", &url("http://127.0.0.1:9999/token"), &[]).is_ok());
    }

    #[test]
    fn realms_elsewhere_are_refused_unless_listed() {
        let e = check_realm("ghcr.io", &url("https://evil.example/token"), &[]).unwrap_err();
        assert!(
            e.contains("MLOPS_REGISTRY_TOKEN_HOSTS") && e.contains("evil.example"),
            "{e}"
        );
        // auth.docker.io serves Docker Hub only.
        assert!(check_realm("ghcr.io", &url("https://auth.docker.io/token"), &[]).is_err());
        let listed = vec!["auth.example".to_string()];
        assert!(check_realm("reg.example", &url("https://auth.example/t"), &listed).is_ok());
        let with_port = vec!["auth.example:8443".to_string()];
        assert!(check_realm(
            "reg.example",
            &url("https://auth.example:8443/t"),
            &with_port
        )
        .is_ok());
        assert!(check_realm("reg.example", &url("https://auth.example/t"), &with_port).is_err());
        // A realm inside this machine, named by a remote registry.
        assert!(check_realm("reg.example", &url("http://127.0.0.1:2375/x"), &[]).is_err());
        assert!(check_realm("127.0.0.1", &url("http://localhost:9/x"), &[]).is_err());
    }

    #[test]
    fn scopes_cover_pulls_and_name_the_mount_source() {
        let mount = Scope::mount("acme/churn", "acme/base");
        assert_eq!(
            mount.params(),
            [
                "repository:acme/churn:pull,push",
                "repository:acme/base:pull"
            ]
        );
        assert_eq!(Scope::pull("a").params(), ["repository:a:pull"]);
        assert!(mount.covers(&Scope::pull("acme/churn")));
        assert!(mount.covers(&Scope::push("acme/churn")));
        assert!(Scope::push("a").covers(&Scope::pull("a")));
        assert!(!Scope::pull("a").covers(&Scope::push("a")));
        assert!(!Scope::push("a").covers(&Scope::mount("a", "b")));
        assert!(!Scope::push("a").covers(&Scope::pull("b")));
        let now = Instant::now();
        let token = Granted {
            value: "Bearer t".into(),
            scope: Some(Scope::push("a")),
            expires: Some(now + Duration::from_secs(3)),
        };
        assert!(
            !token.serves(&Scope::pull("a"), now),
            "expires within the margin"
        );
        let token = Granted {
            expires: Some(now + Duration::from_secs(60)),
            ..token
        };
        assert!(token.serves(&Scope::pull("a"), now));
        assert!(!token.serves(&Scope::pull("b"), now));
    }

    #[test]
    fn realms_must_be_https_unless_on_loopback() {
        let e = check_realm("reg.example", &url("http://reg.example/token"), &[]).unwrap_err();
        assert!(e.contains("not https"), "{e}");
        assert!(check_realm("reg.example", &url("ftp://reg.example/t"), &[]).is_err());
        assert!(check_realm("localhost", &url("http://localhost:5001/t"), &[]).is_ok());
        assert!(check_realm("[::1]", &url("http://[::1]:5001/t"), &[]).is_ok());
    }
}
