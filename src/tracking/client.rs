//! A client of MLflow's REST API (`/api/2.0/mlflow/…` and the artifact proxy
//! `/api/2.0/mlflow-artifacts/artifacts/…`): the calls the tracker needs and nothing else.
//! Retries follow [`crate::http::Policy`]: only idempotent calls are asked again after a lost
//! or busy answer. Settings (the server, credentials) are handed in: nothing here reads the
//! environment.

use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::http::{Attempt, Failure, Policy};

/// How the client proves who it is, as MLflow's own clients do.
#[derive(Clone)]
pub(crate) enum Auth {
    /// `MLFLOW_TRACKING_TOKEN`: `Authorization: Bearer …`.
    Token(String),
    /// `MLFLOW_TRACKING_USERNAME` / `_PASSWORD`: HTTP basic authentication.
    Basic { username: String, password: String },
}

impl Auth {
    /// The variables a refused credential came from, for the error message.
    fn variables(auth: Option<&Auth>) -> &'static str {
        match auth {
            Some(Auth::Token(_)) => "MLFLOW_TRACKING_TOKEN",
            Some(Auth::Basic { .. }) => "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD",
            None => "none set: MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD",
        }
    }

    fn secret(&self) -> &str {
        match self {
            Auth::Token(t) => t,
            Auth::Basic { password, .. } => password,
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Token(***)"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
        }
    }
}

/// Where the server is and how to talk to it.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The tracking URI, `http(s)://host[:port][/prefix]`.
    pub uri: Url,
    pub auth: Option<Auth>,
    /// `MLFLOW_TRACKING_INSECURE_TLS`: accept any certificate.
    pub insecure_tls: bool,
    pub policy: Policy,
    /// The longest the server may send nothing (an artifact upload may take longer as a whole).
    pub read_timeout: Duration,
}

/// What went wrong talking to MLflow; every variant names the URL.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MlflowError {
    #[error("MLflow at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("MLflow at {url} refused the credentials ({status}; credentials from {variables}): check them, or the server's permissions for this experiment")]
    Unauthorized {
        url: String,
        status: StatusCode,
        variables: &'static str,
    },
    #[error("MLflow at {url} answered {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Api {
        url: String,
        status: StatusCode,
        code: Option<String>,
        message: String,
    },
    #[error(
        "MLflow at {url} got the request and gave no answer: {message} (nothing was sent again)"
    )]
    Unanswered { url: String, message: String },
    #[error("MLflow at {url}: {message}")]
    Other { url: String, message: String },
}

impl MlflowError {
    /// MLflow's error code (`RESOURCE_DOES_NOT_EXIST`, `RESOURCE_ALREADY_EXISTS`, …).
    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            MlflowError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn is_unanswered(&self) -> bool {
        matches!(self, MlflowError::Unanswered { .. })
    }
}

pub(crate) type Result<T> = std::result::Result<T, MlflowError>;

/// The MLflow REST client.
pub(crate) struct Mlflow {
    http: reqwest::Client,
    base: Url,
    auth: Option<Auth>,
    policy: Policy,
}

/// A call's body: JSON, or the bytes of an artifact.
enum Body<'a> {
    None,
    Json(&'a Value),
    Bytes(&'a [u8]),
}

impl Mlflow {
    pub(crate) fn new(settings: &Settings) -> Result<Mlflow> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("mlops/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(settings.read_timeout)
            .danger_accept_invalid_certs(settings.insecure_tls)
            .build()
            .map_err(|e| MlflowError::Other {
                url: settings.uri.to_string(),
                message: format!("cannot set up the HTTP client: {e}"),
            })?;
        let mut base = settings.uri.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Mlflow {
            http,
            base,
            auth: settings.auth.clone(),
            policy: settings.policy,
        })
    }

    /// The server's web address (for links), without a trailing slash.
    pub(crate) fn ui_base(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// `GET /api/2.0/mlflow/<path>?query`.
    pub(crate) async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let mut url = self.url(&format!("api/2.0/mlflow/{path}"))?;
        url.query_pairs_mut().extend_pairs(query);
        self.send(Method::GET, url, Body::None, true).await
    }

    /// `POST /api/2.0/mlflow/<path>` with a JSON body; `idempotent` when sending it twice
    /// leaves the same state as sending it once.
    pub(crate) async fn post(&self, path: &str, body: &Value, idempotent: bool) -> Result<Value> {
        let url = self.url(&format!("api/2.0/mlflow/{path}"))?;
        self.send(Method::POST, url, Body::Json(body), idempotent)
            .await
    }

    /// Uploads one artifact through the server's artifact proxy: `path` is below
    /// `mlflow-artifacts:/` (`<experiment>/<run>/artifacts/<file>`). A PUT of the same bytes
    /// to the same path is idempotent.
    pub(crate) async fn put_artifact(&self, path: &str, bytes: &[u8]) -> Result<()> {
        let mut url = self.url("api/2.0/mlflow-artifacts/artifacts/")?;
        if let Ok(mut segments) = url.path_segments_mut() {
            // Each segment is percent-encoded; an empty one (a trailing slash) is dropped.
            segments
                .pop_if_empty()
                .extend(path.split('/').filter(|s| !s.is_empty()));
        }
        self.send(Method::PUT, url, Body::Bytes(bytes), true)
            .await
            .map(|_| ())
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base.join(path).map_err(|e| MlflowError::Other {
            url: self.base.to_string(),
            message: format!("{path:?} does not make a URL: {e}"),
        })
    }

    /// Sends one call under the retry policy and reads its JSON answer.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Body<'_>,
        idempotent: bool,
    ) -> Result<Value> {
        let what = format!("{method} {}", url.path());
        let shown = self.redact(url.as_str());
        let answer = self
            .policy
            .run(&what, idempotent, || {
                self.try_once(&method, &url, &body, &shown)
            })
            .await;
        match answer {
            Ok(v) => Ok(v),
            Err(Failure::Error(e)) => Err(e),
            Err(Failure::Unanswered(e)) => Err(MlflowError::Unanswered {
                url: shown,
                message: e.to_string(),
            }),
            Err(Failure::WaitTooLong { wait, .. }) => Err(MlflowError::Other {
                url: shown,
                message: format!("the server asks to wait {} s; try later", wait.as_secs()),
            }),
        }
    }

    async fn try_once(
        &self,
        method: &Method,
        url: &Url,
        body: &Body<'_>,
        shown: &str,
    ) -> Attempt<Value, MlflowError> {
        let mut req = self.http.request(method.clone(), url.clone());
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Bytes(b) => req
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(b.to_vec()),
        };
        req = match &self.auth {
            Some(Auth::Token(t)) => match HeaderValue::from_str(&format!("Bearer {t}")) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    req.header(header::AUTHORIZATION, v)
                }
                Err(_) => {
                    return Attempt::Done(Err(MlflowError::Other {
                        url: shown.to_string(),
                        message: "MLFLOW_TRACKING_TOKEN holds characters a header cannot carry"
                            .into(),
                    }))
                }
            },
            Some(Auth::Basic { username, password }) => req.basic_auth(username, Some(password)),
            None => req,
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let error = MlflowError::Unreachable {
                    url: shown.to_string(),
                    message: self.redact(&without_url(&e)),
                };
                return if e.is_connect() {
                    Attempt::NotSent(error)
                } else {
                    Attempt::Lost(error)
                };
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => {
                return Attempt::Lost(MlflowError::Unreachable {
                    url: shown.to_string(),
                    message: format!("the answer broke off: {}", without_url(&e)),
                })
            }
        };
        if status.is_success() {
            let value = if text.trim().is_empty() {
                Value::Object(Default::default())
            } else {
                match serde_json::from_str(&text) {
                    Ok(v) => v,
                    Err(e) => {
                        return Attempt::Done(Err(MlflowError::Other {
                            url: shown.to_string(),
                            message: format!("the answer ({status}) is not JSON: {e}"),
                        }))
                    }
                }
            };
            return Attempt::Done(Ok(value));
        }
        let error = self.api_error(shown, status, &text);
        if let Some(wait) = crate::http::rate_limit(status, &headers, "") {
            if status == StatusCode::TOO_MANY_REQUESTS {
                return Attempt::Limited {
                    answer: Err(error),
                    wait,
                };
            }
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| crate::http::retry_after(v, SystemTime::now()));
            return Attempt::Busy {
                answer: Err(error),
                retry_after,
                why: format!("answered {status}"),
            };
        }
        Attempt::Done(Err(error))
    }

    fn api_error(&self, shown: &str, status: StatusCode, text: &str) -> MlflowError {
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return MlflowError::Unauthorized {
                url: shown.to_string(),
                status,
                variables: Auth::variables(self.auth.as_ref()),
            };
        }
        let body: Option<Value> = serde_json::from_str(text).ok();
        let code = body
            .as_ref()
            .and_then(|b| b["error_code"].as_str())
            .map(str::to_string);
        let message = body
            .as_ref()
            .and_then(|b| b["message"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| text.chars().take(300).collect());
        MlflowError::Api {
            url: shown.to_string(),
            status,
            code,
            message: self.redact(&crate::text::clean(&message)),
        }
    }

    /// `text` with the credential's secret masked, whatever echoes it.
    fn redact(&self, text: &str) -> String {
        match &self.auth {
            Some(a) if !a.secret().is_empty() => text.replace(a.secret(), "***"),
            _ => text.to_string(),
        }
    }
}

/// A transport error's text without the URL reqwest appends (the caller names it).
fn without_url(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(auth: Option<Auth>) -> Mlflow {
        Mlflow::new(&Settings {
            uri: Url::parse("http://127.0.0.1:5050/prefix").unwrap(),
            auth,
            insecure_tls: false,
            policy: Policy::default(),
            read_timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    #[test]
    fn a_refusal_names_the_variable_and_never_the_secret() {
        let c = client(Some(Auth::Token("s3cr3t-token".into())));
        let e = c.api_error("http://x/", StatusCode::UNAUTHORIZED, "bad s3cr3t-token");
        let text = e.to_string();
        assert!(
            text.contains("MLFLOW_TRACKING_TOKEN") && text.contains("401"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t-token"), "{text}");
        // A server that echoes the secret in an error body: masked.
        let e = c.api_error(
            "http://x/",
            StatusCode::BAD_REQUEST,
            r#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "token s3cr3t-token\nbad"}"#,
        );
        assert_eq!(e.code(), Some("INVALID_PARAMETER_VALUE"));
        let text = e.to_string();
        assert!(
            !text.contains("s3cr3t-token") && !text.contains('\n'),
            "{text}"
        );
        assert_eq!(
            format!("{:?}", Auth::Token("s3cr3t-token".into())),
            "Token(***)"
        );
        let basic = client(Some(Auth::Basic {
            username: "u".into(),
            password: "pw-123".into(),
        }));
        let text = basic
            .api_error("http://x/", StatusCode::FORBIDDEN, "")
            .to_string();
        assert!(
            text.contains("MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD"),
            "{text}"
        );
    }

    #[test]
    fn calls_go_below_the_uri_prefix() {
        let c = client(None);
        assert_eq!(
            c.url("api/2.0/mlflow/runs/create").unwrap().as_str(),
            "http://127.0.0.1:5050/prefix/api/2.0/mlflow/runs/create"
        );
        assert_eq!(c.ui_base(), "http://127.0.0.1:5050/prefix");
    }
}
