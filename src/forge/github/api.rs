//! The GitHub client: octocrab's typed requests and models, over our own reqwest client, with
//! the toolkit's HTTP policy (`crate::http`) on top. octocrab runs without its retry layer;
//! every request goes through [`Client::call`], which waits out rate limits (`retry-after`,
//! `x-ratelimit-reset`, secondary limits), repeats idempotent requests on 5xx and dropped
//! connections, serialises writes (GitHub's advice against secondary limits), and turns a POST
//! that got no answer into [`GitHubError::Unanswered`] instead of repeating it. The token
//! never appears in errors or logs.
//!
//! The client reads no environment: [`Settings`] (API URL, credentials, policy) come from the
//! command line.

use std::future::Future;
use std::time::Duration;

use octocrab::models::{AppId, InstallationId};
use octocrab::service::middleware::base_uri::BaseUriLayer;
use octocrab::service::middleware::reqwest_connector::ReqwestConnector;
use octocrab::{AuthState, Octocrab, OctocrabBuilder, Page};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, USER_AGENT};
use reqwest::Method;
use serde::de::DeserializeOwned;

use super::error::{excerpt, GitHubError};
use crate::http::{Attempt, Failure, Policy};

/// GitHub's API version these requests are written against.
pub const API_VERSION: &str = "2022-11-28";
/// Where the API is when nothing says otherwise.
pub const DEFAULT_API: &str = "https://api.github.com";

/// How the client signs in.
#[derive(Clone)]
pub enum Auth {
    /// A token: the workflow's `GITHUB_TOKEN`, or a person's.
    Token(String),
    /// A GitHub App: its id, its private key (PEM) and, if known, the installation to use
    /// (else the repository's).
    App {
        id: String,
        private_key: String,
        installation: Option<u64>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => write!(f, "Token(<redacted>)"),
            Auth::App {
                id, installation, ..
            } => write!(f, "App({id}, <redacted key>, {installation:?})"),
        }
    }
}

/// What the command line gives the github forge.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The REST API base (`https://api.github.com`, `https://HOST/api/v3` on GitHub Enterprise
    /// Server), without a trailing slash.
    pub api_url: String,
    /// None: no credentials were given (the forge says which to set).
    pub auth: Option<Auth>,
    /// `owner/name` when mlops.yaml's forge.repository is not set (`GITHUB_REPOSITORY`).
    pub default_repository: Option<String>,
    /// Retries and waits.
    pub policy: Policy,
    /// The longest a request may take.
    pub timeout: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            api_url: DEFAULT_API.into(),
            auth: None,
            default_repository: None,
            policy: Policy {
                backoff: Duration::from_millis(1000),
                ..Policy::default()
            },
            timeout: Duration::from_secs(30),
        }
    }
}

pub struct Client {
    crab: Octocrab,
    /// The same credentials at GraphQL's endpoint.
    graphql: Octocrab,
    /// The App's own client (its JWT), when signed in as an App.
    app: Option<Octocrab>,
    api: String,
    /// `owner/name`.
    pub repo: String,
    pub owner: String,
    pub name: String,
    policy: Policy,
    writes: tokio::sync::Mutex<()>,
}

/// GitHub's required headers, sent on every request that does not set its own (reqwest's
/// default headers fill in only what a request lacks, so none is sent twice).
fn required_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        ACCEPT,
        HeaderValue::from_static("application/vnd.github+json"),
    );
    h.insert(
        HeaderName::from_static("x-github-api-version"),
        HeaderValue::from_static(API_VERSION),
    );
    h.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("mlops/", env!("CARGO_PKG_VERSION"))),
    );
    h
}

/// An octocrab client at `base` over `http`, without octocrab's retries.
fn octocrab(http: &reqwest::Client, base: &str, auth: AuthState) -> Result<Octocrab, GitHubError> {
    let uri: http::Uri = base
        .parse()
        .map_err(|_| GitHubError::Setup(format!("GITHUB_API_URL {base:?} is not a URL")))?;
    let crab = OctocrabBuilder::new_empty()
        .with_service(ReqwestConnector::new(http.clone()))
        .with_layer(&BaseUriLayer::new(uri))
        .with_auth(auth)
        .build();
    match crab {
        Ok(crab) => Ok(crab),
        Err(never) => match never {},
    }
}

/// GraphQL's endpoint base for a REST base: `https://api.github.com` (GraphQL at
/// `/graphql`), or `https://HOST/api` on GitHub Enterprise Server (REST at `/api/v3`).
fn graphql_base(api: &str) -> String {
    match api.strip_suffix("/v3") {
        Some(host_api) if api.ends_with("/api/v3") => host_api.to_string(),
        _ => api.to_string(),
    }
}

impl Client {
    /// A client for `repo` (`owner/name`) signed in as `settings` says. An App exchanges its
    /// JWT for an installation token scoped to this one repository.
    pub async fn new(repo: &str, settings: &Settings) -> Result<Client, GitHubError> {
        let (owner, name) = repo
            .split_once('/')
            .map(|(o, n)| (o.to_string(), n.to_string()))
            .ok_or_else(|| GitHubError::Setup(format!("{repo:?} is not owner/name")))?;
        let api = settings.api_url.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .default_headers(required_headers())
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| GitHubError::Setup(format!("cannot set up the HTTP client: {e}")))?;
        let auth = settings.auth.as_ref().ok_or_else(|| {
            GitHubError::Setup(
                "the github forge needs a token: set GITHUB_TOKEN (in a workflow, `env: GITHUB_TOKEN: ${{ github.token }}` \
                 with `permissions: contents: write, pull-requests: write`), or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY for a GitHub App"
                    .into(),
            )
        })?;
        let (token, app) = match auth {
            Auth::Token(token) => (token.clone(), None),
            Auth::App {
                id,
                private_key,
                installation,
            } => {
                let app = app_client(&http, &api, id, private_key)?;
                let token =
                    installation_token(&app, &api, &settings.policy, &owner, &name, *installation)
                        .await?;
                (token, Some(app))
            }
        };
        let signed_in = || AuthState::AccessToken {
            token: token.clone().into(),
        };
        Ok(Client {
            crab: octocrab(&http, &api, signed_in())?,
            graphql: octocrab(&http, &graphql_base(&api), signed_in())?,
            app,
            api,
            repo: repo.to_string(),
            owner,
            name,
            policy: settings.policy,
            writes: tokio::sync::Mutex::new(()),
        })
    }

    pub fn api_url(&self) -> &str {
        &self.api
    }

    /// The typed octocrab client (token), for building requests passed to [`Client::call`].
    pub fn crab(&self) -> &Octocrab {
        &self.crab
    }

    /// `/repos/{owner}/{name}` + `rest`, for errors and logs.
    pub fn repo_path(&self, rest: &str) -> String {
        format!("/repos/{}{rest}", self.repo)
    }

    /// One request (`op` sends it once per try) under the policy: `method` and `path` say
    /// what it is (idempotency, writes taking turns, errors). POSTs are not repeated when
    /// unanswered; see [`Client::call_pure`] for those that may be.
    pub async fn call<T, F, Fut>(&self, method: Method, path: &str, op: F) -> Result<T, GitHubError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = octocrab::Result<T>>,
    {
        let idempotent = method != Method::POST;
        self.call_as(method, path, idempotent, op).await
    }

    /// A POST whose effect is the same however often it lands (content-addressed git objects,
    /// a read-only GraphQL query): repeated like an idempotent request.
    pub async fn call_pure<T, F, Fut>(&self, path: &str, op: F) -> Result<T, GitHubError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = octocrab::Result<T>>,
    {
        self.call_as(Method::POST, path, true, op).await
    }

    async fn call_as<T, F, Fut>(
        &self,
        method: Method,
        path: &str,
        idempotent: bool,
        op: F,
    ) -> Result<T, GitHubError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = octocrab::Result<T>>,
    {
        // One write at a time (GitHub's guidance against secondary rate limits).
        let _write = if method != Method::GET {
            Some(self.writes.lock().await)
        } else {
            None
        };
        send(&self.policy, &self.api, method, path, idempotent, op).await
    }

    /// Every item of a paginated list: `first` fetches the first page; the next ones follow
    /// its `link: rel="next"`, which must stay on the API's own host.
    pub async fn all<T, F, Fut>(&self, path: &str, first: F) -> Result<Vec<T>, GitHubError>
    where
        T: DeserializeOwned,
        F: FnMut() -> Fut,
        Fut: Future<Output = octocrab::Result<Page<T>>>,
    {
        let mut page = self.call(Method::GET, path, first).await?;
        let mut items = page.take_items();
        while let Some(next) = page.next.take() {
            let same_host = next.authority().is_none()
                || next.authority().map(|a| a.as_str()) == self.api_host().as_deref();
            if !same_host {
                return Err(GitHubError::Answer {
                    method: Method::GET,
                    path: path.to_string(),
                    detail: format!("its next page is on another host ({next}); not followed"),
                });
            }
            let uri = &Some(next);
            let fetched: Option<Page<T>> = self
                .call(Method::GET, path, move || async move {
                    self.crab.get_page::<T>(uri).await
                })
                .await?;
            let Some(mut p) = fetched else { break };
            items.append(&mut p.take_items());
            page = p;
        }
        Ok(items)
    }

    fn api_host(&self) -> Option<String> {
        let uri: http::Uri = self.api.parse().ok()?;
        uri.authority().map(|a| a.as_str().to_string())
    }

    /// The login of the account this client writes as: the App's bot (`<slug>[bot]`), else
    /// the token's user (`GET /user`). An installation token — the workflow's `GITHUB_TOKEN`
    /// is one — may not read `/user` (403), so GraphQL's `viewer`, which every kind of token
    /// may read, names its bot instead.
    pub async fn own_login(&self) -> Result<String, GitHubError> {
        if let Some(app) = &self.app {
            let me = self
                .call(Method::GET, "/app", move || async move {
                    app.apps().get().await
                })
                .await?;
            return match me.slug.filter(|s| !s.is_empty()) {
                Some(slug) => Ok(format!("{slug}[bot]")),
                None => Err(GitHubError::Answer {
                    method: Method::GET,
                    path: "/app".into(),
                    detail: "it names no slug".into(),
                }),
            };
        }
        match self
            .call(Method::GET, "/user", move || async move {
                self.crab.current().user().await
            })
            .await
        {
            Ok(user) if !user.login.is_empty() => return Ok(user.login),
            Ok(_) => {
                return Err(GitHubError::Answer {
                    method: Method::GET,
                    path: "/user".into(),
                    detail: "it names no login".into(),
                })
            }
            Err(GitHubError::Auth { status: 403, .. }) => {}
            Err(e) => return Err(e),
        }
        let query = &serde_json::json!({"query": "query { viewer { login } }"});
        let data: serde_json::Value = self
            .call_pure("/graphql", move || async move {
                self.graphql.graphql(query).await
            })
            .await?;
        match data["viewer"]["login"].as_str() {
            Some(login) if !login.is_empty() => Ok(login.to_string()),
            _ => Err(GitHubError::Answer {
                method: Method::POST,
                path: "/graphql".into(),
                detail: "the query { viewer { login } } names no login; mlops edits only comments this token wrote, so it cannot tell which ones those are".into(),
            }),
        }
    }
}

/// The App's own client: it signs each request with a fresh JWT from its private key.
fn app_client(
    http: &reqwest::Client,
    api: &str,
    id: &str,
    private_key: &str,
) -> Result<Octocrab, GitHubError> {
    let app_id: u64 = id.trim().parse().map_err(|_| {
        GitHubError::Setup(format!(
            "GITHUB_APP_ID is {id:?}; expected the App's numeric id (its settings page shows it as App ID)"
        ))
    })?;
    let key = octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(private_key.as_bytes()).map_err(|_| {
        GitHubError::Setup(
            "GITHUB_APP_PRIVATE_KEY is not an RSA private key in PEM (the .pem file GitHub gives for an App)".into(),
        )
    })?;
    let app = octocrab::auth::AppAuth {
        app_id: AppId(app_id),
        key,
    };
    octocrab(http, api, AuthState::App(app))
}

/// An installation token of the App for `owner/name` only: the given installation, else the
/// repository's.
async fn installation_token(
    app: &Octocrab,
    api: &str,
    policy: &Policy,
    owner: &str,
    name: &str,
    installation: Option<u64>,
) -> Result<String, GitHubError> {
    let id = match installation {
        Some(id) => id,
        None => {
            let path = format!("/repos/{owner}/{name}/installation");
            send(policy, api, Method::GET, &path, true, move || async move {
                app.apps().get_repository_installation(owner, name).await
            })
            .await?
            .id
            .0
        }
    };
    let path = format!("/app/installations/{id}/access_tokens");
    // Minting a second token is harmless: the request may be repeated.
    let token = send(policy, api, Method::POST, &path, true, move || async move {
        app.installation_builder(InstallationId(id))
            .repositories(vec![name.to_string()])
            .build()?
            .installation_token()
            .await
    })
    .await?;
    use octocrab::secrecy::ExposeSecret;
    Ok(token.expose_secret().to_string())
}

/// One request under `policy`; see [`Client::call`].
async fn send<T, F, Fut>(
    policy: &Policy,
    api: &str,
    method: Method,
    path: &str,
    idempotent: bool,
    mut op: F,
) -> Result<T, GitHubError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = octocrab::Result<T>>,
{
    let what = format!("GitHub {method} {path}");
    let result = policy
        .run(&what, idempotent, || {
            let attempt = op();
            async move { classify(attempt.await, idempotent) }
        })
        .await;
    result.map_err(|failure| match failure {
        Failure::WaitTooLong { wait, .. } => GitHubError::RateLimited {
            method: method.clone(),
            path: path.to_string(),
            wait,
            max: policy.max_wait,
        },
        Failure::Unanswered(e) => GitHubError::Unanswered {
            method: method.clone(),
            path: path.to_string(),
            cause: describe(&e),
        },
        Failure::Error(e) => from_octocrab(e, api, &method, path),
    })
}

/// Reads one try's outcome for the policy.
fn classify<T>(result: octocrab::Result<T>, idempotent: bool) -> Attempt<T, octocrab::Error> {
    let e = match result {
        Ok(v) => return Attempt::Done(Ok(v)),
        Err(e) => e,
    };
    if let octocrab::Error::GitHub { source, .. } = &e {
        let status = source.status_code;
        let headers = source.headers.clone().unwrap_or_default();
        if let Some(wait) = crate::http::rate_limit(status, &headers, &source.message) {
            return Attempt::Limited {
                answer: Err(e),
                wait,
            };
        }
        if status.is_server_error() {
            // A write answered 5xx may have been applied: as good as no answer.
            if !idempotent {
                return Attempt::Lost(e);
            }
            let retry_after = headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| crate::http::retry_after(v, std::time::SystemTime::now()));
            return Attempt::Busy {
                answer: Err(e),
                retry_after,
                why: format!("answered {status}"),
            };
        }
        return Attempt::Done(Err(e));
    }
    match transport(&e) {
        // A refused connection never reached GitHub: safe to repeat whatever it was.
        Some(true) => Attempt::NotSent(e),
        Some(false) => Attempt::Lost(e),
        None => Attempt::Done(Err(e)),
    }
}

/// Whether `e` is a transport failure: Some(true) when no connection was made.
fn transport(e: &octocrab::Error) -> Option<bool> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(inner) = source {
        if let Some(r) = inner.downcast_ref::<reqwest::Error>() {
            return Some(r.is_connect());
        }
        source = inner.source();
    }
    matches!(
        e,
        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. }
    )
    .then_some(false)
}

/// A transport error in words: its causes, without the URL (the path is said elsewhere).
fn describe(e: &octocrab::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(inner) = source {
        if let Some(r) = inner.downcast_ref::<reqwest::Error>() {
            return without_url(r);
        }
        source = inner.source();
    }
    e.to_string()
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

/// The error a caller sees for octocrab's.
fn from_octocrab(e: octocrab::Error, api: &str, method: &Method, path: &str) -> GitHubError {
    let method = method.clone();
    let path = path.to_string();
    match e {
        octocrab::Error::GitHub { source, .. } => {
            let message = excerpt(&source.message, source.errors.as_deref().unwrap_or_default());
            match source.status_code.as_u16() {
                404 => GitHubError::NotFound {
                    method,
                    path,
                    message,
                },
                status @ (401 | 403) => GitHubError::Auth {
                    status,
                    method,
                    path,
                    message,
                },
                status => GitHubError::Status {
                    status,
                    method,
                    url: format!("{api}{path}"),
                    excerpt: message,
                },
            }
        }
        octocrab::Error::Json { source, .. } => GitHubError::Answer {
            method,
            path,
            detail: format!("{}: {}", source.path(), source.inner()),
        },
        octocrab::Error::Serde { source, .. } => GitHubError::Answer {
            method,
            path,
            detail: source.to_string(),
        },
        octocrab::Error::Graphql { source, .. } => GitHubError::Answer {
            method,
            path,
            detail: crate::report::clean(&source.to_string()),
        },
        octocrab::Error::JWT { source, .. } => GitHubError::Setup(format!(
            "the GitHub App's private key cannot sign a JWT ({source}); check GITHUB_APP_PRIVATE_KEY"
        )),
        other => match transport(&other) {
            Some(true) => GitHubError::Unreachable {
                api: api.to_string(),
                cause: describe(&other),
            },
            Some(false) => GitHubError::Unanswered {
                method,
                path,
                cause: describe(&other),
            },
            None => GitHubError::Setup(format!("{method} {path}: {other}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_lives_next_to_the_rest_api() {
        assert_eq!(
            graphql_base("https://api.github.com"),
            "https://api.github.com"
        );
        assert_eq!(
            graphql_base("https://ghe.example.com/api/v3"),
            "https://ghe.example.com/api"
        );
        assert_eq!(graphql_base("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }

    #[test]
    fn credentials_never_print() {
        let token = Auth::Token("ghs_secret".into());
        let app = Auth::App {
            id: "7".into(),
            private_key: "-----BEGIN RSA PRIVATE KEY-----secret".into(),
            installation: Some(42),
        };
        for auth in [token, app] {
            let text = format!("{auth:?}");
            assert!(!text.contains("secret"), "{text}");
        }
    }

    #[test]
    fn an_app_id_is_a_number_and_its_key_an_rsa_pem() {
        let http = reqwest::Client::new();
        let e = app_client(&http, DEFAULT_API, "Iv1.abc", "x")
            .err()
            .unwrap();
        assert!(e.to_string().contains("numeric id"), "{e}");
        let e = app_client(&http, DEFAULT_API, "7", "not a key")
            .err()
            .unwrap();
        assert!(e.to_string().contains("GITHUB_APP_PRIVATE_KEY"), "{e}");
    }
}
