//! What a token may do, as GitHub tells it (for `mlops doctor`): a fine-grained or
//! installation token without a permission is refused with 403 "Resource not accessible by
//! integration" and `x-accepted-github-permissions` naming the permission the endpoint
//! accepts; a classic token's scopes ride on every answer as `x-oauth-scopes`; `GET
//! /repos/{owner}/{repo}` says in `permissions.push` whether the token may push.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Answer, Request, State, NAME, OWNER};

/// The permission (GitHub's name) and level a request to the repository needs.
fn needed(req: &Request) -> Option<(&'static str, &'static str)> {
    let prefix = format!("/repos/{OWNER}/{NAME}");
    let rest = req.path.strip_prefix(&prefix)?;
    let first = rest.trim_start_matches('/').split('/').next().unwrap_or("");
    let permission = match first {
        "" | "installation" => return None,
        "pulls" => "pull_requests",
        "issues" | "labels" => "issues",
        "dispatches" => "contents",
        _ => "contents",
    };
    let level = if req.method == "GET" { "read" } else { "write" };
    Some((permission, level))
}

fn rank(level: &str) -> u8 {
    match level {
        "write" | "admin" => 2,
        "read" => 1,
        _ => 0,
    }
}

/// Whether the token's grants (None: everything) give `permission` at `level`.
pub fn granted(grants: &Option<BTreeMap<String, String>>, permission: &str, level: &str) -> bool {
    match grants {
        None => true,
        Some(g) => rank(g.get(permission).map(String::as_str).unwrap_or("")) >= rank(level),
    }
}

/// The refusal GitHub sends when the token lacks what the endpoint needs.
pub fn refusal(s: &State, req: &Request) -> Option<Answer> {
    let (permission, level) = needed(req)?;
    if granted(&s.permissions, permission, level) {
        return None;
    }
    Some((
        403,
        vec![(
            "x-accepted-github-permissions".to_string(),
            format!("{permission}={level}"),
        )],
        json!({"message": "Resource not accessible by integration",
            "documentation_url": "https://docs.github.com/rest",
            "status": "403"}),
    ))
}

/// Headers on every answer: the classic token's scopes, when the test gave it some.
pub fn scope_headers(s: &State) -> Vec<(String, String)> {
    match &s.oauth_scopes {
        Some(scopes) => vec![("x-oauth-scopes".to_string(), scopes.clone())],
        None => vec![],
    }
}
