//! A small GitHub REST client (reqwest) with the behaviour a CI tool needs and generic clients
//! lack: rate limits are waited out (`retry-after`, `x-ratelimit-reset`, secondary limits),
//! writes are serialised, idempotent requests are retried on 5xx and dropped connections, and a
//! POST that got no answer is *not* repeated: it fails with [`Unanswered`] so the caller can
//! re-read the state and decide. The token never appears in errors or logs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// GitHub's API version these requests are written against.
pub const API_VERSION: &str = "2022-11-28";

/// A request that reached (or may have reached) GitHub without an answer coming back: its
/// effect is unknown. Callers re-read the state instead of repeating a non-idempotent write.
#[derive(Debug, thiserror::Error)]
#[error("{method} {path}: no answer from GitHub ({cause}); it may or may not have been applied")]
pub struct Unanswered {
    pub method: Method,
    pub path: String,
    pub cause: String,
}

/// An answer with its status; non-2xx answers are returned, not raised, for the caller to judge.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    next: Option<String>,
}

impl Reply {
    /// GitHub's `message`, plus each entry of `errors`, for error texts.
    pub fn message(&self) -> String {
        let mut m = self.body["message"].as_str().unwrap_or("").to_string();
        if let Some(errors) = self.body["errors"].as_array() {
            for e in errors {
                let detail = e["message"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| e["code"].as_str().map(|c| format!("{} {c}", e["field"])))
                    .unwrap_or_default();
                if !detail.is_empty() {
                    m.push_str(": ");
                    m.push_str(&detail);
                }
            }
        }
        crate::report::clean(&m)
    }
}

pub struct Client {
    http: reqwest::Client,
    api: String,
    /// `owner/name`.
    pub repo: String,
    token: String,
    /// `GITHUB_APP_ID` when the token is the App's installation token.
    app_id: Option<String>,
    writes: tokio::sync::Mutex<()>,
    backoff: Duration,
    max_wait: Duration,
}

fn env_duration(var: &str, default: Duration, unit: fn(u64) -> Duration) -> Duration {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(unit)
        .unwrap_or(default)
}

impl Client {
    /// The client for `repo` at `GITHUB_API_URL` (default api.github.com), authenticated with
    /// `GITHUB_TOKEN`, or with a GitHub App (`GITHUB_APP_ID`, `GITHUB_APP_PRIVATE_KEY` and
    /// optionally `GITHUB_APP_INSTALLATION_ID`).
    pub async fn from_env(repo: &str) -> Result<Client> {
        let api = std::env::var("GITHUB_API_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "https://api.github.com".into())
            .trim_end_matches('/')
            .to_string();
        let http = reqwest::Client::builder()
            .timeout(env_duration(
                "MLOPS_GITHUB_TIMEOUT_SECS",
                Duration::from_secs(30),
                Duration::from_secs,
            ))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        let mut client = Client {
            http,
            api,
            repo: repo.to_string(),
            token: String::new(),
            app_id: None,
            writes: tokio::sync::Mutex::new(()),
            backoff: env_duration(
                "MLOPS_GITHUB_BACKOFF_MS",
                Duration::from_millis(1000),
                Duration::from_millis,
            ),
            max_wait: env_duration(
                "MLOPS_GITHUB_MAX_WAIT_SECS",
                Duration::from_secs(900),
                Duration::from_secs,
            ),
        };
        client.token = match std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty()) {
            Some(t) => t,
            None => match std::env::var("GITHUB_APP_ID").ok().filter(|t| !t.is_empty()) {
                Some(app) => {
                    let token = super::app::installation_token(&client, &app).await?;
                    client.app_id = Some(app);
                    token
                }
                None => bail!(
                    "the github forge needs a token: set GITHUB_TOKEN (in a workflow, `env: GITHUB_TOKEN: ${{{{ github.token }}}}` \
                     with `permissions: contents: write, pull-requests: write`), or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY for a GitHub App"
                ),
            },
        };
        Ok(client)
    }

    pub fn api_url(&self) -> &str {
        &self.api
    }

    /// The login of the account this client writes as: the App's bot (`<slug>[bot]`), else
    /// the token's user (`GET /user`). An installation token — the workflow's `GITHUB_TOKEN`
    /// is one — may not read `/user` (403), so GraphQL's `viewer`, which every kind of token
    /// may read, names its bot instead.
    pub async fn own_login(&self) -> Result<String> {
        if let Some(app) = &self.app_id {
            return super::app::bot_login(self, app).await;
        }
        let r = self.get("/user").await?;
        if r.status.is_success() {
            return match r.body["login"].as_str() {
                Some(login) if !login.is_empty() => Ok(login.to_string()),
                _ => bail!("GitHub's answer to GET /user has no login"),
            };
        }
        if r.status != StatusCode::FORBIDDEN {
            expect_ok(&r, "GET", "/user")?;
        }
        let graphql = graphql_url(&self.api);
        let query = serde_json::json!({"query": "query { viewer { login } }"});
        // A query changes nothing: one that got no answer may be asked again.
        let r = match self.post(&graphql, query.clone()).await {
            Err(e) if unanswered(&e) => self.post(&graphql, query).await?,
            other => other?,
        };
        expect_ok(&r, "POST", &graphql)?;
        match r.body["data"]["viewer"]["login"].as_str() {
            Some(login) if !login.is_empty() => Ok(login.to_string()),
            _ => bail!(
                "GitHub's answer to the GraphQL query {{ viewer {{ login }} }} at {graphql} names no login ({}); \
                 mlops edits only comments this token wrote, so it cannot tell which ones those are",
                r.message()
            ),
        }
    }

    /// `/repos/{owner}/{name}` + `rest`.
    pub fn repo_path(&self, rest: &str) -> String {
        format!("/repos/{}{rest}", self.repo)
    }

    pub async fn get(&self, path: &str) -> Result<Reply> {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Reply> {
        self.send(Method::POST, path, Some(&body), None).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Result<Reply> {
        self.send(Method::PATCH, path, Some(&body), None).await
    }

    /// A request with another bearer (the App's JWT).
    pub async fn send_as(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        bearer: &str,
    ) -> Result<Reply> {
        self.send(method, path, body, Some(bearer)).await
    }

    /// Every item of a paginated list (follows `link: <…>; rel="next"`).
    pub async fn get_all(&self, path: &str) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(p) = next.take() {
            let reply = self.get(&p).await?;
            expect_ok(&reply, "GET", &p)?;
            items.extend(reply.body.as_array().cloned().unwrap_or_default());
            next = reply.next;
        }
        Ok(items)
    }

    fn headers(&self, bearer: Option<&str>) -> Result<HeaderMap> {
        let mut h = HeaderMap::new();
        h.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        h.insert(
            "x-github-api-version",
            HeaderValue::from_static(API_VERSION),
        );
        h.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("mlops/", env!("CARGO_PKG_VERSION"))),
        );
        let token = bearer.unwrap_or(&self.token);
        if !token.is_empty() {
            let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                anyhow::anyhow!("the GitHub token contains characters a header cannot carry")
            })?;
            v.set_sensitive(true);
            h.insert(AUTHORIZATION, v);
        }
        Ok(h)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        bearer: Option<&str>,
    ) -> Result<Reply> {
        let idempotent = method != Method::POST;
        // One write at a time (GitHub's guidance against secondary rate limits).
        let _write = if method != Method::GET {
            Some(self.writes.lock().await)
        } else {
            None
        };
        // A path below the API base, or an absolute URL of the same service (GraphQL's).
        let url = if path.starts_with("https://") || path.starts_with("http://") {
            path.to_string()
        } else {
            format!("{}{path}", self.api)
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .headers(self.headers(bearer)?);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    // A refused connection never reached GitHub: safe to repeat whatever it was.
                    let retry = (e.is_connect() || idempotent) && attempt < 5;
                    if retry {
                        tracing::warn!("{method} {path}: {}; retrying", without_url(&e));
                        tokio::time::sleep(self.backoff * attempt).await;
                        continue;
                    }
                    if e.is_connect() {
                        bail!(
                            "cannot reach GitHub at {} ({}); check GITHUB_API_URL",
                            self.api,
                            without_url(&e)
                        );
                    }
                    return Err(Unanswered {
                        method,
                        path: path.to_string(),
                        cause: without_url(&e),
                    }
                    .into());
                }
            };
            let status = resp.status();
            let headers = resp.headers().clone();
            let text = match resp.text().await {
                Ok(t) => t,
                Err(e) if idempotent && attempt < 5 => {
                    tracing::warn!("{method} {path}: {}; retrying", without_url(&e));
                    tokio::time::sleep(self.backoff * attempt).await;
                    continue;
                }
                Err(e) => {
                    return Err(Unanswered {
                        method,
                        path: path.to_string(),
                        cause: without_url(&e),
                    }
                    .into())
                }
            };
            let body_json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if let Some(wait) = rate_limited(status, &headers, &body_json) {
                if wait > self.max_wait {
                    bail!(
                        "GitHub's rate limit for this token resets in {} s, longer than MLOPS_GITHUB_MAX_WAIT_SECS ({} s); run again later",
                        wait.as_secs(),
                        self.max_wait.as_secs()
                    );
                }
                if attempt < 6 {
                    eprintln!(
                        "mlops: GitHub rate limit on {method} {path}: waiting {:.1} s as GitHub asks",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            if status.is_server_error() {
                if idempotent && attempt < 5 {
                    tracing::warn!("{method} {path}: {status}; retrying");
                    tokio::time::sleep(self.backoff * attempt).await;
                    continue;
                }
                if !idempotent {
                    return Err(Unanswered {
                        method,
                        path: path.to_string(),
                        cause: format!("HTTP {status}"),
                    }
                    .into());
                }
            }
            let next = headers
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .map(|u| u.strip_prefix(&self.api).unwrap_or(&u).to_string());
            return Ok(Reply {
                status,
                body: body_json,
                next,
            });
        }
    }
}

/// How long GitHub asks us to wait, if this answer is a rate limit.
fn rate_limited(status: StatusCode, headers: &HeaderMap, body: &Value) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(wait) =
        header("retry-after").and_then(|v| crate::http::retry_after(v, SystemTime::now()))
    {
        return Some(wait);
    }
    if header("x-ratelimit-remaining") == Some("0") {
        if let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok())
        {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            // The reset is a whole second; wait until it has fully passed.
            let at = Duration::from_secs(reset);
            return Some(at.saturating_sub(now) + Duration::from_millis(200));
        }
    }
    let message = body["message"].as_str().unwrap_or("").to_lowercase();
    if message.contains("secondary rate limit") {
        return Some(Duration::from_secs(60));
    }
    None
}

fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s.replace(" ()", "").replace("  ", " ")
}

/// Turns a non-2xx answer into an error that says what to do.
pub fn expect_ok(reply: &Reply, what: &str, path: &str) -> Result<()> {
    if reply.status.is_success() {
        return Ok(());
    }
    let hint = match reply.status.as_u16() {
        401 => " — GitHub rejected the token: check GITHUB_TOKEN (or the App's key)",
        403 => " — the token lacks permission: a workflow needs `permissions: contents: write, pull-requests: write` (issues: write for labels)",
        404 => " — not found: check forge.repository (or GITHUB_REPOSITORY) and that the token can see it",
        _ => "",
    };
    bail!(
        "GitHub answered {} to {what} {path}: {}{hint}",
        reply.status.as_u16(),
        reply.message()
    )
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether an error is a request without an answer (see [`Unanswered`]).
pub fn unanswered(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Unanswered>().is_some()
}

/// GraphQL's endpoint for a REST base: `https://api.github.com/graphql`, or
/// `https://HOST/api/graphql` on GitHub Enterprise Server (REST at `https://HOST/api/v3`).
fn graphql_url(api: &str) -> String {
    match api.strip_suffix("/api/v3") {
        Some(host) => format!("{host}/api/graphql"),
        None => format!("{api}/graphql"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_as_an_http_date_is_a_wait() {
        let at = chrono::Utc::now() + chrono::Duration::seconds(30);
        let mut headers = HeaderMap::new();
        headers.insert(
            "retry-after",
            HeaderValue::from_str(&at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()).unwrap(),
        );
        let wait = rate_limited(StatusCode::TOO_MANY_REQUESTS, &headers, &Value::Null).unwrap();
        assert!(
            wait > Duration::from_secs(27) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
    }

    #[test]
    fn graphql_lives_next_to_the_rest_api() {
        assert_eq!(
            super::graphql_url("https://api.github.com"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            super::graphql_url("https://ghe.example.com/api/v3"),
            "https://ghe.example.com/api/graphql"
        );
    }
}
