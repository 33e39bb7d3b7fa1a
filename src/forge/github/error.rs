//! What can go wrong talking to GitHub, as one enum callers branch on: a rate limit too long to
//! wait for, something not found, a write that got no answer, the token refused, GitHub out of
//! reach, an answer that is not what GitHub documents, or any other status (with the URL and
//! an excerpt of the body). Each variant's text says what to do; no variant carries the token.

use std::time::Duration;

use reqwest::Method;

/// The longest excerpt of an answer's body kept in an error.
const EXCERPT: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// GitHub's rate limit asks for a longer wait than the policy's `max_wait`.
    #[error(
        "GitHub's rate limit for this token on {method} {path} resets in {} s, longer than MLOPS_GITHUB_MAX_WAIT_SECS ({} s); run again later",
        wait.as_secs(),
        max.as_secs()
    )]
    RateLimited {
        method: Method,
        path: String,
        wait: Duration,
        max: Duration,
    },
    /// 404.
    #[error(
        "GitHub answered 404 to {method} {path}: {message} — not found: check forge.repository (or GITHUB_REPOSITORY) and that the token can see it"
    )]
    NotFound {
        method: Method,
        path: String,
        message: String,
    },
    /// A request that is not idempotent reached (or may have reached) GitHub without an
    /// answer coming back: its effect is unknown. Callers re-read the state instead of
    /// repeating the write.
    #[error(
        "{method} {path}: no answer from GitHub ({cause}); it may or may not have been applied"
    )]
    Unanswered {
        method: Method,
        path: String,
        cause: String,
    },
    /// 401 (the token or the App's key refused) or 403 (the token lacks a permission).
    #[error("GitHub answered {status} to {method} {path}: {message} — {}", auth_hint(*status))]
    Auth {
        status: u16,
        method: Method,
        path: String,
        message: String,
    },
    /// No connection could be made.
    #[error("cannot reach GitHub at {api} ({cause}); check GITHUB_API_URL")]
    Unreachable { api: String, cause: String },
    /// A success whose body does not have the documented shape.
    #[error("GitHub's answer to {method} {path} is not what its API documents: {detail}")]
    Answer {
        method: Method,
        path: String,
        detail: String,
    },
    /// Any other answer: its status, the URL and what the body says.
    #[error("GitHub answered {status} to {method} {url}: {excerpt}")]
    Status {
        status: u16,
        method: Method,
        url: String,
        /// GitHub's `message` and `errors`, or the start of the body.
        excerpt: String,
    },
    /// The GitHub App's credentials cannot make a JWT, or the client cannot be set up.
    #[error("{0}")]
    Setup(String),
}

fn auth_hint(status: u16) -> &'static str {
    if status == 401 {
        "GitHub rejected the token: check GITHUB_TOKEN (or the App's key)"
    } else {
        "the token lacks permission: a workflow needs `permissions: contents: write, pull-requests: write` (issues: write for labels and issues)"
    }
}

impl GitHubError {
    /// The HTTP status GitHub answered, when it answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::NotFound { .. } => Some(404),
            GitHubError::Auth { status, .. } | GitHubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether this is a write without an answer (see [`GitHubError::Unanswered`]).
    pub fn is_unanswered(&self) -> bool {
        matches!(self, GitHubError::Unanswered { .. })
    }

    /// Whether GitHub answered 422 with a text containing `needle` (its `message` or one of
    /// its `errors`).
    pub fn is_unprocessable(&self, needle: &str) -> bool {
        matches!(self, GitHubError::Status { status: 422, excerpt, .. } if excerpt.contains(needle))
    }
}

/// GitHub's `message`, plus each entry of `errors` (its `message`, else `field code`),
/// cleaned for a terminal and cut to an excerpt.
pub fn excerpt(message: &str, errors: &[serde_json::Value]) -> String {
    let mut m = message.to_string();
    for e in errors {
        let detail = e["message"]
            .as_str()
            .map(str::to_string)
            .or_else(|| e["code"].as_str().map(|c| format!("{} {c}", e["field"])))
            .or_else(|| e.as_str().map(str::to_string))
            .unwrap_or_default();
        if !detail.is_empty() {
            m.push_str(": ");
            m.push_str(&detail);
        }
    }
    let m = crate::report::clean(&m);
    if m.chars().count() <= EXCERPT {
        return m;
    }
    let cut: String = m.chars().take(EXCERPT).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn excerpts_carry_the_errors_and_stay_short() {
        let errors = [
            json!({"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for acme:x."}),
            json!({"resource": "PullRequest", "code": "invalid", "field": "head"}),
        ];
        let e = excerpt("Validation Failed", &errors);
        assert_eq!(
            e,
            "Validation Failed: A pull request already exists for acme:x.: \"head\" invalid"
        );
        let long = excerpt(&"x".repeat(1000), &[]);
        assert_eq!(long.chars().count(), EXCERPT + 1);
    }

    #[test]
    fn callers_can_tell_the_kinds_apart() {
        let e = GitHubError::Status {
            status: 422,
            method: Method::POST,
            url: "https://api.github.com/repos/a/b/pulls".into(),
            excerpt: "Validation Failed: A pull request already exists for a:b.".into(),
        };
        assert!(e.is_unprocessable("already exists"));
        assert!(!e.is_unanswered());
        assert_eq!(e.status(), Some(422));
        let e = GitHubError::Auth {
            status: 401,
            method: Method::GET,
            path: "/user".into(),
            message: "Bad credentials".into(),
        };
        assert!(e.to_string().contains("GITHUB_TOKEN"), "{e}");
    }
}
