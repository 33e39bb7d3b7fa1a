//! The fake's answers in GitHub's documented shapes (api.github.com's OpenAPI description:
//! every required field, with realistic values). `api` is the fake's own address (API URLs),
//! `WEB` stands for github.com (page URLs).

use serde_json::{json, Value};

use super::{hash, Comment, Commit, Issue, Pull, State, NAME, OWNER};

pub const WEB: &str = "https://github.test";
/// When everything in the fake happened.
pub const WHEN: &str = "2026-11-25T00:00:00Z";

fn id_of(text: &str) -> u64 {
    u64::from_str_radix(&hash(&["id", text])[..8], 16).unwrap_or(1)
}

/// `simple-user`: a person, or an App's bot account (`<slug>[bot]`).
pub fn user(api: &str, login: &str) -> Value {
    let kind = if login.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    };
    // `[bot]` is percent-encoded in URLs, as GitHub does.
    let escaped = login.replace('[', "%5B").replace(']', "%5D");
    let u = format!("{api}/users/{escaped}");
    json!({
        "login": login, "id": id_of(login), "node_id": format!("U_{}", id_of(login)),
        "avatar_url": format!("{WEB}/avatars/{}", id_of(login)), "gravatar_id": "",
        "url": u, "html_url": format!("{WEB}/{escaped}"),
        "followers_url": format!("{u}/followers"), "following_url": format!("{u}/following{{/other_user}}"),
        "gists_url": format!("{u}/gists{{/gist_id}}"), "starred_url": format!("{u}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{u}/subscriptions"), "organizations_url": format!("{u}/orgs"),
        "repos_url": format!("{u}/repos"), "events_url": format!("{u}/events{{/privacy}}"),
        "received_events_url": format!("{u}/received_events"), "type": kind, "site_admin": false,
    })
}

/// `private-user`: what `GET /user` says about a person's own token.
pub fn private_user(api: &str, login: &str) -> Value {
    let mut u = user(api, login);
    let extra = json!({
        "name": login, "company": null, "blog": "", "location": null, "email": null,
        "hireable": null, "bio": null, "public_repos": 1, "public_gists": 0, "followers": 0,
        "following": 0, "created_at": WHEN, "updated_at": WHEN, "private_gists": 0,
        "total_private_repos": 0, "owned_private_repos": 0, "disk_usage": 1, "collaborators": 0,
        "two_factor_authentication": true,
    });
    if let (Some(u), Some(extra)) = (u.as_object_mut(), extra.as_object()) {
        u.extend(extra.clone());
    }
    u
}

/// `repository`: acme/churn.
pub fn repository(api: &str) -> Value {
    let r = format!("{api}/repos/{OWNER}/{NAME}");
    json!({
        "id": 4242, "node_id": "R_4242", "name": NAME, "full_name": format!("{OWNER}/{NAME}"),
        "owner": user(api, OWNER), "private": true, "html_url": format!("{WEB}/{OWNER}/{NAME}"),
        "description": null, "fork": false, "url": r,
        "archive_url": format!("{r}/{{archive_format}}{{/ref}}"), "assignees_url": format!("{r}/assignees{{/user}}"),
        "blobs_url": format!("{r}/git/blobs{{/sha}}"), "branches_url": format!("{r}/branches{{/branch}}"),
        "collaborators_url": format!("{r}/collaborators{{/collaborator}}"), "comments_url": format!("{r}/comments{{/number}}"),
        "commits_url": format!("{r}/commits{{/sha}}"), "compare_url": format!("{r}/compare/{{base}}...{{head}}"),
        "contents_url": format!("{r}/contents/{{+path}}"), "contributors_url": format!("{r}/contributors"),
        "deployments_url": format!("{r}/deployments"), "downloads_url": format!("{r}/downloads"),
        "events_url": format!("{r}/events"), "forks_url": format!("{r}/forks"),
        "git_commits_url": format!("{r}/git/commits{{/sha}}"), "git_refs_url": format!("{r}/git/refs{{/sha}}"),
        "git_tags_url": format!("{r}/git/tags{{/sha}}"), "git_url": format!("git://github.test/{OWNER}/{NAME}.git"),
        "issue_comment_url": format!("{r}/issues/comments{{/number}}"), "issue_events_url": format!("{r}/issues/events{{/number}}"),
        "issues_url": format!("{r}/issues{{/number}}"), "keys_url": format!("{r}/keys{{/key_id}}"),
        "labels_url": format!("{r}/labels{{/name}}"), "languages_url": format!("{r}/languages"),
        "merges_url": format!("{r}/merges"), "milestones_url": format!("{r}/milestones{{/number}}"),
        "notifications_url": format!("{r}/notifications{{?since,all,participating}}"), "pulls_url": format!("{r}/pulls{{/number}}"),
        "releases_url": format!("{r}/releases{{/id}}"), "ssh_url": format!("git@github.test:{OWNER}/{NAME}.git"),
        "stargazers_url": format!("{r}/stargazers"), "statuses_url": format!("{r}/statuses/{{sha}}"),
        "subscribers_url": format!("{r}/subscribers"), "subscription_url": format!("{r}/subscription"),
        "tags_url": format!("{r}/tags"), "teams_url": format!("{r}/teams"), "trees_url": format!("{r}/git/trees{{/sha}}"),
        "clone_url": format!("{WEB}/{OWNER}/{NAME}.git"), "mirror_url": null, "hooks_url": format!("{r}/hooks"),
        "svn_url": format!("{WEB}/{OWNER}/{NAME}"), "homepage": null, "language": "Python",
        "forks_count": 0, "forks": 0, "stargazers_count": 0, "watchers_count": 0, "watchers": 0,
        "size": 100, "default_branch": "main", "open_issues_count": 0, "open_issues": 0,
        "has_issues": true, "has_projects": false, "has_wiki": false, "has_pages": false,
        "has_downloads": true, "archived": false, "disabled": false, "visibility": "private",
        "license": null, "pushed_at": WHEN, "created_at": WHEN, "updated_at": WHEN,
    })
}

/// `full-repository` (`GET /repos/{owner}/{repo}`), with the token's `permissions`.
pub fn full_repository(api: &str, push: bool) -> Value {
    let mut r = repository(api);
    r["network_count"] = json!(0);
    r["subscribers_count"] = json!(0);
    r["has_discussions"] = json!(false);
    r["permissions"] =
        json!({"admin": false, "maintain": false, "push": push, "triage": push, "pull": true});
    r
}

/// `label`.
pub fn label(api: &str, name: &str) -> Value {
    json!({"id": id_of(name), "node_id": format!("LA_{}", id_of(name)),
        "url": format!("{api}/repos/{OWNER}/{NAME}/labels/{name}"), "name": name,
        "description": "", "color": "ededed", "default": false})
}

/// `git-ref`: `r` is `heads/<branch>`.
pub fn git_ref(api: &str, r: &str, sha: &str) -> Value {
    json!({"ref": format!("refs/{r}"), "node_id": format!("REF_{}", id_of(r)),
        "url": format!("{api}/repos/{OWNER}/{NAME}/git/refs/{r}"),
        "object": {"sha": sha, "type": "commit", "url": format!("{api}/repos/{OWNER}/{NAME}/git/commits/{sha}")}})
}

fn git_user() -> Value {
    json!({"name": "mlops", "email": "mlops@example.com", "date": WHEN})
}

fn unsigned() -> Value {
    json!({"verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null})
}

/// `git-commit`: a commit object of the git data API.
pub fn git_commit(api: &str, sha: &str, c: &Commit) -> Value {
    let r = format!("{api}/repos/{OWNER}/{NAME}");
    json!({"sha": sha, "node_id": format!("C_{}", id_of(sha)), "url": format!("{r}/git/commits/{sha}"),
        "html_url": format!("{WEB}/{OWNER}/{NAME}/commit/{sha}"),
        "author": git_user(), "committer": git_user(), "message": c.message,
        "tree": {"sha": c.tree, "url": format!("{r}/git/trees/{}", c.tree)},
        "parents": c.parents.iter().map(|p| json!({"sha": p, "url": format!("{r}/git/commits/{p}"),
            "html_url": format!("{WEB}/{OWNER}/{NAME}/commit/{p}")})).collect::<Vec<_>>(),
        "verification": unsigned()})
}

/// `commit`: a commit in a comparison.
pub fn commit(api: &str, sha: &str, c: &Commit) -> Value {
    let r = format!("{api}/repos/{OWNER}/{NAME}");
    json!({"url": format!("{r}/commits/{sha}"), "sha": sha, "node_id": format!("C_{}", id_of(sha)),
        "html_url": format!("{WEB}/{OWNER}/{NAME}/commit/{sha}"), "comments_url": format!("{r}/commits/{sha}/comments"),
        "commit": {"url": format!("{r}/git/commits/{sha}"), "author": git_user(), "committer": git_user(),
            "message": c.message, "comment_count": 0,
            "tree": {"sha": c.tree, "url": format!("{r}/git/trees/{}", c.tree)}, "verification": unsigned()},
        "author": null, "committer": null,
        "parents": c.parents.iter().map(|p| json!({"sha": p, "url": format!("{r}/commits/{p}"),
            "html_url": format!("{WEB}/{OWNER}/{NAME}/commit/{p}")})).collect::<Vec<_>>()})
}

/// `content-file`: the file's content in base64, wrapped at 60 characters as GitHub does.
pub fn content_file(api: &str, path: &str, content: &str, sha: &str, at: &str) -> Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(content);
    let wrapped: Vec<String> = b64
        .as_bytes()
        .chunks(60)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let url = format!("{api}/repos/{OWNER}/{NAME}/contents/{path}?ref={at}");
    let git = format!("{api}/repos/{OWNER}/{NAME}/git/blobs/{sha}");
    let html = format!("{WEB}/{OWNER}/{NAME}/blob/{at}/{path}");
    json!({"type": "file", "encoding": "base64", "size": content.len(),
        "name": path.rsplit('/').next(), "path": path, "content": wrapped.join("\n") + "\n", "sha": sha,
        "url": url, "git_url": git, "html_url": html,
        "download_url": format!("https://raw.github.test/{OWNER}/{NAME}/{at}/{path}"),
        "_links": {"self": url, "git": git, "html": html}})
}

/// `pull-request` (a superset of the `pull-request-simple` lists carry).
pub fn pull(api: &str, s: &State, p: &Pull) -> Value {
    let n = p.number;
    let r = format!("{api}/repos/{OWNER}/{NAME}");
    let sha = s
        .refs
        .get(&format!("heads/{}", p.head))
        .cloned()
        .unwrap_or_default();
    let base_sha = s
        .refs
        .get(&format!("heads/{}", p.base))
        .cloned()
        .unwrap_or_default();
    let side = |label: &str, r#ref: &str, sha: &str| json!({"label": label, "ref": r#ref, "sha": sha, "user": user(api, OWNER), "repo": repository(api)});
    let link = |href: String| json!({"href": href});
    let html = format!("{WEB}/{OWNER}/{NAME}/pull/{n}");
    let closed = (p.state == "closed").then_some(WHEN);
    json!({
        "url": format!("{r}/pulls/{n}"), "id": 90_000 + n, "node_id": format!("PR_{n}"),
        "html_url": html, "diff_url": format!("{html}.diff"), "patch_url": format!("{html}.patch"),
        "issue_url": format!("{r}/issues/{n}"), "commits_url": format!("{r}/pulls/{n}/commits"),
        "review_comments_url": format!("{r}/pulls/{n}/comments"),
        "review_comment_url": format!("{r}/pulls/comments{{/number}}"),
        "comments_url": format!("{r}/issues/{n}/comments"), "statuses_url": format!("{r}/statuses/{sha}"),
        "number": n, "state": p.state, "locked": false, "title": p.title, "user": user(api, &s.identity.login()),
        "body": p.body, "labels": p.labels.iter().map(|l| label(api, l)).collect::<Vec<_>>(),
        "milestone": null, "active_lock_reason": null, "created_at": WHEN, "updated_at": WHEN,
        "closed_at": closed, "merged_at": null, "merge_commit_sha": null, "assignee": null, "assignees": [],
        "requested_reviewers": p.reviewers.iter().map(|l| user(api, l)).collect::<Vec<_>>(),
        "requested_teams": [], "draft": false,
        "head": side(&format!("{OWNER}:{}", p.head), &p.head, &sha),
        "base": side(&format!("{OWNER}:{}", p.base), &p.base, &base_sha),
        "_links": {"self": link(format!("{r}/pulls/{n}")), "html": link(html.clone()),
            "issue": link(format!("{r}/issues/{n}")), "comments": link(format!("{r}/issues/{n}/comments")),
            "review_comments": link(format!("{r}/pulls/{n}/comments")),
            "review_comment": link(format!("{r}/pulls/comments{{/number}}")),
            "commits": link(format!("{r}/pulls/{n}/commits")), "statuses": link(format!("{r}/statuses/{sha}"))},
        "author_association": "CONTRIBUTOR", "auto_merge": null, "merged": false, "mergeable": true,
        "rebaseable": true, "mergeable_state": "clean", "merged_by": null, "comments": 0,
        "review_comments": 0, "maintainer_can_modify": false, "commits": 1, "additions": 1,
        "deletions": 0, "changed_files": 1,
    })
}

/// `issue`: an issue, or the issue side of pull request `pull` (with its `pull_request` link).
pub fn issue(api: &str, s: &State, i: &Issue, pull: bool) -> Value {
    let n = i.number;
    let r = format!("{api}/repos/{OWNER}/{NAME}");
    let mut out = json!({
        "id": 80_000 + n, "node_id": format!("I_{n}"), "url": format!("{r}/issues/{n}"),
        "repository_url": r, "labels_url": format!("{r}/issues/{n}/labels{{/name}}"),
        "comments_url": format!("{r}/issues/{n}/comments"), "events_url": format!("{r}/issues/{n}/events"),
        "html_url": format!("{WEB}/{OWNER}/{NAME}/issues/{n}"), "number": n, "state": i.state,
        "state_reason": if i.state == "closed" { json!("completed") } else { Value::Null },
        "title": i.title, "body": i.body,
        "user": user(api, &i.user.clone().unwrap_or_else(|| s.identity.login())),
        "labels": i.labels.iter().map(|l| label(api, l)).collect::<Vec<_>>(),
        "assignee": null, "assignees": [], "milestone": null, "locked": false, "active_lock_reason": null,
        "comments": s.comments.iter().filter(|c| c.issue == n).count(),
        "closed_at": if i.state == "closed" { json!(WHEN) } else { Value::Null },
        "created_at": WHEN, "updated_at": WHEN, "author_association": "CONTRIBUTOR",
    });
    if pull {
        out["pull_request"] = json!({"url": format!("{r}/pulls/{n}"),
            "html_url": format!("{WEB}/{OWNER}/{NAME}/pull/{n}"),
            "diff_url": format!("{WEB}/{OWNER}/{NAME}/pull/{n}.diff"),
            "patch_url": format!("{WEB}/{OWNER}/{NAME}/pull/{n}.patch"), "merged_at": null});
        out["html_url"] = json!(format!("{WEB}/{OWNER}/{NAME}/pull/{n}"));
    }
    out
}

/// `issue-comment`.
pub fn comment(api: &str, c: &Comment) -> Value {
    let r = format!("{api}/repos/{OWNER}/{NAME}");
    json!({"id": c.id, "node_id": format!("IC_{}", c.id), "url": format!("{r}/issues/comments/{}", c.id),
        "html_url": format!("{WEB}/{OWNER}/{NAME}/pull/{}#issuecomment-{}", c.issue, c.id),
        "body": c.body, "user": user(api, &c.user), "created_at": WHEN, "updated_at": WHEN,
        "issue_url": format!("{r}/issues/{}", c.issue), "author_association": "CONTRIBUTOR"})
}

/// `integration`: the App `GET /app` describes.
pub fn app(api: &str, slug: &str) -> Value {
    let mut owner = user(api, OWNER);
    owner["type"] = json!("Organization");
    json!({"id": 7, "slug": slug, "node_id": "A_7", "client_id": "Iv1.fake", "owner": owner,
        "name": slug, "description": null, "external_url": WEB,
        "html_url": format!("{WEB}/apps/{slug}"), "created_at": WHEN, "updated_at": WHEN,
        "permissions": {"contents": "write", "pull_requests": "write", "issues": "write"},
        "events": []})
}

/// `installation`: the App's installation on acme.
pub fn installation(api: &str, slug: &str) -> Value {
    let mut account = user(api, OWNER);
    account["type"] = json!("Organization");
    json!({"id": 42, "account": account, "repository_selection": "selected",
        "access_tokens_url": format!("{api}/app/installations/42/access_tokens"),
        "repositories_url": format!("{api}/installation/repositories"),
        "html_url": format!("{WEB}/organizations/{OWNER}/settings/installations/42"),
        "app_id": 7, "app_slug": slug, "target_id": 1, "target_type": "Organization",
        "permissions": {"contents": "write", "pull_requests": "write", "issues": "write"},
        "events": [], "created_at": WHEN, "updated_at": WHEN, "single_file_name": null,
        "suspended_by": null, "suspended_at": null})
}

/// `basic-error`.
pub fn error(message: &str, status: u16) -> Value {
    json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()})
}

/// `validation-error`: 422's shape (`errors` entries need a `code`).
pub fn invalid(message: &str, errors: Value) -> Value {
    json!({"message": message, "documentation_url": "https://docs.github.com/rest", "errors": errors, "status": "422"})
}
