//! A small OCI distribution client: what packaging and signing need, streamed, bounded,
//! verified and retried. Plain HTTP for loopback registries, HTTPS otherwise.
//!
//! - Credentials: the caller's [`RegistrySettings`] (built by the command line; this client
//!   reads no environment), and of those only the ones of this registry's `host[:port]`.
//!   Anonymous first; on 401 the challenge decides (see `auth`: Bearer realms are checked).
//!   The Authorization header goes only to the registry's own origin (scheme, host, port):
//!   never to an upload `Location` elsewhere; reqwest drops it on a redirect to another origin,
//!   and a redirect from https to plain http is refused.
//! - Bounds: a manifest is at most 4 MiB, a blob read into memory at most 16 MiB, and a blob is
//!   exactly the size its descriptor gives (reading stops at the first byte past it); the
//!   connection may stay silent for at most the read timeout (`MLOPS_REGISTRY_TIMEOUT_SECS`).
//! - Retries: 5xx, 429 (honouring `Retry-After`, seconds or a date) and connection errors, with
//!   exponential backoff, only for idempotent requests (GET, HEAD, PUT of content-addressed
//!   data; a blob upload is restarted from its POST).
//! - Every blob and manifest fetched by digest is verified against that digest (sha256 or
//!   sha512); a digest read from anywhere is parsed before it names a URL.
//! - Errors name the registry, the repository, the request and the HTTP status.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use reqwest::header::{self, HeaderValue};
use reqwest::{StatusCode, Url};

use super::auth::{Granted, Scope};
use super::blob::BlobReader;
use super::credentials::{Credentials, RegistrySettings};
use super::digest::Digest;
use super::reference::valid_tag;
use crate::http::{Attempt, Failure, Policy};

/// Manifest media types we read and write.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest we read (real ones are a few KiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The largest blob we hold in memory: an image config, a signature payload, an attestation.
pub const MAX_BLOB_IN_MEMORY: u64 = 16 << 20;

const ATTEMPTS: u32 = 5;
/// How `send` makes a request, once per try.
type Build<'a> = dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Sync + 'a;
/// The longest `Retry-After` we honour before retrying anyway.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

pub struct Registry {
    http: reqwest::Client,
    /// For token requests: every redirect is held to the realm rule.
    pub(super) token_http: reqwest::Client,
    pub(super) host: String,
    base: Url,
    pub(super) credentials: Option<Credentials>,
    /// The registries that do have credentials, for error messages.
    pub(super) hosts_with_credentials: Vec<String>,
    pub(super) token_hosts: Vec<String>,
    /// The Authorization values that worked: Basic, or a token per scope.
    auth: Mutex<Vec<Granted>>,
    /// The token service (realm, service) of the last Bearer challenge, once checked.
    pub(super) bearer: Mutex<Option<(Url, Option<String>)>>,
    /// Blobs above this size go up in chunks of it.
    pub(super) chunk: u64,
    /// Retries: the shared HTTP policy, with this registry's backoff.
    policy: Policy,
    pub(super) read_timeout: Duration,
}

pub struct Fetched {
    pub bytes: Vec<u8>,
    pub media_type: String,
    /// sha256 of the bytes.
    pub digest: String,
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    Digest::of(bytes).to_string()
}

pub(super) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Redirects of registry requests: at most 10, never from https down to http.
fn redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 10 {
            return attempt.error("more than 10 redirects");
        }
        let from_https = attempt
            .previous()
            .last()
            .is_some_and(|u| u.scheme() == "https");
        if from_https && attempt.url().scheme() != "https" {
            let to = attempt.url().to_string();
            return attempt.error(format!("redirected from https to {to}: refusing"));
        }
        attempt.follow()
    })
}

/// A tag, or a digest (parsed): what a manifest request may name.
fn manifest_reference(reference: &str) -> Result<Option<Digest>> {
    if reference.contains(':') {
        return Digest::parse(reference)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("manifest reference: {e}"));
    }
    if !valid_tag(reference) {
        bail!("{reference:?} is neither a tag nor a digest");
    }
    Ok(None)
}

fn size_text(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

impl Registry {
    pub fn new(host: &str, settings: &RegistrySettings) -> Result<Registry> {
        let scheme = if settings.speaks_https(host) {
            "https"
        } else {
            "http"
        };
        // Docker Hub's references name docker.io; its API lives elsewhere.
        let api_host = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        let base = Url::parse(&format!("{scheme}://{api_host}"))
            .with_context(|| format!("registry host {host:?} does not make a URL"))?;
        let client = || {
            reqwest::Client::builder()
                .user_agent(concat!("mlops/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(settings.read_timeout)
                .tls_certs_merge(settings.extra_roots.iter().cloned())
        };
        let api_hostname = base.host_str().unwrap_or_default().to_string();
        Ok(Registry {
            http: client().redirect(redirects()).build()?,
            token_http: client()
                .redirect(super::auth::token_redirects(
                    api_hostname,
                    settings.token_hosts.clone(),
                ))
                .build()?,
            host: host.to_string(),
            base,
            credentials: settings.credentials_for(host).cloned(),
            hosts_with_credentials: settings
                .hosts_with_credentials()
                .into_iter()
                .map(str::to_string)
                .collect(),
            token_hosts: settings.token_hosts.clone(),
            auth: Mutex::new(Vec::new()),
            bearer: Mutex::new(None),
            chunk: settings.chunk,
            policy: Policy {
                backoff: settings.backoff,
                attempts: ATTEMPTS,
                max_wait: MAX_RETRY_AFTER,
                max_retry_after: MAX_RETRY_AFTER,
            },
            read_timeout: settings.read_timeout,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub(super) fn base(&self) -> &Url {
        &self.base
    }

    pub(super) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The host name of the registry's API (`registry-1.docker.io` for `docker.io`).
    pub(super) fn api_host(&self) -> &str {
        self.base.host_str().unwrap_or_default()
    }

    fn cached_auth(&self, scope: &Scope) -> Option<Granted> {
        let now = std::time::Instant::now();
        let slot = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        slot.iter().rev().find(|g| g.serves(scope, now)).cloned()
    }

    fn remember(&self, granted: Granted) {
        let mut slot = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        slot.retain(|g| g.scope != granted.scope && g.expires.is_none_or(|e| e > now));
        slot.push(granted);
    }

    /// Sends a request built by `build` (called again for each attempt), authenticating on
    /// demand and retrying transient failures when `idempotent` (the policy of `crate::http`).
    /// Credentials go only to the registry's own origin.
    pub(super) async fn send(
        &self,
        what: &str,
        scope: &Scope,
        idempotent: bool,
        build: &Build<'_>,
    ) -> Result<reqwest::Response> {
        let answered = AtomicU32::new(0);
        let logged = format!("{what} at registry {}", self.host);
        self.policy
            .run(&logged, idempotent, || {
                self.try_once(what, scope, idempotent, build, &answered)
            })
            .await
            .map_err(Failure::into_error)
    }

    /// The request `build` makes, with the Authorization for `scope` when it goes to the
    /// registry's own origin (then also true): one that worked, or a new token from the token
    /// service a challenge named before, when the one we held has expired.
    async fn authorized(
        &self,
        what: &str,
        scope: &Scope,
        build: &Build<'_>,
    ) -> Result<(reqwest::Request, bool, Option<Granted>)> {
        let mut req = build(&self.http)
            .build()
            .with_context(|| format!("{what} at registry {}", self.host))?;
        let own_origin = same_origin(req.url(), &self.base);
        if !own_origin {
            return Ok((req, false, None));
        }
        let mut granted = self.cached_auth(scope);
        if granted.is_none() && self.bearer.lock().is_ok_and(|b| b.is_some()) {
            let fresh = self.fetch_token(scope).await?;
            self.remember(fresh.clone());
            granted = Some(fresh);
        }
        if let Some(g) = &granted {
            let mut value = HeaderValue::from_str(&g.value).with_context(|| {
                format!("registry {}: the token is not a header value", self.host)
            })?;
            value.set_sensitive(true);
            req.headers_mut().insert(header::AUTHORIZATION, value);
        }
        Ok((req, true, granted))
    }

    /// One try of `send`: the request, and the authentication a 401 asks for: once when we
    /// sent nothing or a token we held, and once more when the new token is refused too (it may
    /// have expired in between: a token is refreshed once). A refused Basic password is final.
    async fn try_once(
        &self,
        what: &str,
        scope: &Scope,
        idempotent: bool,
        build: &Build<'_>,
        answered: &AtomicU32,
    ) -> Attempt<reqwest::Response, anyhow::Error> {
        let repo = &scope.repo;
        loop {
            let (req, own_origin, sent) = match self.authorized(what, scope, build).await {
                Ok(r) => r,
                Err(e) => return Attempt::Done(Err(e)),
            };
            let resp = match self.http.execute(req).await {
                Ok(r) => r,
                Err(e) => {
                    let error = anyhow::anyhow!(
                        "{what} at registry {} (repository {repo}) failed: {}",
                        self.host,
                        self.describe(&e)
                    );
                    if tls_problem(&e).is_some() {
                        return Attempt::Done(Err(error));
                    }
                    return match (idempotent, e.is_connect(), e.is_timeout()) {
                        (true, true, _) => Attempt::NotSent(error),
                        (true, false, true) => Attempt::Lost(error),
                        _ => Attempt::Done(Err(error)),
                    };
                }
            };
            let status = resp.status();
            // A 401 from another origin (an upload location elsewhere) gets no credentials.
            if status == StatusCode::UNAUTHORIZED && own_origin {
                let earlier = answered.fetch_add(1, Ordering::SeqCst);
                let basic_refused = earlier > 0 && sent.as_ref().is_some_and(Granted::is_basic);
                if basic_refused || earlier >= 2 {
                    return Attempt::Done(Err(self.refused(scope, sent.as_ref())));
                }
                let challenge = resp
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                match self.authenticate(&challenge, scope).await {
                    Ok(granted) => {
                        self.remember(granted);
                        continue;
                    }
                    Err(e) => return Attempt::Done(Err(e)),
                }
            }
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = resp
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| crate::http::retry_after(v, SystemTime::now()));
                return Attempt::Busy {
                    answer: Ok(resp),
                    retry_after,
                    why: format!("answered {status}"),
                };
            }
            return Attempt::Done(Ok(resp));
        }
    }

    /// A transport error in words, naming the read timeout when that is what ended it.
    pub(super) fn describe(&self, e: &reqwest::Error) -> String {
        if let Some(problem) = tls_problem(e) {
            return self.tls_advice(&problem);
        }
        if e.is_timeout() {
            format!(
                "no data for {} s (the read timeout; MLOPS_REGISTRY_TIMEOUT_SECS changes it)",
                self.read_timeout.as_secs()
            )
        } else {
            format!("{e}")
        }
    }

    pub(super) async fn chunk(
        &self,
        resp: &mut reqwest::Response,
        what: &str,
    ) -> Result<Option<bytes::Bytes>> {
        resp.chunk().await.map_err(|e| {
            anyhow::anyhow!(
                "{what}: reading from registry {} failed: {}",
                self.host,
                self.describe(&e)
            )
        })
    }

    /// A whole response body of at most `limit` bytes; a longer one is refused without reading
    /// past the chunk that crossed the limit.
    pub(super) async fn read_small(
        &self,
        mut resp: reqwest::Response,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
        let too_large = || {
            anyhow::anyhow!(
                "{what}: registry {} sent more than {}: refusing it",
                self.host,
                size_text(limit)
            )
        };
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk(&mut resp, what).await? {
            if (out.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    pub(super) fn url(&self, repo: &str, tail: &str) -> String {
        format!("{}v2/{repo}/{tail}", self.base)
    }

    pub(super) async fn fail(
        &self,
        what: &str,
        repo: &str,
        mut resp: reqwest::Response,
    ) -> anyhow::Error {
        let status = resp.status();
        // The first few KiB of the body say why; the rest is not read.
        let mut body = Vec::new();
        while body.len() < 4096 {
            match resp.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c),
                _ => break,
            }
        }
        let body: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        anyhow::anyhow!(
            "{what} at registry {} (repository {repo}) answered HTTP {status}: {}",
            self.host,
            body.trim()
        )
    }

    /// A manifest by tag or digest (at most 4 MiB); verified when fetched by digest.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<Fetched> {
        let pinned = manifest_reference(reference)
            .with_context(|| format!("registry {} (repository {repo})", self.host))?;
        let url = self.url(repo, &format!("manifests/{reference}"));
        let accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ");
        let what = format!("GET manifest {reference}");
        let resp = self
            .send(&what, &Scope::pull(repo), true, &|c| {
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
        let what = format!("manifest {repo}:{reference}");
        let bytes = self.read_small(resp, MAX_MANIFEST_BYTES, &what).await?;
        if let Some(expected) = pinned {
            if !expected.matches(&bytes) {
                let mut h = expected.hasher();
                h.update(&bytes);
                bail!(
                    "registry {} returned a manifest for {repo}@{reference} whose digest is {}: refusing it",
                    self.host,
                    h.finish()
                );
            }
        }
        let media_type = if media_type.is_empty() || media_type == "application/json" {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .with_context(|| format!("registry {}: {what} is not JSON", self.host))?
                ["mediaType"]
                .as_str()
                .unwrap_or(OCI_MANIFEST)
                .to_string()
        } else {
            media_type
        };
        Ok(Fetched {
            digest: sha256_digest(&bytes),
            bytes,
            media_type,
        })
    }

    /// Whether a manifest exists (None: 404).
    pub async fn manifest_digest(&self, repo: &str, reference: &str) -> Result<Option<String>> {
        manifest_reference(reference)
            .with_context(|| format!("registry {} (repository {repo})", self.host))?;
        let url = self.url(repo, &format!("manifests/{reference}"));
        let accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ");
        let what = format!("HEAD manifest {reference}");
        let resp = self
            .send(&what, &Scope::pull(repo), true, &|c| {
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

    /// GET a blob, checking what the registry announces against the descriptor.
    async fn get_blob(&self, repo: &str, digest: &Digest, size: u64) -> Result<BlobReader<'_>> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let what = format!("GET blob {digest}");
        let resp = self
            .send(&what, &Scope::pull(repo), true, &|c| c.get(&url))
            .await?;
        if !resp.status().is_success() {
            return Err(self.fail(&what, repo, resp).await);
        }
        let name = format!("blob {repo}@{digest}");
        if let Some(announced) = resp.content_length().filter(|n| *n != size) {
            bail!(
                "registry {} announces {name} as {announced} bytes, but its descriptor says {size}: refusing it",
                self.host
            );
        }
        Ok(BlobReader::new(self, resp, digest, name, size))
    }

    /// A small blob (a config, a signature payload) in memory: at most 16 MiB, exactly `size`
    /// bytes, verified.
    pub async fn blob(&self, repo: &str, digest: &str, size: u64) -> Result<Vec<u8>> {
        let digest = self.parse_digest(repo, digest)?;
        if size > MAX_BLOB_IN_MEMORY {
            bail!(
                "registry {}: blob {repo}@{digest} is {size} bytes by its descriptor; refusing to read more than {} into memory",
                self.host,
                size_text(MAX_BLOB_IN_MEMORY)
            );
        }
        let mut reader = self.get_blob(repo, &digest, size).await?;
        let mut out = Vec::with_capacity(size as usize);
        while let Some(chunk) = reader.next().await? {
            out.extend_from_slice(&chunk);
        }
        reader.finish()?;
        Ok(out)
    }

    /// Streams a blob of exactly `size` bytes to a file, verifying its digest; returns its size.
    pub async fn blob_to_file(
        &self,
        repo: &str,
        digest: &str,
        size: u64,
        path: &Path,
    ) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let digest = self.parse_digest(repo, digest)?;
        let mut reader = self.get_blob(repo, &digest, size).await?;
        let mut file = tokio::fs::File::create(path)
            .await
            .with_context(|| format!("cannot create {}", path.display()))?;
        while let Some(chunk) = reader.next().await? {
            file.write_all(&chunk)
                .await
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        file.flush().await?;
        reader.finish()?;
        Ok(size)
    }

    pub(super) fn parse_digest(&self, repo: &str, digest: &str) -> Result<Digest> {
        Digest::parse(digest)
            .map_err(|e| anyhow::anyhow!("registry {} (repository {repo}): {e}", self.host))
    }

    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        self.blob_exists_for(&Scope::pull(repo), digest).await
    }

    /// HEAD of a blob with the token of `scope` (a push scope before an upload: one token).
    pub(super) async fn blob_exists_for(&self, scope: &Scope, digest: &str) -> Result<bool> {
        let repo = scope.repo.as_str();
        let digest = self.parse_digest(repo, digest)?;
        let url = self.url(repo, &format!("blobs/{digest}"));
        let what = format!("HEAD blob {digest}");
        let resp = self.send(&what, scope, true, &|c| c.head(&url)).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(self.fail(&what, repo, resp).await),
        }
    }

    /// Whether these credentials may push to `repo`: starts a blob upload session (what a
    /// push does first), then cancels it with a DELETE; nothing is written. `mlops doctor`.
    pub async fn probe_push(&self, repo: &str) -> Result<()> {
        let start = self.url(repo, "blobs/uploads/");
        let what = "start a blob upload (push check)";
        let scope = Scope::push(repo);
        let resp = self.send(what, &scope, false, &|c| c.post(&start)).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.fail(what, repo, resp).await);
        }
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .with_context(|| {
                format!("registry {}: upload session without a Location", self.host)
            })?;
        let url = self
            .base
            .join(&location)
            .with_context(|| format!("registry {}: bad upload location {location:?}", self.host))?;
        if !same_origin(&url, &self.base) {
            // Another host (a storage redirect): the session expires on its own.
            return Ok(());
        }
        let cancel = "cancel the blob upload (push check)";
        match self
            .send(cancel, &scope, true, &|c| {
                c.request(reqwest::Method::DELETE, url.clone())
            })
            .await
        {
            Ok(r) if !r.status().is_success() && r.status() != StatusCode::NOT_FOUND => {
                tracing::debug!("registry {}: {cancel} answered {}", self.host, r.status());
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("registry {}: {cancel}: {e:#}", self.host),
        }
        Ok(())
    }

    /// Cross-repository mount; false when the registry wants an upload instead.
    pub async fn mount(&self, repo: &str, digest: &str, from: &str) -> Result<bool> {
        let digest = self.parse_digest(repo, digest)?;
        let url = self.url(repo, "blobs/uploads/");
        let what = format!("mount blob {digest} from {from}");
        let resp = self
            .send(&what, &Scope::mount(repo, from), true, &|c| {
                c.post(&url)
                    .query(&[("mount", digest.as_str()), ("from", from)])
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => Ok(false),
            _ => Err(self.fail(&what, repo, resp).await),
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
        manifest_reference(reference)
            .with_context(|| format!("registry {} (repository {repo})", self.host))?;
        let url = self.url(repo, &format!("manifests/{reference}"));
        let what = format!("PUT manifest {reference}");
        let body = bytes::Bytes::copy_from_slice(bytes);
        let resp = self
            .send(&what, &Scope::push(repo), true, &|c| {
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

/// What went wrong in TLS, when that is why a request failed: the innermost message.
fn tls_problem(e: &reqwest::Error) -> Option<String> {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut found = None;
    while let Some(err) = source {
        let text = err.to_string();
        let lower = text.to_ascii_lowercase();
        if lower.contains("certificate")
            || lower.contains("corrupt message")
            || lower.contains("tls")
        {
            found = Some(text);
        }
        source = err.source();
    }
    found
}

impl Registry {
    fn tls_advice(&self, problem: &str) -> String {
        if problem.to_ascii_lowercase().contains("certificate") {
            format!(
                "the TLS certificate of registry {} is not trusted ({problem}): if it comes from a private CA, set MLOPS_REGISTRY_CA_FILE to that CA's PEM file",
                self.host
            )
        } else {
            format!(
                "registry {} at {} does not speak TLS as expected ({problem}); loopback registries are spoken to over plain http unless MLOPS_REGISTRY_HTTPS_HOSTS lists them",
                self.host, self.base
            )
        }
    }
}

#[cfg(test)]
#[path = "registry/tests.rs"]
mod tests;
