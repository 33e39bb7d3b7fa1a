//! An in-process fake of the part of GitHub's REST API the github forge and monitoring use,
//! speaking GitHub's documented request and response shapes (git data API, compare, contents,
//! pulls, issues and their comments and labels, repository_dispatch, the authenticated user or
//! App, App installation tokens; see `shapes`). It checks every request's headers, records it
//! with a timestamp, validates it and its answer against GitHub's OpenAPI description
//! (`openapi`; a violation fails the test when the fake is dropped), and injects faults: rate
//! limits, `retry-after`, dropped connections before or after a request is applied, and a list
//! that hides an open PR once.
#![allow(dead_code)]

#[path = "fake_github/permissions.rs"]
mod permissions;
#[path = "fake_github/shapes.rs"]
mod shapes;

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

/// An issue (not a pull request: those are `Pull`s, numbered in the same sequence).
#[derive(Debug, Clone)]
pub struct Issue {
    pub number: u64,
    pub state: String,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    /// Who opened it; None: the token's own account.
    pub user: Option<String>,
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
    /// When set, App JWTs are verified with this RSA public key (PKCS#1 DER) and exchanged
    /// for `token`.
    pub app_key: Option<Vec<u8>>,
    pub refs: BTreeMap<String, String>,
    pub commits: HashMap<String, Commit>,
    pub trees: HashMap<String, BTreeMap<String, String>>,
    pub pulls: Vec<Pull>,
    pub issues: Vec<Issue>,
    pub comments: Vec<Comment>,
    /// `repository_dispatch` events received: (event_type, client_payload).
    pub dispatches: Vec<(String, Value)>,
    pub requests: Vec<Request>,
    pub faults: Vec<Fault>,
    /// What GitHub's OpenAPI description says is wrong with a request or an answer.
    pub violations: Vec<String>,
    /// Changes every JSON object of the next answers (a test of the validation itself).
    pub tamper: Option<fn(&mut Value)>,
    /// The token's permissions (GitHub's names: contents, pull_requests, issues → read or
    /// write); None grants everything. See `permissions`.
    pub permissions: Option<BTreeMap<String, String>>,
    /// A classic token's scopes, sent as `x-oauth-scopes` on every answer.
    pub oauth_scopes: Option<String>,
    gathered: usize,
    counter: u64,
}

/// The fake: its address and state. Dropping it fails the test if any request or answer
/// broke GitHub's OpenAPI description.
pub struct Fake {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

/// What the connection threads share.
#[derive(Clone)]
struct Server {
    url: String,
    state: Arc<Mutex<State>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let violations = std::mem::take(&mut self.state.lock().unwrap().violations);
        assert!(
            violations.is_empty(),
            "the fake GitHub saw {} request(s) or answer(s) that GitHub's OpenAPI description refuses:\n{}",
            violations.len(),
            violations.join("\n")
        );
    }
}

pub fn hash(parts: &[&str]) -> String {
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

/// The RSA public key (PKCS#1 DER) of a private key in PEM, by OpenSSL.
pub fn public_key_der(private_pem: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, private_pem).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["rsa", "-RSAPublicKey_out", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl Fake {
    /// A fake with `acme/churn`, whose `main` has one commit.
    pub fn start(token: &str) -> Fake {
        // Loaded here, in the test's thread: a missing description fails the test itself.
        crate::openapi::spec();
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
        let server = Server {
            url: url.clone(),
            state: Arc::new(Mutex::new(state)),
        };
        let fake = Fake {
            url,
            state: server.state.clone(),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let server = server.clone();
                std::thread::spawn(move || server.connection(stream));
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

    /// The violations of GitHub's description seen so far (they no longer fail the test).
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().violations)
    }

    pub fn pulls(&self) -> Vec<Pull> {
        self.state.lock().unwrap().pulls.clone()
    }

    /// Pull request `number` as GitHub's API shows it.
    pub fn pull_json(&self, number: u64) -> Value {
        let s = self.state.lock().unwrap();
        let p = s.pulls.iter().find(|p| p.number == number).unwrap();
        shapes::pull(&self.url, &s, p)
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
    /// An open issue `user` wrote (someone else than the token's account, say).
    pub fn add_issue(&self, title: &str, body: &str, user: &str) -> u64 {
        let mut s = self.state.lock().unwrap();
        let number = next_number(&s);
        s.issues.push(Issue {
            number,
            state: "open".into(),
            title: title.into(),
            body: body.into(),
            labels: Vec::new(),
            user: Some(user.into()),
        });
        number
    }

    /// The issues (not pull requests), oldest first.
    pub fn issues(&self) -> Vec<Issue> {
        self.state.lock().unwrap().issues.clone()
    }

    /// The repository_dispatch events received: (event_type, client_payload).
    pub fn dispatches(&self) -> Vec<(String, Value)> {
        self.state.lock().unwrap().dispatches.clone()
    }

    pub fn add_pull(&self, head: &str, base: &str, title: &str) -> u64 {
        let mut s = self.state.lock().unwrap();
        let number = next_number(&s);
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
}

impl Server {
    /// One HTTP/1.1 request from `reader` (None when the connection closed first).
    fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return None;
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
        reader.read_exact(&mut raw).ok()?;
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target.clone(), String::new()),
        };
        let body: Value = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw).unwrap_or(json!({"__invalid_json": true}))
        };
        Some(Request {
            method,
            path,
            query,
            headers,
            body,
            at: Instant::now(),
            wall: SystemTime::now(),
            status: 0,
        })
    }

    fn connection(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let Some(mut req) = Server::read_request(&mut reader) else {
            return;
        };
        let (method, path, query) = (req.method.clone(), req.path.clone(), req.query.clone());
        let spec = crate::openapi::spec();
        let problems = spec.check_request(&method, &path, &query, &req.body);
        self.state.lock().unwrap().violations.extend(problems);

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
        if fault == Some(FaultKind::DropBefore) {
            req.status = 0;
            self.state.lock().unwrap().requests.push(req);
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        let (status, extra, mut answer) = match fault.and_then(|f| rate_limited(f, &method)) {
            Some(limited) => limited,
            None => {
                let refused = {
                    let s = self.state.lock().unwrap();
                    let authorised = req.headers.get("authorization").map(String::as_str)
                        == Some(&format!("Bearer {}", s.token));
                    authorised.then(|| permissions::refusal(&s, &req)).flatten()
                };
                match refused {
                    Some(r) => r,
                    None => {
                        let (st, ans) = self.handle(&req);
                        (st, vec![], ans)
                    }
                }
            }
        };
        let mut extra = extra;
        extra.extend(permissions::scope_headers(&self.state.lock().unwrap()));
        if let Some(tamper) = self.state.lock().unwrap().tamper {
            tamper_all(&mut answer, tamper);
        }
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
        // Checked once recorded: requests stay in the order they were handled.
        let problems = spec.check_response(&method, &path, status, &answer);
        self.state.lock().unwrap().violations.extend(problems);
        if fault == Some(FaultKind::DropAfter) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        // 204 No Content has no body at all.
        let text = if answer.is_null() {
            String::new()
        } else {
            answer.to_string()
        };
        let reason = match status {
            200 => "OK",
            201 => "Created",
            204 => "No Content",
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
        if let Some(refused) = missing_headers(req) {
            return refused;
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
                        shapes::error("A JSON web token could not be decoded", 401),
                    )
                }
            }
        } else if bearer != s.token || s.token.is_empty() {
            return (401, shapes::error("Bad credentials", 401));
        }
        let api = self.url.as_str();
        match (req.method.as_str(), req.path.as_str()) {
            // GitHub's "Get the authenticated app" (JWT only).
            ("GET", "/app") => return (200, shapes::app(api, &s.app_slug)),
            ("GET", "/user") => {
                return match &s.identity {
                    Identity::User(login) => (200, shapes::private_user(api, login)),
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
        let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        if let ["app", "installations", _, "access_tokens"] = segs.as_slice() {
            if req.method == "POST" {
                return (
                    201,
                    json!({"token": s.token, "expires_at": "2099-01-01T00:00:00Z",
                        "permissions": {"contents": "write", "pull_requests": "write", "issues": "write"},
                        "repository_selection": "selected"}),
                );
            }
        }
        if segs.len() < 3 || segs[0] != "repos" || segs[1] != OWNER || segs[2] != NAME {
            return not_found();
        }
        let rest = &segs[3..];
        let q = parse_query(&req.query);
        let body = &req.body;
        let method = req.method.as_str();
        if let (["installation"], "GET") = (rest, method) {
            return (200, shapes::installation(api, &s.app_slug));
        }
        if let ([], "GET") = (rest, method) {
            let push = permissions::granted(&s.permissions, "contents", "write");
            return (200, shapes::full_repository(api, push));
        }
        self.git_route(&mut s, method, rest, &q, body)
            .or_else(|| self.pulls_route(&mut s, method, rest, &q, body))
            .or_else(|| self.issues_route(&mut s, method, rest, &q, body))
            .or_else(|| self.comments_route(&mut s, method, rest, body))
            .unwrap_or_else(not_found)
    }

    /// The git data API, compare and contents.
    fn git_route(
        &self,
        s: &mut State,
        method: &str,
        rest: &[&str],
        q: &HashMap<String, String>,
        body: &Value,
    ) -> Option<(u16, Value)> {
        let api = self.url.as_str();
        Some(match (method, rest) {
            ("GET", ["git", "ref", r @ ..]) => {
                let r = r.join("/");
                match s.refs.get(&r) {
                    Some(sha) => (200, shapes::git_ref(api, &r, sha)),
                    None => not_found(),
                }
            }
            ("POST", ["git", "refs"]) => {
                let (Some(r), Some(sha)) = (body["ref"].as_str(), body["sha"].as_str()) else {
                    return Some(unprocessable(
                        "Invalid request.\n\n\"ref\", \"sha\" weren't supplied.",
                    ));
                };
                let Some(r) = r.strip_prefix("refs/") else {
                    return Some(unprocessable("Reference name must start with 'refs/'"));
                };
                if !s.commits.contains_key(sha) {
                    return Some(unprocessable("Object does not exist"));
                }
                if s.refs.contains_key(r) {
                    return Some(unprocessable("Reference already exists"));
                }
                s.refs.insert(r.to_string(), sha.to_string());
                (201, shapes::git_ref(api, r, sha))
            }
            ("PATCH", ["git", "refs", r @ ..]) => {
                let r = r.join("/");
                let Some(sha) = body["sha"].as_str() else {
                    return Some(unprocessable(
                        "Invalid request.\n\n\"sha\" wasn't supplied.",
                    ));
                };
                let Some(old) = s.refs.get(&r).cloned() else {
                    return Some(unprocessable("Reference does not exist"));
                };
                if !s.commits.contains_key(sha) {
                    return Some(unprocessable("Object does not exist"));
                }
                let force = body["force"].as_bool().unwrap_or(false);
                if !force && !ancestors(s, sha).contains(&old) {
                    return Some(unprocessable("Update is not a fast forward"));
                }
                s.refs.insert(r.clone(), sha.to_string());
                (200, shapes::git_ref(api, &r, sha))
            }
            ("GET", ["git", "commits", sha]) => match s.commits.get(*sha) {
                Some(c) => (200, shapes::git_commit(api, sha, c)),
                None => not_found(),
            },
            ("POST", ["git", "blobs"]) => {
                let content = body["content"].as_str().unwrap_or_default();
                let text = if body["encoding"] == "base64" {
                    match base64::engine::general_purpose::STANDARD.decode(content) {
                        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                        Err(_) => return Some(unprocessable("Invalid base64")),
                    }
                } else {
                    content.to_string()
                };
                let sha = hash(&["blob", &text]);
                (
                    201,
                    json!({"sha": sha, "url": format!("{api}/repos/{OWNER}/{NAME}/git/blobs/{sha}")}),
                )
            }
            ("POST", ["git", "trees"]) => self.create_tree(s, body),
            ("POST", ["git", "commits"]) => self.create_commit(s, body),
            ("GET", ["compare", basehead]) => self.compare(s, basehead),
            ("GET", ["contents", p @ ..]) => {
                let path = p.join("/");
                let at = q.get("ref").cloned().unwrap_or_else(|| "main".into());
                let Some(sha) = resolve(s, &at) else {
                    return Some(not_found());
                };
                match s.trees[&s.commits[&sha].tree].get(&path) {
                    Some(content) => (
                        200,
                        shapes::content_file(api, &path, content, &hash(&["blob", content]), &at),
                    ),
                    None => not_found(),
                }
            }
            _ => return None,
        })
    }

    fn create_tree(&self, s: &mut State, body: &Value) -> (u16, Value) {
        let api = self.url.as_str();
        let mut tree = match body["base_tree"].as_str() {
            Some(b) => match s.trees.get(b) {
                Some(t) => t.clone(),
                None => return unprocessable("base_tree is not a valid tree oid"),
            },
            None => BTreeMap::new(),
        };
        let Some(entries) = body["tree"].as_array() else {
            return unprocessable("Invalid request.\n\n\"tree\" wasn't supplied.");
        };
        for e in entries {
            let (Some(path), Some("100644"), Some("blob")) =
                (e["path"].as_str(), e["mode"].as_str(), e["type"].as_str())
            else {
                return unprocessable("Invalid tree entry");
            };
            let content = match (e["content"].as_str(), e["sha"].as_str()) {
                (Some(c), None) => c.to_string(),
                (None, Some(sha)) => format!("blob:{sha}"),
                _ => return unprocessable("tree entry needs exactly one of content, sha"),
            };
            tree.insert(path.to_string(), content);
        }
        let sha = tree_sha(&tree);
        let listed: Vec<Value> = tree
            .iter()
            .map(|(path, content)| {
                let blob = hash(&["blob", content]);
                json!({"path": path, "mode": "100644", "type": "blob", "sha": blob, "size": content.len(),
                    "url": format!("{api}/repos/{OWNER}/{NAME}/git/blobs/{blob}")})
            })
            .collect();
        s.trees.insert(sha.clone(), tree);
        (
            201,
            json!({"sha": sha, "url": format!("{api}/repos/{OWNER}/{NAME}/git/trees/{sha}"), "truncated": false, "tree": listed}),
        )
    }

    fn create_commit(&self, s: &mut State, body: &Value) -> (u16, Value) {
        let (Some(message), Some(tree)) = (body["message"].as_str(), body["tree"].as_str()) else {
            return unprocessable("Invalid request.\n\n\"message\", \"tree\" weren't supplied.");
        };
        if !s.trees.contains_key(tree) {
            return unprocessable("Tree SHA does not exist");
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
            return unprocessable("Parent SHA does not exist or is not a commit object");
        }
        s.counter += 1;
        let n = s.counter.to_string();
        let sha = hash(&["commit", tree, &parents.join(","), message, &n]);
        let c = Commit {
            tree: tree.into(),
            parents,
            message: message.into(),
        };
        let j = shapes::git_commit(&self.url, &sha, &c);
        s.commits.insert(sha, c);
        (201, j)
    }

    fn compare(&self, s: &State, basehead: &str) -> (u16, Value) {
        let api = self.url.as_str();
        let Some((b, h)) = basehead.split_once("...") else {
            return not_found();
        };
        let (Some(b), Some(h)) = (resolve(s, b), resolve(s, h)) else {
            return not_found();
        };
        let base_chain = ancestors(s, &b);
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
            .map(|c| shapes::commit(api, c, &s.commits[c]))
            .collect();
        let merge_base = merge_base.unwrap_or_else(|| b.clone());
        let web = format!("{}/{OWNER}/{NAME}/compare/{basehead}", shapes::WEB);
        (
            200,
            json!({
                "url": format!("{api}/repos/{OWNER}/{NAME}/compare/{basehead}"),
                "html_url": web, "permalink_url": web,
                "diff_url": format!("{web}.diff"), "patch_url": format!("{web}.patch"),
                "status": status, "ahead_by": commits.len(), "behind_by": behind,
                "total_commits": commits.len(),
                "base_commit": shapes::commit(api, &b, &s.commits[&b]),
                "merge_base_commit": shapes::commit(api, &merge_base, &s.commits[&merge_base]),
                "commits": list, "files": []
            }),
        )
    }

    /// Pull requests and their reviewers.
    fn pulls_route(
        &self,
        s: &mut State,
        method: &str,
        rest: &[&str],
        q: &HashMap<String, String>,
        body: &Value,
    ) -> Option<(u16, Value)> {
        let api = self.url.as_str();
        let find = |s: &State, n: &str| s.pulls.iter().position(|p| p.number.to_string() == n);
        Some(match (method, rest) {
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
                    .map(|p| shapes::pull(api, s, p))
                    .collect();
                (200, Value::Array(list))
            }
            ("POST", ["pulls"]) => {
                let (Some(title), Some(head), Some(base)) = (
                    body["title"].as_str(),
                    body["head"].as_str(),
                    body["base"].as_str(),
                ) else {
                    return Some(invalid("PullRequest", "missing_field", "head"));
                };
                let head = head.strip_prefix(&format!("{OWNER}:")).unwrap_or(head);
                if !s.refs.contains_key(&format!("heads/{head}")) {
                    return Some(invalid("PullRequest", "invalid", "head"));
                }
                if s.pulls
                    .iter()
                    .any(|p| p.state == "open" && p.head == head && p.base == base)
                {
                    return Some((
                        422,
                        shapes::invalid(
                            "Validation Failed",
                            json!([{"resource": "PullRequest", "code": "custom",
                                "message": format!("A pull request already exists for {OWNER}:{head}.")}]),
                        ),
                    ));
                }
                let number = next_number(s);
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
                let j = shapes::pull(api, s, &p);
                s.pulls.push(p);
                (201, j)
            }
            ("PATCH", ["pulls", n]) => {
                let Some(i) = find(s, n) else {
                    return Some(not_found());
                };
                if let Some(t) = body["title"].as_str() {
                    s.pulls[i].title = t.into();
                }
                if let Some(b) = body["body"].as_str() {
                    s.pulls[i].body = b.into();
                }
                if let Some(st) = body["state"].as_str() {
                    if st != "open" && st != "closed" {
                        return Some(invalid("PullRequest", "invalid", "state"));
                    }
                    s.pulls[i].state = st.into();
                }
                let p = s.pulls[i].clone();
                (200, shapes::pull(api, s, &p))
            }
            ("POST", ["pulls", n, "requested_reviewers"]) => {
                let Some(i) = find(s, n) else {
                    return Some(not_found());
                };
                let Some(r) = body["reviewers"].as_array() else {
                    return Some(unprocessable(
                        "Invalid request.\n\n\"reviewers\" wasn't supplied.",
                    ));
                };
                for x in r {
                    s.pulls[i]
                        .reviewers
                        .push(x.as_str().unwrap_or_default().into());
                }
                let p = s.pulls[i].clone();
                (201, shapes::pull(api, s, &p))
            }
            _ => return None,
        })
    }

    /// Issues (pull requests are issues too), their labels and comments, and
    /// repository_dispatch.
    fn issues_route(
        &self,
        s: &mut State,
        method: &str,
        rest: &[&str],
        q: &HashMap<String, String>,
        body: &Value,
    ) -> Option<(u16, Value)> {
        let api = self.url.as_str();
        Some(match (method, rest) {
            ("POST", ["dispatches"]) => {
                let Some(event) = body["event_type"].as_str().filter(|e| !e.is_empty()) else {
                    return Some(invalid("Repository", "missing_field", "event_type"));
                };
                let payload = body.get("client_payload").cloned().unwrap_or(json!({}));
                s.dispatches.push((event.to_string(), payload));
                (204, Value::Null)
            }
            ("POST", ["issues"]) => {
                let Some(title) = body["title"].as_str().filter(|t| !t.is_empty()) else {
                    return Some(invalid("Issue", "missing_field", "title"));
                };
                let labels = strings(&body["labels"]);
                let issue = Issue {
                    number: next_number(s),
                    state: "open".into(),
                    title: title.into(),
                    body: body["body"].as_str().unwrap_or_default().into(),
                    labels,
                    user: None,
                };
                let j = shapes::issue(api, s, &issue, false);
                s.issues.push(issue);
                (201, j)
            }
            ("GET", ["issues"]) => {
                let state = q.get("state").map(String::as_str).unwrap_or("open");
                let wanted: Vec<&str> = q
                    .get("labels")
                    .map(|l| l.split(',').filter(|x| !x.is_empty()).collect())
                    .unwrap_or_default();
                let mut all: Vec<(Issue, bool)> =
                    s.issues.iter().map(|i| (i.clone(), false)).collect();
                all.extend(s.pulls.iter().map(|p| (pull_as_issue(p), true)));
                all.sort_by_key(|(i, _)| std::cmp::Reverse(i.number));
                let list: Vec<Value> = all
                    .iter()
                    .filter(|(i, _)| state == "all" || i.state == state)
                    .filter(|(i, _)| wanted.iter().all(|w| i.labels.iter().any(|l| l == w)))
                    .filter(|(i, _)| {
                        q.get("creator").is_none_or(|c| {
                            let author = i.user.clone().unwrap_or_else(|| s.identity.login());
                            author.eq_ignore_ascii_case(c)
                        })
                    })
                    .map(|(i, pull)| shapes::issue(api, s, i, *pull))
                    .collect();
                (200, Value::Array(list))
            }
            ("GET", ["issues", n]) => match self.issue(s, n) {
                Some((i, pull)) => (200, shapes::issue(api, s, &i, pull)),
                None => not_found(),
            },
            ("PATCH", ["issues", n]) => {
                let Some((mut i, pull)) = self.issue(s, n) else {
                    return Some(not_found());
                };
                if let Some(t) = body["title"].as_str() {
                    i.title = t.into();
                }
                if let Some(b) = body["body"].as_str() {
                    i.body = b.into();
                }
                if let Some(st) = body["state"].as_str() {
                    i.state = st.into();
                }
                if body["labels"].is_array() {
                    i.labels = strings(&body["labels"]);
                }
                self.store_issue(s, &i, pull);
                (200, shapes::issue(api, s, &i, pull))
            }
            ("POST", ["issues", n, "labels"]) => {
                let Some((mut i, pull)) = self.issue(s, n) else {
                    return Some(not_found());
                };
                if !body["labels"].is_array() {
                    return Some(unprocessable(
                        "Invalid request.\n\n\"labels\" wasn't supplied.",
                    ));
                }
                for x in strings(&body["labels"]) {
                    if !i.labels.contains(&x) {
                        i.labels.push(x);
                    }
                }
                self.store_issue(s, &i, pull);
                let out: Vec<Value> = i.labels.iter().map(|l| shapes::label(api, l)).collect();
                (200, Value::Array(out))
            }
            _ => return None,
        })
    }

    /// Comments on issues and pull requests.
    fn comments_route(
        &self,
        s: &mut State,
        method: &str,
        rest: &[&str],
        body: &Value,
    ) -> Option<(u16, Value)> {
        let api = self.url.as_str();
        Some(match (method, rest) {
            ("GET", ["issues", n, "comments"]) => {
                let list: Vec<Value> = s
                    .comments
                    .iter()
                    .filter(|c| c.issue.to_string() == *n)
                    .map(|c| shapes::comment(api, c))
                    .collect();
                (200, Value::Array(list))
            }
            ("POST", ["issues", n, "comments"]) => {
                let Some(text) = body["body"].as_str() else {
                    return Some(unprocessable(
                        "Invalid request.\n\n\"body\" wasn't supplied.",
                    ));
                };
                let Ok(issue) = n.parse::<u64>() else {
                    return Some(not_found());
                };
                s.counter += 1;
                let c = Comment {
                    id: 1000 + s.counter,
                    issue,
                    body: text.into(),
                    user: s.identity.login(),
                };
                let j = shapes::comment(api, &c);
                s.comments.push(c);
                (201, j)
            }
            ("PATCH", ["issues", "comments", id]) => {
                let Some(text) = body["body"].as_str() else {
                    return Some(unprocessable(
                        "Invalid request.\n\n\"body\" wasn't supplied.",
                    ));
                };
                let Some(c) = s.comments.iter_mut().find(|c| c.id.to_string() == *id) else {
                    return Some(not_found());
                };
                c.body = text.into();
                let c = c.clone();
                (200, shapes::comment(api, &c))
            }
            _ => return None,
        })
    }

    /// Issue `n`, or pull request `n` as an issue (true).
    fn issue(&self, s: &State, n: &str) -> Option<(Issue, bool)> {
        if let Some(i) = s.issues.iter().find(|i| i.number.to_string() == n) {
            return Some((i.clone(), false));
        }
        let p = s.pulls.iter().find(|p| p.number.to_string() == n)?;
        Some((pull_as_issue(p), true))
    }

    fn store_issue(&self, s: &mut State, i: &Issue, pull: bool) {
        if pull {
            if let Some(p) = s.pulls.iter_mut().find(|p| p.number == i.number) {
                p.title = i.title.clone();
                p.body = i.body.clone();
                p.state = i.state.clone();
                p.labels = i.labels.clone();
            }
        } else if let Some(x) = s.issues.iter_mut().find(|x| x.number == i.number) {
            *x = i.clone();
        }
    }
}

/// An answer: status, extra headers, JSON body.
type Answer = (u16, Vec<(String, String)>, Value);

/// The answer a rate-limit or list fault gives instead of handling the request.
fn rate_limited(fault: FaultKind, method: &str) -> Option<Answer> {
    Some(match fault {
        FaultKind::RetryAfter(n) => (
            403,
            vec![("retry-after".to_string(), n.to_string())],
            json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
        ),
        FaultKind::RateLimitReset(n) => {
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
        FaultKind::HideList if method == "GET" => (200, vec![], json!([])),
        _ => return None,
    })
}

/// Headers every request must carry (GitHub's documented client requirements).
fn missing_headers(req: &Request) -> Option<(u16, Value)> {
    if req.headers.get("accept").map(String::as_str) != Some("application/vnd.github+json") {
        return Some((
            415,
            json!({"message": "Accept must be application/vnd.github+json"}),
        ));
    }
    if req.headers.get("x-github-api-version").map(String::as_str) != Some("2022-11-28") {
        return Some((
            400,
            json!({"message": "X-GitHub-Api-Version must be 2022-11-28"}),
        ));
    }
    if req.headers.get("user-agent").is_none_or(|u| u.is_empty()) {
        return Some((
            403,
            json!({"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"}),
        ));
    }
    if matches!(req.method.as_str(), "POST" | "PATCH")
        && !req
            .headers
            .get("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    {
        return Some((400, json!({"message": "Problems parsing JSON"})));
    }
    if req.body.get("__invalid_json").is_some() {
        return Some((400, json!({"message": "Problems parsing JSON"})));
    }
    None
}

fn not_found() -> (u16, Value) {
    (404, shapes::error("Not Found", 404))
}

fn unprocessable(message: &str) -> (u16, Value) {
    (422, shapes::invalid(message, json!([])))
}

fn invalid(resource: &str, code: &str, field: &str) -> (u16, Value) {
    (
        422,
        shapes::invalid(
            "Validation Failed",
            json!([{"resource": resource, "code": code, "field": field}]),
        ),
    )
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn pull_as_issue(p: &Pull) -> Issue {
    Issue {
        number: p.number,
        state: p.state.clone(),
        title: p.title.clone(),
        body: p.body.clone(),
        labels: p.labels.clone(),
        user: None,
    }
}

/// Applies `f` to every JSON object in `v`.
fn tamper_all(v: &mut Value, f: fn(&mut Value)) {
    match v {
        Value::Object(m) => {
            m.values_mut().for_each(|x| tamper_all(x, f));
            f(v);
        }
        Value::Array(a) => a.iter_mut().for_each(|x| tamper_all(x, f)),
        _ => {}
    }
}

/// Issues and pull requests share one sequence of numbers.
fn next_number(s: &State) -> u64 {
    let pulls = s.pulls.iter().map(|p| p.number);
    let issues = s.issues.iter().map(|i| i.number);
    pulls.chain(issues).max().unwrap_or(0) + 1
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect()
}

/// Percent-decoding of a query value (`+` is a space).
pub fn decode(s: &str) -> String {
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

/// An RS256 JWT from the App: signature valid for `key` (an RSA public key, PKCS#1 DER),
/// `iss` present, not expired, at most 10 minutes long.
fn verify_jwt(token: &str, key: &[u8]) -> bool {
    use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return false;
    }
    let (Ok(header), Ok(claims), Ok(sig)) = (
        b64.decode(parts[0]),
        b64.decode(parts[1]),
        b64.decode(parts[2]),
    ) else {
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
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .is_ok()
}
