//! What `mlops doctor` asks GitHub about the token: can it read the repository, its pull
//! requests and its issues, and does it say it may push. GitHub names a token's rights in
//! different places by kind: a classic token's scopes in `x-oauth-scopes`; a fine-grained or
//! installation token (the workflow's `GITHUB_TOKEN`) has none, and a request it may not make
//! is refused with `x-accepted-github-permissions` naming what it lacks. Only reads are sent:
//! write access is what the repository's `permissions.push` says (when GitHub reports it).

use reqwest::Method;

use super::{GitHub, GitHubError};

/// One answer, as doctor needs it.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    scopes: Option<String>,
    accepted: Option<String>,
    body: String,
}

/// What the token may do, and what it lacks (permission, why).
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Classic token scopes (`x-oauth-scopes`), when GitHub sends them.
    pub scopes: Option<Vec<String>>,
    pub missing: Vec<(String, String)>,
}

impl GitHub {
    async fn raw_get(&self, rest: &str) -> Result<Answer, GitHubError> {
        let path = self.client.repo_path(rest);
        // Relative, as octocrab's own routes are: it joins the API base and, for that base
        // alone, adds the token.
        let url = path.clone();
        let crab = self.crab();
        self.client
            .call(Method::GET, &path, || {
                let url = url.clone();
                async move {
                    let resp = crab._get(url).await?;
                    let header = |name: &str| {
                        resp.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let status = resp.status().as_u16();
                    let scopes = header("x-oauth-scopes");
                    let accepted = header("x-accepted-github-permissions");
                    let body = crab.body_to_string(resp).await?;
                    Ok(Answer {
                        status,
                        scopes,
                        accepted,
                        body,
                    })
                }
            })
            .await
    }

    /// Checks what `mlops promote` needs: contents (push), pull_requests and issues.
    pub fn access(&self) -> Result<Access, GitHubError> {
        self.rt.block_on(async {
            let repo = self.raw_get("").await?;
            let mut access = Access {
                scopes: repo.scopes.as_ref().map(|s| {
                    s.split(',')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect()
                }),
                missing: Vec::new(),
            };
            if repo.status != 200 {
                return Err(GitHubError::Answer {
                    method: Method::GET,
                    path: self.client.repo_path(""),
                    detail: format!(
                        "answered {} (no such repository, or the token may not read it)",
                        repo.status
                    ),
                });
            }
            let info: serde_json::Value = serde_json::from_str(&repo.body).unwrap_or_default();
            if let Some(scopes) = &access.scopes {
                if !scopes.iter().any(|s| s == "repo" || s == "public_repo") {
                    access.missing.push((
                        "contents".into(),
                        format!("the classic token's scopes are {scopes:?}: promote needs repo (or public_repo)"),
                    ));
                }
            }
            if info["permissions"]["push"] == false {
                access.missing.push((
                    "contents".into(),
                    "GitHub says this token may not push to the repository (permissions.push is false): promote writes a branch".into(),
                ));
            }
            for (permission, rest) in [
                ("pull_requests", "/pulls?per_page=1"),
                ("issues", "/issues?per_page=1"),
            ] {
                let answer = self.raw_get(rest).await?;
                if answer.status != 200 {
                    let needs = answer
                        .accepted
                        .map(|a| format!("; GitHub accepts {a}"))
                        .unwrap_or_default();
                    access.missing.push((
                        permission.into(),
                        format!(
                            "GET {} answered {}{needs}",
                            self.client.repo_path(rest),
                            answer.status
                        ),
                    ));
                }
            }
            Ok(access)
        })
    }
}
