//! An in-process fake of the part of GitHub's REST API the github forge uses, speaking the
//! documented request and response shapes (git data API, compare, contents, pulls, issue
//! comments and labels, the authenticated user or App, App installation tokens). It checks every request's headers and JSON
//! body, records them with timestamps, and injects faults: rate limits, `retry-after`, dropped
//! connections before or after a request is applied, and a list that hides an open PR once.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const OWNER: &str = "acme";
pub const NAME: &str = "churn";

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
    pub at: Instant,
    pub wall: SystemTime,
    pub status: u16,
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub tree: String,
    pub parents: Vec<String>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Pull {
    pub number: u64,
    pub state: String,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub issue: u64,
    pub body: String,
    pub user: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultKind {
    /// 403 with `retry-after: N`.
    RetryAfter(u64),
    /// 403 with `x-ratelimit-remaining: 0` and a reset N seconds from now.
    RateLimitReset(u64),
    /// Close the connection without applying the request.
    DropBefore,
    /// Apply the request, then close the connection without answering.
    DropAfter,
    /// Answer a pull request list with `[]` (a PR GitHub has not indexed yet).
    HideList,
    /// Answer each matching request, but hold the answer until this many have been answered
    /// (at most 20 s), so concurrent clients act on the same view.
    Gather(usize),
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub method: String,
    pub path_prefix: String,
    pub kind: FaultKind,
    pub times: usize,
}

/// Whom `State::token` belongs to: what `GET /user`, GraphQL's `viewer` and the author of
/// the comments it writes say.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A person's token (a PAT): `GET /user` answers with `login`.
    User(String),
    /// An App installation token (the workflow's `GITHUB_TOKEN` is one, of the App
    /// `github-actions`): `GET /user` is refused, the writes are by `<slug>[bot]`.
    Installation(String),
}

impl Default for Identity {
    fn default() -> Identity {
        Identity::Installation("github-actions".into())
    }
}

impl Identity {
    pub fn login(&self) -> String {
        match self {
            Identity::User(login) => login.clone(),
            Identity::Installation(slug) => format!("{slug}[bot]"),
        }
    }
}

#[derive(Default)]
pub struct State {
    pub token: String,
    /// Whom `token` belongs to (default: the workflow's `GITHUB_TOKEN`).
    pub identity: Identity,
    /// The App's slug `GET /app` answers with (the App whose JWT `app_key` verifies).
    pub app_slug: String,
    /// When set, App JWTs are verified with this key and exchanged for `token`.
    pub app_key: Option<rsa::RsaPublicKey>,
    pub refs: BTreeMap<String, String>,
    pub commits: HashMap<String, Commit>,
    pub trees: HashMap<String, BTreeMap<String, String>>,
    pub pulls: Vec<Pull>,
    pub comments: Vec<Comment>,
    pub requests: Vec<Request>,
    pub faults: Vec<Fault>,
    gathered: usize,
    counter: u64,
}

#[derive(Clone)]
pub struct Fake {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..40].to_string()
}

fn tree_sha(tree: &BTreeMap<String, String>) -> String {
    let flat: Vec<String> = tree.iter().map(|(k, v)| format!("{k}\u{1}{v}")).collect();
    hash(&["tree", &flat.join("\u{2}")])
}

impl Fake {
    /// A fake with `acme/churn`, whose `main` has one commit.
    pub fn start(token: &str) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut state = State {
            token: token.to_string(),
            ..State::default()
        };
        let tree: BTreeMap<String, String> =
            [("README.md".to_string(), "churn\n".to_string())].into();
        let t = tree_sha(&tree);
        state.trees.insert(t.clone(), tree);
        let c = hash(&["commit", &t, "initial"]);
        state.commits.insert(
            c.clone(),
            Commit {
                tree: t,
                parents: vec![],
                message: "initial".into(),
            },
        );
        state.refs.insert("heads/main".into(), c);
        let fake = Fake {
            url,
            state: Arc::new(Mutex::new(state)),
        };
        let f = fake.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let f = f.clone();
                std::thread::spawn(move || f.connection(stream));
            }
        });
        fake
    }

    pub fn fault(&self, method: &str, path_prefix: &str, kind: FaultKind, times: usize) {
        self.state.lock().unwrap().faults.push(Fault {
            method: method.into(),
            path_prefix: format!("/repos/{OWNER}/{NAME}{path_prefix}"),
            kind,
            times,
        });
    }

    pub fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn pulls(&self) -> Vec<Pull> {
        self.state.lock().unwrap().pulls.clone()
    }

    pub fn comments(&self) -> Vec<Comment> {
        self.state.lock().unwrap().comments.clone()
    }

    pub fn tip(&self, branch: &str) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .refs
            .get(&format!("heads/{branch}"))
            .cloned()
    }

    pub fn commit(&self, sha: &str) -> Commit {
        self.state.lock().unwrap().commits[sha].clone()
    }

    /// The file at `path` on `branch`.
    pub fn file(&self, branch: &str, path: &str) -> Option<String> {
        let s = self.state.lock().unwrap();
        let tip = s.refs.get(&format!("heads/{branch}"))?;
        s.trees[&s.commits[tip].tree].get(path).cloned()
    }

    /// A commit by a person (no mlops trailer) on top of `branch`.
    pub fn human_commit(&self, branch: &str, path: &str, content: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let tip = s.refs[&format!("heads/{branch}")].clone();
        let mut tree = s.trees[&s.commits[&tip].tree].clone();
        tree.insert(path.into(), content.into());
        let t = tree_sha(&tree);
        s.trees.insert(t.clone(), tree);
        let c = hash(&["commit", &t, &tip, "human"]);
        s.commits.insert(
            c.clone(),
            Commit {
                tree: t,
                parents: vec![tip],
                message: "Tune the threshold by hand".into(),
            },
        );
        s.refs.insert(format!("heads/{branch}"), c.clone());
        c
    }

    /// A comment someone else wrote.
    pub fn add_comment(&self, issue: u64, body: &str, user: &str) {
        let mut s = self.state.lock().unwrap();
        s.counter += 1;
        let id = 1000 + s.counter;
        s.comments.push(Comment {
            id,
            issue,
            body: body.into(),
            user: user.into(),
        });
    }

    /// An open pull request, as if opened from the web.
    pub fn add_pull(&self, head: &str, base: &str, title: &str) -> u64 {
        let mut s = self.state.lock().unwrap();
        let number = next_number(&mut s);
        s.pulls.push(Pull {
            number,
            state: "open".into(),
            title: title.into(),
            body: String::new(),
            head: head.into(),
            base: base.into(),
            labels: vec![],
            reviewers: vec![],
        });
        number
    }

    fn connection(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut raw = vec![0; len];
        if reader.read_exact(&mut raw).is_err() {
            return;
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target.clone(), String::new()),
        };
        let body: Value = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw).unwrap_or(json!({"__invalid_json": true}))
        };
        let mut req = Request {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            headers,
            body,
            at: Instant::now(),
            wall: SystemTime::now(),
            status: 0,
        };

        let fault = {
            let mut s = self.state.lock().unwrap();
            let f = s
                .faults
                .iter_mut()
                .find(|f| f.times > 0 && f.method == method && path.starts_with(&f.path_prefix));
            f.map(|f| {
                f.times -= 1;
                f.kind
            })
        };
        let (status, extra, answer) = match fault {
            Some(FaultKind::DropBefore) => {
                req.status = 0;
                self.state.lock().unwrap().requests.push(req);
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return;
            }
            Some(FaultKind::RetryAfter(n)) => (
                403,
                vec![("retry-after".to_string(), n.to_string())],
                json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
            ),
            Some(FaultKind::RateLimitReset(n)) => {
                let reset = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    + n;
                (
                    403,
                    vec![
                        ("x-ratelimit-limit".to_string(), "5000".to_string()),
                        ("x-ratelimit-remaining".to_string(), "0".to_string()),
                        ("x-ratelimit-used".to_string(), "5000".to_string()),
                        ("x-ratelimit-reset".to_string(), reset.to_string()),
                    ],
                    json!({"message": "API rate limit exceeded for installation ID 42.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
                )
            }
            Some(FaultKind::HideList) if method == "GET" => (200, vec![], json!([])),
            _ => {
                let (st, ans) = self.handle(&req);
                (st, vec![], ans)
            }
        };
        // Answered (as of now), but held until the others have their answers too.
        if let Some(FaultKind::Gather(n)) = fault {
            self.state.lock().unwrap().gathered += 1;
            let start = Instant::now();
            while self.state.lock().unwrap().gathered < n
                && start.elapsed() < std::time::Duration::from_secs(20)
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        req.status = status;
        self.state.lock().unwrap().requests.push(req);
        if fault == Some(FaultKind::DropAfter) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        let text = answer.to_string();
        let reason = match status {
            200 => "OK",
            201 => "Created",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            422 => "Unprocessable Entity",
            _ => "Other",
        };
        let mut out = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\nx-github-api-version-selected: 2022-11-28\r\n",
            text.len()
        );
        for (k, v) in extra {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&text);
        let mut stream = stream;
        let _ = stream.write_all(out.as_bytes());
        let _ = stream.flush();
    }

    fn handle(&self, req: &Request) -> (u16, Value) {
        // Headers every request must carry (GitHub's documented client requirements).
        if req.headers.get("accept").map(String::as_str) != Some("application/vnd.github+json") {
            return (
                415,
                json!({"message": "Accept must be application/vnd.github+json"}),
            );
        }
        if req.headers.get("x-github-api-version").map(String::as_str) != Some("2022-11-28") {
            return (
                400,
                json!({"message": "X-GitHub-Api-Version must be 2022-11-28"}),
            );
        }
        if req.headers.get("user-agent").is_none_or(|u| u.is_empty()) {
            return (
                403,
                json!({"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"}),
            );
        }
        if matches!(req.method.as_str(), "POST" | "PATCH")
            && !req
                .headers
                .get("content-type")
                .is_some_and(|c| c.starts_with("application/json"))
        {
            return (400, json!({"message": "Problems parsing JSON"}));
        }
        if req.body.get("__invalid_json").is_some() {
            return (400, json!({"message": "Problems parsing JSON"}));
        }
        let auth = req
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        let bearer = auth.strip_prefix("Bearer ").unwrap_or_default();
        let mut s = self.state.lock().unwrap();
        let app_route = req.path == "/app"
            || req.path.starts_with("/app/")
            || req.path.ends_with("/installation");
        if app_route {
            match &s.app_key {
                Some(key) if verify_jwt(bearer, key) => {}
                _ => {
                    return (
                        401,
                        json!({"message": "A JSON web token could not be decoded"}),
                    )
                }
            }
        } else if bearer != s.token || s.token.is_empty() {
            return (
                401,
                json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
            );
        }
        let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let q = parse_query(&req.query);
        let not_found = (
            404,
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        );
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/app") => {
                // GitHub's "Get the authenticated app" (JWT only).
                return (
                    200,
                    json!({"id": 7, "slug": s.app_slug, "node_id": "A_x", "client_id": "Iv1.x",
                        "owner": {"login": OWNER, "id": 1, "type": "Organization"},
                        "name": s.app_slug, "description": "", "external_url": "https://github.test",
                        "html_url": format!("https://github.test/apps/{}", s.app_slug),
                        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                        "permissions": {"contents": "write", "pull_requests": "write"}, "events": []}),
                );
            }
            ("GET", "/user") => {
                return match &s.identity {
                    Identity::User(login) => (
                        200,
                        json!({"login": login, "id": 2, "node_id": "U_x", "type": "User",
                            "site_admin": false, "html_url": format!("https://github.test/{login}")}),
                    ),
                    Identity::Installation(_) => (
                        403,
                        json!({"message": "Resource not accessible by integration",
                            "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user",
                            "status": "403"}),
                    ),
                };
            }
            ("POST", "/graphql") => {
                let query = req.body["query"].as_str().unwrap_or_default();
                let compact: String = query.split_whitespace().collect();
                return if compact.contains("viewer{login}") {
                    (
                        200,
                        json!({"data": {"viewer": {"login": s.identity.login()}}}),
                    )
                } else {
                    (
                        200,
                        json!({"errors": [{"message": "this fake answers only { viewer { login } }"}]}),
                    )
                };
            }
            _ => {}
        }
        if segs.len() >= 3 && segs[0] == "app" {
            // POST /app/installations/{id}/access_tokens
            if req.method == "POST" && segs.len() == 4 && segs[3] == "access_tokens" {
                return (
                    201,
                    json!({"token": s.token, "expires_at": "2099-01-01T00:00:00Z", "permissions": {"contents": "write", "pull_requests": "write"}, "repository_selection": "selected"}),
                );
            }
            return not_found;
        }
        if segs.len() < 3 || segs[0] != "repos" || segs[1] != OWNER || segs[2] != NAME {
            return not_found;
        }
        let rest = &segs[3..];
        let body = &req.body;
        match (req.method.as_str(), rest) {
            ("GET", ["installation"]) => (
                200,
                json!({"id": 42, "app_id": 7, "account": {"login": OWNER}}),
            ),
            ("GET", ["git", "ref", r @ ..]) => {
                let r = r.join("/");
                match s.refs.get(&r) {
                    Some(sha) => (200, ref_json(&self.url, &r, sha)),
                    None => not_found,
                }
            }
            ("POST", ["git", "refs"]) => {
                let (Some(r), Some(sha)) = (body["ref"].as_str(), body["sha"].as_str()) else {
                    return (
                        422,
                        json!({"message": "Invalid request.\n\n\"ref\", \"sha\" weren't supplied."}),
                    );
                };
                let Some(r) = r.strip_prefix("refs/") else {
                    return (
                        422,
                        json!({"message": "Reference name must start with 'refs/'"}),
                    );
                };
                if !s.commits.contains_key(sha) {
                    return (422, json!({"message": "Object does not exist"}));
                }
                if s.refs.contains_key(r) {
                    return (
                        422,
                        json!({"message": "Reference already exists", "documentation_url": "https://docs.github.com/rest/git/refs#create-a-reference"}),
                    );
                }
                s.refs.insert(r.to_string(), sha.to_string());
                (201, ref_json(&self.url, r, sha))
            }
            ("PATCH", ["git", "refs", r @ ..]) => {
                let r = r.join("/");
                let Some(sha) = body["sha"].as_str() else {
                    return (
                        422,
                        json!({"message": "Invalid request.\n\n\"sha\" wasn't supplied."}),
                    );
                };
                let Some(old) = s.refs.get(&r).cloned() else {
                    return (422, json!({"message": "Reference does not exist"}));
                };
                if !s.commits.contains_key(sha) {
                    return (422, json!({"message": "Object does not exist"}));
                }
                let force = body["force"].as_bool().unwrap_or(false);
                if !force && !ancestors(&s, sha).contains(&old) {
                    return (422, json!({"message": "Update is not a fast forward"}));
                }
                s.refs.insert(r.clone(), sha.to_string());
                (200, ref_json(&self.url, &r, sha))
            }
            ("GET", ["git", "commits", sha]) => match s.commits.get(*sha) {
                Some(c) => (200, commit_json(sha, c)),
                None => not_found,
            },
            ("POST", ["git", "blobs"]) => {
                let content = body["content"].as_str().unwrap_or_default();
                let text = if body["encoding"] == "base64" {
                    match base64::engine::general_purpose::STANDARD.decode(content) {
                        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                        Err(_) => return (422, json!({"message": "Invalid base64"})),
                    }
                } else {
                    content.to_string()
                };
                let sha = hash(&["blob", &text]);
                (
                    201,
                    json!({"sha": sha, "url": format!("{}/repos/{OWNER}/{NAME}/git/blobs/{sha}", self.url)}),
                )
            }
            ("POST", ["git", "trees"]) => {
                let mut tree = match body["base_tree"].as_str() {
                    Some(b) => match s.trees.get(b) {
                        Some(t) => t.clone(),
                        None => {
                            return (422, json!({"message": "base_tree is not a valid tree oid"}))
                        }
                    },
                    None => BTreeMap::new(),
                };
                let Some(entries) = body["tree"].as_array() else {
                    return (
                        422,
                        json!({"message": "Invalid request.\n\n\"tree\" wasn't supplied."}),
                    );
                };
                for e in entries {
                    let (Some(path), Some("100644"), Some("blob")) =
                        (e["path"].as_str(), e["mode"].as_str(), e["type"].as_str())
                    else {
                        return (422, json!({"message": "Invalid tree entry", "errors": [e]}));
                    };
                    let content = match (e["content"].as_str(), e["sha"].as_str()) {
                        (Some(c), None) => c.to_string(),
                        (None, Some(sha)) => format!("blob:{sha}"),
                        _ => {
                            return (
                                422,
                                json!({"message": "tree entry needs exactly one of content, sha"}),
                            )
                        }
                    };
                    tree.insert(path.to_string(), content);
                }
                let sha = tree_sha(&tree);
                s.trees.insert(sha.clone(), tree);
                (
                    201,
                    json!({"sha": sha, "url": format!("{}/repos/{OWNER}/{NAME}/git/trees/{sha}", self.url), "truncated": false, "tree": []}),
                )
            }
            ("POST", ["git", "commits"]) => {
                let (Some(message), Some(tree)) = (body["message"].as_str(), body["tree"].as_str())
                else {
                    return (
                        422,
                        json!({"message": "Invalid request.\n\n\"message\", \"tree\" weren't supplied."}),
                    );
                };
                if !s.trees.contains_key(tree) {
                    return (422, json!({"message": "Tree SHA does not exist"}));
                }
                let parents: Vec<String> = body["parents"]
                    .as_array()
                    .map(|p| {
                        p.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                if parents.iter().any(|p| !s.commits.contains_key(p)) {
                    return (
                        422,
                        json!({"message": "Parent SHA does not exist or is not a commit object"}),
                    );
                }
                s.counter += 1;
                let n = s.counter.to_string();
                let sha = hash(&["commit", tree, &parents.join(","), message, &n]);
                let c = Commit {
                    tree: tree.into(),
                    parents,
                    message: message.into(),
                };
                let j = commit_json(&sha, &c);
                s.commits.insert(sha, c);
                (201, j)
            }
            ("GET", ["compare", basehead]) => {
                let Some((b, h)) = basehead.split_once("...") else {
                    return not_found;
                };
                let (Some(b), Some(h)) = (resolve(&s, b), resolve(&s, h)) else {
                    return not_found;
                };
                let base_chain = ancestors(&s, &b);
                let mut commits = Vec::new();
                let mut cur = Some(h.clone());
                let mut merge_base = None;
                while let Some(c) = cur {
                    if base_chain.contains(&c) {
                        merge_base = Some(c);
                        break;
                    }
                    let parent = s.commits[&c].parents.first().cloned();
                    commits.push(c);
                    cur = parent;
                }
                commits.reverse();
                let behind = merge_base
                    .as_ref()
                    .and_then(|m| base_chain.iter().position(|x| x == m))
                    .unwrap_or(base_chain.len());
                let status = match (commits.len(), behind) {
                    (0, 0) => "identical",
                    (_, 0) => "ahead",
                    (0, _) => "behind",
                    _ => "diverged",
                };
                let list: Vec<Value> = commits
                    .iter()
                    .map(|c| commit_item(c, &s.commits[c]))
                    .collect();
                (
                    200,
                    json!({
                        "url": format!("{}/repos/{OWNER}/{NAME}/compare/{basehead}", self.url),
                        "status": status, "ahead_by": commits.len(), "behind_by": behind,
                        "total_commits": commits.len(),
                        "base_commit": commit_item(&b, &s.commits[&b]),
                        "merge_base_commit": merge_base.as_ref().map(|m| commit_item(m, &s.commits[m])),
                        "commits": list, "files": []
                    }),
                )
            }
            ("GET", ["contents", p @ ..]) => {
                let path = p.join("/");
                let Some(at) = q.get("ref").and_then(|r| resolve(&s, r)) else {
                    return not_found;
                };
                match s.trees[&s.commits[&at].tree].get(&path) {
                    Some(content) => {
                        let b64 = base64::engine::general_purpose::STANDARD.encode(content);
                        let wrapped: Vec<String> = b64
                            .as_bytes()
                            .chunks(60)
                            .map(|c| String::from_utf8_lossy(c).into_owned())
                            .collect();
                        (
                            200,
                            json!({"type": "file", "encoding": "base64", "size": content.len(),
                            "name": path.rsplit('/').next(), "path": path,
                            "content": wrapped.join("\n") + "\n", "sha": hash(&["blob", content])}),
                        )
                    }
                    None => not_found,
                }
            }
            ("GET", ["pulls"]) => {
                let list: Vec<Value> = s
                    .pulls
                    .iter()
                    .filter(|p| {
                        q.get("state")
                            .is_none_or(|st| st == "all" || *st == p.state)
                    })
                    .filter(|p| {
                        q.get("head")
                            .is_none_or(|h| *h == format!("{OWNER}:{}", p.head))
                    })
                    .filter(|p| q.get("base").is_none_or(|b| *b == p.base))
                    .map(|p| pull_json(&self.url, &s, p))
                    .collect();
                (200, Value::Array(list))
            }
            ("POST", ["pulls"]) => {
                let (Some(title), Some(head), Some(base)) = (
                    body["title"].as_str(),
                    body["head"].as_str(),
                    body["base"].as_str(),
                ) else {
                    return (
                        422,
                        json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "missing_field", "field": "head"}]}),
                    );
                };
                let head = head.strip_prefix(&format!("{OWNER}:")).unwrap_or(head);
                if !s.refs.contains_key(&format!("heads/{head}")) {
                    return (
                        422,
                        json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "invalid", "field": "head"}]}),
                    );
                }
                if s.pulls
                    .iter()
                    .any(|p| p.state == "open" && p.head == head && p.base == base)
                {
                    return (
                        422,
                        json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom", "message": format!("A pull request already exists for {OWNER}:{head}.")}], "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"}),
                    );
                }
                let number = next_number(&mut s);
                let p = Pull {
                    number,
                    state: "open".into(),
                    title: title.into(),
                    body: body["body"].as_str().unwrap_or_default().into(),
                    head: head.into(),
                    base: base.into(),
                    labels: vec![],
                    reviewers: vec![],
                };
                let j = pull_json(&self.url, &s, &p);
                s.pulls.push(p);
                (201, j)
            }
            ("PATCH", ["pulls", n]) => {
                let url = self.url.clone();
                let Some(i) = s.pulls.iter().position(|p| p.number.to_string() == *n) else {
                    return not_found;
                };
                if let Some(t) = body["title"].as_str() {
                    s.pulls[i].title = t.into();
                }
                if let Some(b) = body["body"].as_str() {
                    s.pulls[i].body = b.into();
                }
                if let Some(st) = body["state"].as_str() {
                    if st != "open" && st != "closed" {
                        return (
                            422,
                            json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "invalid", "field": "state"}]}),
                        );
                    }
                    s.pulls[i].state = st.into();
                }
                let p = s.pulls[i].clone();
                (200, pull_json(&url, &s, &p))
            }
            ("POST", ["pulls", n, "requested_reviewers"]) => {
                let url = self.url.clone();
                let Some(i) = s.pulls.iter().position(|p| p.number.to_string() == *n) else {
                    return not_found;
                };
                let Some(r) = body["reviewers"].as_array() else {
                    return (
                        422,
                        json!({"message": "Invalid request.\n\n\"reviewers\" wasn't supplied."}),
                    );
                };
                for x in r {
                    s.pulls[i]
                        .reviewers
                        .push(x.as_str().unwrap_or_default().into());
                }
                let p = s.pulls[i].clone();
                (201, pull_json(&url, &s, &p))
            }
            ("POST", ["issues", n, "labels"]) => {
                let Some(i) = s.pulls.iter().position(|p| p.number.to_string() == *n) else {
                    return not_found;
                };
                let Some(l) = body["labels"].as_array() else {
                    return (
                        422,
                        json!({"message": "Invalid request.\n\n\"labels\" wasn't supplied."}),
                    );
                };
                for x in l {
                    let x = x.as_str().unwrap_or_default().to_string();
                    if !s.pulls[i].labels.contains(&x) {
                        s.pulls[i].labels.push(x);
                    }
                }
                let out: Vec<Value> = s.pulls[i]
                    .labels
                    .iter()
                    .map(|l| json!({"name": l}))
                    .collect();
                (200, Value::Array(out))
            }
            ("GET", ["issues", n, "comments"]) => {
                let list: Vec<Value> = s
                    .comments
                    .iter()
                    .filter(|c| c.issue.to_string() == *n)
                    .map(|c| comment_json(&self.url, c))
                    .collect();
                (200, Value::Array(list))
            }
            ("POST", ["issues", n, "comments"]) => {
                let Some(text) = body["body"].as_str() else {
                    return (
                        422,
                        json!({"message": "Invalid request.\n\n\"body\" wasn't supplied."}),
                    );
                };
                let Ok(issue) = n.parse::<u64>() else {
                    return not_found;
                };
                s.counter += 1;
                let c = Comment {
                    id: 1000 + s.counter,
                    issue,
                    body: text.into(),
                    user: s.identity.login(),
                };
                let j = comment_json(&self.url, &c);
                s.comments.push(c);
                (201, j)
            }
            ("PATCH", ["issues", "comments", id]) => {
                let Some(text) = body["body"].as_str() else {
                    return (
                        422,
                        json!({"message": "Invalid request.\n\n\"body\" wasn't supplied."}),
                    );
                };
                let Some(c) = s.comments.iter_mut().find(|c| c.id.to_string() == *id) else {
                    return not_found;
                };
                c.body = text.into();
                let c = c.clone();
                (200, comment_json(&self.url, &c))
            }
            _ => not_found,
        }
    }
}

fn next_number(s: &mut State) -> u64 {
    s.pulls.iter().map(|p| p.number).max().unwrap_or(0) + 1
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn resolve(s: &State, name: &str) -> Option<String> {
    s.refs
        .get(&format!("heads/{name}"))
        .cloned()
        .or_else(|| s.commits.contains_key(name).then(|| name.to_string()))
}

fn ancestors(s: &State, sha: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = Some(sha.to_string());
    while let Some(c) = cur {
        cur = s.commits.get(&c).and_then(|x| x.parents.first().cloned());
        out.push(c);
    }
    out
}

fn ref_json(url: &str, r: &str, sha: &str) -> Value {
    json!({"ref": format!("refs/{r}"), "node_id": "REF_x", "url": format!("{url}/repos/{OWNER}/{NAME}/git/refs/{r}"),
        "object": {"sha": sha, "type": "commit", "url": format!("{url}/repos/{OWNER}/{NAME}/git/commits/{sha}")}})
}

fn commit_json(sha: &str, c: &Commit) -> Value {
    json!({"sha": sha, "node_id": "C_x", "message": c.message, "tree": {"sha": c.tree},
        "parents": c.parents.iter().map(|p| json!({"sha": p})).collect::<Vec<_>>(),
        "author": {"name": "mlops", "email": "mlops@localhost", "date": "2026-11-25T00:00:00Z"}})
}

fn commit_item(sha: &str, c: &Commit) -> Value {
    json!({"sha": sha, "commit": {"message": c.message, "tree": {"sha": c.tree}},
        "parents": c.parents.iter().map(|p| json!({"sha": p})).collect::<Vec<_>>()})
}

fn pull_json(url: &str, s: &State, p: &Pull) -> Value {
    let sha = s
        .refs
        .get(&format!("heads/{}", p.head))
        .cloned()
        .unwrap_or_default();
    json!({
        "url": format!("{url}/repos/{OWNER}/{NAME}/pulls/{}", p.number),
        "html_url": format!("https://github.test/{OWNER}/{NAME}/pull/{}", p.number),
        "number": p.number, "state": p.state, "title": p.title, "body": p.body,
        "labels": p.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        "requested_reviewers": p.reviewers.iter().map(|r| json!({"login": r})).collect::<Vec<_>>(),
        "head": {"label": format!("{OWNER}:{}", p.head), "ref": p.head, "sha": sha,
                 "repo": {"full_name": format!("{OWNER}/{NAME}")}},
        "base": {"label": format!("{OWNER}:{}", p.base), "ref": p.base,
                 "repo": {"full_name": format!("{OWNER}/{NAME}")}},
    })
}

fn comment_json(url: &str, c: &Comment) -> Value {
    // Logins ending in `[bot]` are Apps' bot accounts; no person's login can contain `[`.
    let kind = if c.user.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    };
    json!({"id": c.id, "body": c.body, "user": {"login": c.user, "id": 2, "type": kind},
        "url": format!("{url}/repos/{OWNER}/{NAME}/issues/comments/{}", c.id),
        "html_url": format!("https://github.test/{OWNER}/{NAME}/pull/{}#issuecomment-{}", c.issue, c.id)})
}

/// An RS256 JWT from the App: signature valid for `key`, `iss` present, not expired.
fn verify_jwt(token: &str, key: &rsa::RsaPublicKey) -> bool {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return false;
    }
    let Ok(header) = b64.decode(parts[0]) else {
        return false;
    };
    let Ok(claims) = b64.decode(parts[1]) else {
        return false;
    };
    let Ok(sig) = b64.decode(parts[2]) else {
        return false;
    };
    let header: Value = serde_json::from_slice(&header).unwrap_or_default();
    let claims: Value = serde_json::from_slice(&claims).unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    if header["alg"] != "RS256"
        || claims["iss"].is_null()
        || claims["exp"]
            .as_i64()
            .is_none_or(|e| e < now || e > now + 600)
    {
        return false;
    }
    let Ok(sig) = Signature::try_from(sig.as_slice()) else {
        return false;
    };
    VerifyingKey::<rsa::sha2::Sha256>::new(key.clone())
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .is_ok()
}
