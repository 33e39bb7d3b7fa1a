//! A small OCI distribution client: what packaging and signing need, streamed, verified and
//! retried. Plain HTTP for loopback registries, HTTPS otherwise.
//!
//! - Auth: anonymous first; on 401 the `WWW-Authenticate` challenge decides — Bearer (token from
//!   the realm, with credentials when we have them) or Basic. Credentials come from
//!   `MLOPS_REGISTRY_USER`/`MLOPS_REGISTRY_PASSWORD`, else Docker's `config.json` (`auths`).
//! - Retries: 5xx, 429 (honouring `Retry-After`) and connection errors, with exponential backoff,
//!   only for idempotent requests (GET, HEAD, PUT of content-addressed data; a blob upload is
//!   restarted from its POST).
//! - Every blob and manifest fetched by digest is verified against that digest.
//! - Errors name the registry, the repository, the request and the HTTP status.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine;
use reqwest::{header, Method, StatusCode};
use sha2::{Digest, Sha256};

/// Manifest media types we read and write.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

const ATTEMPTS: u32 = 5;

pub struct Registry {
    http: reqwest::Client,
    host: String,
    base: String,
    credentials: Option<(String, String)>,
    /// The Authorization header that last worked, per scope.
    auth: Mutex<Option<(String, String)>>,
    /// First backoff delay; doubled per attempt.
    pub backoff: Duration,
}

pub struct Fetched {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn is_loopback(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name.starts_with("127.")
}

impl Registry {
    pub fn new(host: &str) -> Result<Registry> {
        let scheme = if is_loopback(host) { "http" } else { "https" };
        // Docker Hub's references name docker.io; its API lives elsewhere.
        let api_host = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        Ok(Registry {
            http: reqwest::Client::builder()
                .user_agent(concat!("mlops/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(10))
                .build()?,
            host: host.to_string(),
            base: format!("{scheme}://{api_host}"),
            credentials: credentials_for(host),
            auth: Mutex::new(None),
            backoff: Duration::from_millis(
                std::env::var("MLOPS_REGISTRY_BACKOFF_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(250),
            ),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends a request built by `build` (called again for each attempt), authenticating on
    /// demand and retrying transient failures when `idempotent`.
    async fn send(
        &self,
        what: &str,
        repo: &str,
        idempotent: bool,
        build: &(dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Sync),
    ) -> Result<reqwest::Response> {
        let mut attempt = 0;
        let mut authed_once = false;
        loop {
            attempt += 1;
            let mut req = build(&self.http);
            if let Some((scope_repo, value)) = self.auth.lock().unwrap().clone() {
                if scope_repo == repo || value.starts_with("Basic ") {
                    req = req.header(header::AUTHORIZATION, value);
                }
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e)
                    if idempotent && attempt < ATTEMPTS && (e.is_connect() || e.is_timeout()) =>
                {
                    tracing::debug!("{what}: {e}; retrying");
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt - 1)).await;
                    continue;
                }
                Err(e) => {
                    return Err(anyhow::anyhow!(
                        "{what} at registry {} (repository {repo}) failed: {e}",
                        self.host
                    ));
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !authed_once {
                authed_once = true;
                let challenge = resp
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let value = self.authenticate(&challenge, repo).await?;
                *self.auth.lock().unwrap() = Some((repo.to_string(), value));
                attempt -= 1;
                continue;
            }
            let transient = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
            if transient && idempotent && attempt < ATTEMPTS {
                let wait = resp
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s.min(60)))
                    .unwrap_or(self.backoff * 2u32.pow(attempt - 1));
                tracing::info!(
                    "{what}: registry {} answered {status}; retrying in {:.1}s",
                    self.host,
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(resp);
        }
    }

    async fn authenticate(&self, challenge: &str, repo: &str) -> Result<String> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        let creds = self.credentials.as_ref();
        if scheme.eq_ignore_ascii_case("basic") {
            let Some((user, pass)) = creds else {
                bail!(
                    "registry {} (repository {repo}) asks for credentials: set MLOPS_REGISTRY_USER and MLOPS_REGISTRY_PASSWORD or `docker login {}`",
                    self.host,
                    self.host
                );
            };
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            return Ok(format!("Basic {token}"));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            bail!(
                "registry {} answered 401 with an unsupported challenge {challenge:?}",
                self.host
            );
        }
        let param = |name: &str| {
            params.split(',').find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                (k == name).then(|| v.trim_matches('"').to_string())
            })
        };
        let realm = param("realm").context("Bearer challenge without a realm")?;
        let mut url = reqwest::Url::parse(&realm)
            .with_context(|| format!("registry {}: bad token realm {realm:?}", self.host))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = param("service") {
                q.append_pair("service", &service);
            }
            q.append_pair("scope", &format!("repository:{repo}:pull,push"));
        }
        let mut req = self.http.get(url);
        if let Some((user, pass)) = creds {
            req = req.basic_auth(user, Some(pass));
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("registry {}: token request to {realm} failed", self.host))?;
        if !resp.status().is_success() {
            bail!(
                "registry {}: token request to {realm} answered {} (check the credentials for repository {repo})",
                self.host,
                resp.status()
            );
        }
        let body: serde_json::Value = resp.json().await?;
        let token = body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .context("token response without a token")?;
        Ok(format!("Bearer {token}"))
    }

    fn url(&self, repo: &str, tail: &str) -> String {
        format!("{}/v2/{repo}/{tail}", self.base)
    }

    async fn fail(&self, what: &str, repo: &str, resp: reqwest::Response) -> anyhow::Error {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        anyhow::anyhow!(
            "{what} at registry {} (repository {repo}) answered HTTP {status}: {}",
            self.host,
            body.trim()
        )
    }

    /// A manifest by tag or digest; verified when fetched by digest.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<Fetched> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ");
        let what = format!("GET manifest {reference}");
        let resp = self
            .send(&what, repo, true, &|c| {
                c.get(&url).header(header::ACCEPT, &accept)
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.fail(&what, repo, resp).await);
        }
        let media_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = resp.bytes().await?.to_vec();
        let digest = sha256_digest(&bytes);
        if reference.starts_with("sha256:") && digest != reference {
            bail!(
                "registry {} returned a manifest for {repo}@{reference} whose digest is {digest}: refusing it",
                self.host
            );
        }
        let media_type = if media_type.is_empty() || media_type == "application/json" {
            serde_json::from_slice::<serde_json::Value>(&bytes)?["mediaType"]
                .as_str()
                .unwrap_or(OCI_MANIFEST)
                .to_string()
        } else {
            media_type
        };
        Ok(Fetched {
            bytes,
            media_type,
            digest,
        })
    }

    /// Whether a manifest exists (None: 404).
    pub async fn manifest_digest(&self, repo: &str, reference: &str) -> Result<Option<String>> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ");
        let what = format!("HEAD manifest {reference}");
        let resp = self
            .send(&what, repo, true, &|c| {
                c.head(&url).header(header::ACCEPT, &accept)
            })
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or(Some(String::new()))),
            _ => Err(self.fail(&what, repo, resp).await),
        }
    }

    /// A small blob (a config, a signature payload) in memory, verified.
    pub async fn blob(&self, repo: &str, digest: &str) -> Result<Vec<u8>> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let what = format!("GET blob {digest}");
        let resp = self.send(&what, repo, true, &|c| c.get(&url)).await?;
        if !resp.status().is_success() {
            return Err(self.fail(&what, repo, resp).await);
        }
        let bytes = resp.bytes().await?.to_vec();
        let got = sha256_digest(&bytes);
        if got != digest {
            bail!(
                "registry {} returned blob {repo}@{digest} with digest {got}: refusing it",
                self.host
            );
        }
        Ok(bytes)
    }

    /// Streams a blob to a file, verifying its digest; returns its size.
    pub async fn blob_to_file(&self, repo: &str, digest: &str, path: &Path) -> Result<u64> {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let url = self.url(repo, &format!("blobs/{digest}"));
        let what = format!("GET blob {digest}");
        let resp = self.send(&what, repo, true, &|c| c.get(&url)).await?;
        if !resp.status().is_success() {
            return Err(self.fail(&what, repo, resp).await);
        }
        let mut file = tokio::fs::File::create(path).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        let got = format!("sha256:{}", hex::encode(hasher.finalize()));
        if got != digest {
            bail!(
                "registry {} returned blob {repo}@{digest} with digest {got}: refusing it",
                self.host
            );
        }
        Ok(size)
    }

    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let what = format!("HEAD blob {digest}");
        let resp = self.send(&what, repo, true, &|c| c.head(&url)).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(self.fail(&what, repo, resp).await),
        }
    }

    /// Cross-repository mount; false when the registry wants an upload instead.
    pub async fn mount(&self, repo: &str, digest: &str, from: &str) -> Result<bool> {
        let url = self.url(repo, "blobs/uploads/");
        let what = format!("mount blob {digest} from {from}");
        let resp = self
            .send(&what, repo, true, &|c| {
                c.post(&url).query(&[("mount", digest), ("from", from)])
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => Ok(false),
            _ => Err(self.fail(&what, repo, resp).await),
        }
    }

    /// Uploads a blob unless the repository has it: bytes in memory (small blobs).
    /// Returns whether bytes were sent.
    pub async fn push_bytes(&self, repo: &str, digest: &str, bytes: &[u8]) -> Result<bool> {
        if self.blob_exists(repo, digest).await? {
            return Ok(false);
        }
        let body = bytes::Bytes::copy_from_slice(bytes);
        self.upload(repo, digest, bytes.len() as u64, &|| {
            reqwest::Body::from(body.clone())
        })
        .await?;
        Ok(true)
    }

    /// Uploads a blob from a file unless the repository has it, streaming (memory stays flat).
    pub async fn push_file(&self, repo: &str, digest: &str, path: &Path) -> Result<bool> {
        if self.blob_exists(repo, digest).await? {
            return Ok(false);
        }
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        let path = path.to_path_buf();
        self.upload(repo, digest, size, &move || {
            let file = std::fs::File::open(&path).expect("blob file vanished");
            let stream = tokio_util::io::ReaderStream::with_capacity(
                tokio::fs::File::from_std(file),
                1 << 20,
            );
            reqwest::Body::wrap_stream(stream)
        })
        .await?;
        Ok(true)
    }

    /// POST a session, then one monolithic PUT; the pair is retried as a whole.
    async fn upload(
        &self,
        repo: &str,
        digest: &str,
        size: u64,
        body: &(dyn Fn() -> reqwest::Body + Sync),
    ) -> Result<()> {
        let what = format!("upload blob {digest}");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let start = self.url(repo, "blobs/uploads/");
            let resp = self.send(&what, repo, true, &|c| c.post(&start)).await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(self.fail(&what, repo, resp).await);
            }
            let location = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .context("upload session without a Location")?
                .to_string();
            let mut url = if location.starts_with("http") {
                reqwest::Url::parse(&location)?
            } else {
                reqwest::Url::parse(&format!("{}{location}", self.base))?
            };
            url.query_pairs_mut().append_pair("digest", digest);
            // Not retried by `send`: the body stream is consumed; we restart the session here.
            let resp = self
                .send(&what, repo, false, &|c| {
                    c.request(Method::PUT, url.clone())
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(header::CONTENT_LENGTH, size)
                        .body(body())
                })
                .await;
            match resp {
                Ok(r) if r.status() == StatusCode::CREATED => return Ok(()),
                Ok(r)
                    if (r.status().is_server_error()
                        || r.status() == StatusCode::TOO_MANY_REQUESTS)
                        && attempt < ATTEMPTS =>
                {
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt - 1)).await;
                }
                Ok(r) => return Err(self.fail(&what, repo, r).await),
                Err(_) if attempt < ATTEMPTS => {
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt - 1)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// PUT a manifest under a tag or its digest; returns the digest the registry reports.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let what = format!("PUT manifest {reference}");
        let body = bytes::Bytes::copy_from_slice(bytes);
        let resp = self
            .send(&what, repo, true, &|c| {
                c.put(&url)
                    .header(header::CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(self.fail(&what, repo, resp).await);
        }
        Ok(sha256_digest(bytes))
    }
}

/// Credentials for a registry host: MLOPS_REGISTRY_USER/PASSWORD, else Docker's config.json.
pub fn credentials_for(host: &str) -> Option<(String, String)> {
    if let (Ok(u), Ok(p)) = (
        std::env::var("MLOPS_REGISTRY_USER"),
        std::env::var("MLOPS_REGISTRY_PASSWORD"),
    ) {
        return Some((u, p));
    }
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")))?;
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).ok()?).ok()?;
    let auths = config["auths"].as_object()?;
    let entry = auths.iter().find_map(|(k, v)| {
        let k = k
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .trim_end_matches("/v1")
            .trim_end_matches("/v2");
        (k == host).then_some(v)
    })?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry["auth"].as_str()?)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts_use_plain_http() {
        assert!(super::is_loopback("127.0.0.1:5000"));
        assert!(super::is_loopback("localhost:5000"));
        assert!(super::is_loopback("localhost"));
        assert!(!super::is_loopback("ghcr.io"));
        assert!(!super::is_loopback("registry.example.com:5000"));
    }

    #[test]
    fn docker_config_credentials() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {"https://reg.example:5000/v2/": {"auth": "dXNlcjpwYXNz"}}}"#,
        )
        .unwrap();
        // Safety of set_var in tests: this test alone reads DOCKER_CONFIG.
        unsafe { std::env::set_var("DOCKER_CONFIG", dir.path()) };
        assert_eq!(
            super::credentials_for("reg.example:5000"),
            Some(("user".into(), "pass".into()))
        );
        assert_eq!(super::credentials_for("other:5000"), None);
    }
}
