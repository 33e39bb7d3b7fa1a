//! The github forge against the in-process fake GitHub API (`fake_github.rs`), after two real
//! `mlops run`s (train, evaluate, compare, package to the local registry, sign): promote opens
//! one PR and updates it in place, survives concurrency, 422s, people's commits, rate limits
//! and dropped connections; `compare --comment` keeps one sticky comment; an App can sign in.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::common::{copy_dir, mlops, signed_churn_project, signed_run, stderr, stdout};
use crate::fake_github::{Fake, FaultKind, NAME, OWNER};

const PASSWORD: &str = "github-test-signing-password";
const TOKEN: &str = "ghs_SENTINELtoken0123456789abcdefABCDEF";
const BRANCH: &str = "mlops/promote/churn/staging";

/// A project with two signed, packaged runs the gate said to promote: (dir, [run ids]).
/// Built once for all tests of this module; each test works on a copy.
fn prepared() -> &'static (PathBuf, Vec<String>) {
    static PREPARED: OnceLock<(PathBuf, Vec<String>)> = OnceLock::new();
    PREPARED.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("mlops-github-")
            .tempdir()
            .unwrap()
            .keep();
        let forge = format!(
            "forge:\n  type: github\n  repository: {OWNER}/{NAME}\n  base: main\n  labels: [mlops, promotion]\n  reviewers: [octocat]"
        );
        signed_churn_project(
            &dir,
            "github-test",
            PASSWORD,
            &[("forge:\n  type: local\n  base: main", &forge)],
        );
        let mut ids = Vec::new();
        for _ in 0..2 {
            let run = signed_run(&dir, PASSWORD);
            assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
            ids.push(
                std::fs::read_to_string(dir.join(".mlops/runs/latest"))
                    .unwrap()
                    .trim()
                    .to_string(),
            );
        }
        assert_ne!(ids[0], ids[1]);
        (dir, ids)
    })
}

struct Project {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    runs: Vec<String>,
}

fn project() -> Project {
    let (template, runs) = prepared();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("churn");
    copy_dir(template, &dir);
    Project {
        _tmp: tmp,
        dir,
        runs: runs.clone(),
    }
}

fn gh(dir: &Path, fake: &Fake) -> Command {
    let mut cmd = mlops(dir);
    for var in [
        "GITHUB_REPOSITORY",
        "GITHUB_APP_ID",
        "GITHUB_APP_PRIVATE_KEY",
        "GITHUB_APP_INSTALLATION_ID",
        "GITHUB_EVENT_PATH",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_TOKEN", TOKEN)
        .env("MLOPS_GITHUB_BACKOFF_MS", "50")
        .env("MLOPS_SIGNING_PASSWORD", PASSWORD);
    cmd
}

fn promote(p: &Project, fake: &Fake, run: usize) -> Output {
    gh(&p.dir, fake)
        .args(["promote", "staging", "--run", &p.runs[run]])
        .output()
        .unwrap()
}

/// The fake's web address of pull request `n`.
fn pr_url(n: u64) -> String {
    format!("https://github.test/{OWNER}/{NAME}/pull/{n}")
}

fn count(fake: &Fake, method: &str, suffix: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.path == format!("/repos/{OWNER}/{NAME}{suffix}"))
        .count()
}

fn open_pulls(fake: &Fake) -> Vec<crate::fake_github::Pull> {
    fake.pulls()
        .into_iter()
        .filter(|p| p.state == "open")
        .collect()
}

/// The token never leaves the Authorization header.
fn assert_no_secret(fake: &Fake, outputs: &[&Output]) {
    for o in outputs {
        for text in [stdout(o), stderr(o)] {
            assert!(!text.contains(TOKEN) && !text.contains(PASSWORD), "{text}");
        }
    }
    for r in fake.requests() {
        let body = r.body.to_string();
        assert!(!body.contains(TOKEN) && !body.contains(PASSWORD), "{body}");
        assert!(!r.query.contains(TOKEN));
    }
    for p in fake.pulls() {
        assert!(!p.body.contains(TOKEN) && !p.body.contains(PASSWORD));
    }
}

#[test]
fn promote_twice_updates_one_pull_request_in_place() {
    let p = project();
    let fake = Fake::start(TOKEN);
    let first = promote(&p, &fake, 0);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(stdout(&first).trim(), pr_url(1));

    // Every request carries GitHub's required headers and our token.
    let requests = fake.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.headers["accept"], "application/vnd.github+json", "{r:?}");
        assert_eq!(r.headers["x-github-api-version"], "2022-11-28");
        assert_eq!(r.headers["authorization"], format!("Bearer {TOKEN}"));
        assert!(r.headers["user-agent"].starts_with("mlops/"));
        // Only the look-up of the not-yet-existing branch may miss.
        let expected_miss =
            r.status == 404 && r.path.ends_with(&format!("/git/ref/heads/{BRANCH}"));
        assert!(
            r.status < 300 || expected_miss,
            "{} {} answered {}",
            r.method,
            r.path,
            r.status
        );
    }
    // The shapes of the writes.
    let post = |suffix: &str| {
        requests
            .iter()
            .find(|r| r.method == "POST" && r.path == format!("/repos/{OWNER}/{NAME}{suffix}"))
            .unwrap_or_else(|| panic!("no POST {suffix}"))
            .body
            .clone()
    };
    let tree = post("/git/trees");
    assert!(tree["base_tree"].is_string());
    let entry = &tree["tree"][0];
    assert_eq!(entry["path"], ".mlops/environments/staging.yaml");
    assert_eq!(entry["mode"], "100644");
    assert_eq!(entry["type"], "blob");
    let commit = post("/git/commits");
    assert_eq!(commit["parents"].as_array().unwrap().len(), 1);
    assert!(commit["message"]
        .as_str()
        .unwrap()
        .contains("Mlops-Promotion: churn/staging"));
    let r = post("/git/refs");
    assert_eq!(r["ref"], format!("refs/heads/{BRANCH}"));
    let pr = post("/pulls");
    assert_eq!(pr["head"], BRANCH);
    assert_eq!(pr["base"], "main");
    assert!(pr["title"].as_str().unwrap().contains(&p.runs[0]));
    assert!(pr["body"].as_str().unwrap().contains("Pins `"));
    assert_eq!(
        post("/issues/1/labels")["labels"],
        serde_json::json!(["mlops", "promotion"])
    );
    assert_eq!(
        post("/pulls/1/requested_reviewers")["reviewers"],
        serde_json::json!(["octocat"])
    );
    let pinned = fake
        .file(BRANCH, ".mlops/environments/staging.yaml")
        .unwrap();
    assert!(pinned.contains(&p.runs[0]), "{pinned}");

    // The same run again: no commit, no new PR, nothing written.
    let commits_before = count(&fake, "POST", "/git/commits");
    let tip = fake.tip(BRANCH).unwrap();
    let again = promote(&p, &fake, 0);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(count(&fake, "POST", "/git/commits"), commits_before);
    assert_eq!(fake.tip(BRANCH).unwrap(), tip);
    assert_eq!(count(&fake, "POST", "/pulls"), 1);
    assert_eq!(count(&fake, "PATCH", "/pulls/1"), 0);

    // A newer run: a new commit replaces ours on the branch, the same PR is updated.
    let second = promote(&p, &fake, 1);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(stdout(&second).trim(), stdout(&first).trim());
    assert_eq!(count(&fake, "POST", "/pulls"), 1);
    let moved: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with(&format!("/git/refs/heads/{BRANCH}")))
        .collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].body["force"], true);
    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 1);
    assert!(pulls[0].title.contains(&p.runs[1]), "{}", pulls[0].title);
    assert!(fake
        .file(BRANCH, ".mlops/environments/staging.yaml")
        .unwrap()
        .contains(&p.runs[1]));
    // One commit on top of main, ours.
    let tip = fake.commit(&fake.tip(BRANCH).unwrap());
    assert_eq!(tip.parents, vec![fake.tip("main").unwrap()]);
    assert_no_secret(&fake, &[&first, &again, &second]);
}

#[test]
fn concurrent_promotes_open_one_pull_request() {
    let p = project();
    let fake = Fake::start(TOKEN);
    // Both look for an open PR at the same moment and see none.
    fake.fault("GET", "/pulls", FaultKind::Gather(2), 2);
    let spawn = |run: usize| {
        gh(&p.dir, &fake)
            .args(["promote", "staging", "--run", &p.runs[run]])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(0), spawn(1));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    assert_eq!(fake.pulls().len(), 1, "{:?}", fake.pulls());
    assert_eq!(stdout(&a).trim(), stdout(&b).trim());
    // They did race: both tried to create it, GitHub refused the second, which adopted it.
    let creates: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/pulls"))
        .map(|r| r.status)
        .collect();
    assert_eq!(creates, vec![201, 422]);
    // The branch holds one of the two, as one commit on main.
    let tip = fake.commit(&fake.tip(BRANCH).unwrap());
    assert_eq!(tip.parents, vec![fake.tip("main").unwrap()]);
    assert_no_secret(&fake, &[&a, &b]);
}

#[test]
fn an_existing_pull_request_is_adopted_on_422() {
    let p = project();
    let fake = Fake::start(TOKEN);
    assert_eq!(promote(&p, &fake, 0).status.code(), Some(0));
    // GitHub's list has not caught up: the PR is invisible once, so the create gets a 422.
    fake.fault("GET", "/pulls", FaultKind::HideList, 1);
    let out = promote(&p, &fake, 1);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let creates: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/pulls"))
        .map(|r| r.status)
        .collect();
    assert_eq!(creates, vec![201, 422]);
    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 1);
    assert!(pulls[0].title.contains(&p.runs[1]));
    assert_eq!(stdout(&out).trim(), pr_url(1));
}

#[test]
fn a_commit_someone_added_is_never_overwritten() {
    let p = project();
    let fake = Fake::start(TOKEN);
    assert_eq!(promote(&p, &fake, 0).status.code(), Some(0));
    let human = fake.human_commit(BRANCH, "NOTES.md", "checked the drift report\n");
    let out = promote(&p, &fake, 1);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fake.tip(BRANCH).unwrap(),
        human,
        "the person's commit stays"
    );
    assert!(
        stderr(&out).contains("mlops did not make")
            && stderr(&out).contains(&format!("{BRANCH}-2")),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("left #1"), "{}", stderr(&out));
    let fresh = fake
        .file(&format!("{BRANCH}-2"), ".mlops/environments/staging.yaml")
        .unwrap();
    assert!(fresh.contains(&p.runs[1]));
    let open = open_pulls(&fake);
    assert_eq!(
        open.len(),
        2,
        "the person's PR stays open beside the fresh one"
    );
    assert_eq!(open[1].head, format!("{BRANCH}-2"));
    assert_eq!(stdout(&out).trim(), pr_url(2));
    // No request ever forced the person's branch.
    assert!(!fake
        .requests()
        .iter()
        .any(|r| r.method == "PATCH" && r.path.ends_with(&format!("/git/refs/heads/{BRANCH}"))));
}

#[test]
fn stale_duplicate_pull_requests_are_closed() {
    let p = project();
    let fake = Fake::start(TOKEN);
    assert_eq!(promote(&p, &fake, 0).status.code(), Some(0));
    // An older mlops branch `-2` (all commits ours) with its own open PR.
    {
        let mut s = fake.state.lock().unwrap();
        let tip = s.refs[&format!("heads/{BRANCH}")].clone();
        s.refs.insert(format!("heads/{BRANCH}-2"), tip);
    }
    let dup = fake.add_pull(&format!("{BRANCH}-2"), "main", "Promote churn (old)");
    let out = promote(&p, &fake, 1);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pulls = fake.pulls();
    let dup = pulls.iter().find(|x| x.number == dup).unwrap();
    assert_eq!(dup.state, "closed");
    assert_eq!(open_pulls(&fake).len(), 1);
    assert!(fake
        .comments()
        .iter()
        .any(|c| c.issue == dup.number && c.body.contains("Superseded by #1")));
    assert!(
        stderr(&out).contains(&format!("closed #{}", dup.number)),
        "{}",
        stderr(&out)
    );
}

#[test]
fn retry_after_is_waited_out() {
    let p = project();
    let fake = Fake::start(TOKEN);
    fake.fault("POST", "/pulls", FaultKind::RetryAfter(2), 1);
    let out = promote(&p, &fake, 0);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let creates: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/pulls"))
        .collect();
    assert_eq!(creates.len(), 2);
    assert_eq!(creates[0].status, 403);
    let waited = creates[1].at.duration_since(creates[0].at);
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}");
    assert_eq!(fake.pulls().len(), 1);
    assert!(stderr(&out).contains("rate limit"), "{}", stderr(&out));
}

#[test]
fn rate_limit_reset_is_honoured() {
    let p = project();
    let fake = Fake::start(TOKEN);
    fake.fault(
        "GET",
        "/git/ref/heads/main",
        FaultKind::RateLimitReset(2),
        1,
    );
    let out = promote(&p, &fake, 0);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reads: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/git/ref/heads/main"))
        .collect();
    assert_eq!(reads[0].status, 403);
    // The retry came after the announced reset second had begun.
    let reset = reads[0]
        .wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    let retried = reads[1]
        .wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(retried >= reset, "retried at {retried}, reset at {reset}");
    assert_eq!(fake.pulls().len(), 1);
}

#[test]
fn an_unanswered_pull_request_create_is_not_repeated_blindly() {
    let p = project();
    let fake = Fake::start(TOKEN);
    // GitHub applies the create, then the connection drops before the answer.
    fake.fault("POST", "/pulls", FaultKind::DropAfter, 1);
    let out = promote(&p, &fake, 0);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&fake, "POST", "/pulls"), 1, "re-read, not re-posted");
    assert_eq!(fake.pulls().len(), 1);
    assert_eq!(stdout(&out).trim(), pr_url(1));
}

#[test]
fn a_connection_dropped_after_the_branch_push_is_repaired_by_the_next_run() {
    let p = project();
    let fake = Fake::start(TOKEN);
    // The branch lands, then every pull request call dies.
    fake.fault("POST", "/pulls", FaultKind::DropBefore, 100);
    fake.fault("GET", "/pulls", FaultKind::DropBefore, 100);
    let broken = promote(&p, &fake, 0);
    assert_eq!(broken.status.code(), Some(2), "{}", stderr(&broken));
    assert!(stderr(&broken).contains("GitHub"), "{}", stderr(&broken));
    let tip = fake.tip(BRANCH).expect("the branch was pushed");
    assert!(fake.pulls().is_empty());
    fake.clear_faults();
    let commits = count(&fake, "POST", "/git/commits");
    let out = promote(&p, &fake, 0);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        count(&fake, "POST", "/git/commits"),
        commits,
        "no second commit"
    );
    assert_eq!(fake.tip(BRANCH).unwrap(), tip);
    assert_eq!(fake.pulls().len(), 1);
    assert_no_secret(&fake, &[&broken, &out]);
}

#[test]
fn a_rejected_token_is_a_clear_error() {
    let p = project();
    let fake = Fake::start("another-token");
    let out = promote(&p, &fake, 0);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("401") && stderr(&out).contains("GITHUB_TOKEN"),
        "{}",
        stderr(&out)
    );
    assert_no_secret(&fake, &[&out]);
    // No token at all: said before any request.
    let out = gh(&p.dir, &fake)
        .env_remove("GITHUB_TOKEN")
        .args(["promote", "staging", "--run", &p.runs[0]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("GITHUB_TOKEN"), "{}", stderr(&out));
}

/// A fresh App private key (PEM), whose public half the fake verifies JWTs with.
fn app_key(p: &Project, fake: &Fake) -> String {
    let key = p.dir.join("app.pem");
    let gen = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .output()
        .unwrap();
    assert!(gen.status.success(), "{}", stderr(&gen));
    let pem = std::fs::read_to_string(&key).unwrap();
    fake.state.lock().unwrap().app_key = Some(crate::fake_github::public_key_der(&pem));
    pem
}

#[test]
fn a_github_app_signs_in_with_its_private_key() {
    let p = project();
    let fake = Fake::start(TOKEN);
    let pem = app_key(&p, &fake);
    let out = gh(&p.dir, &fake)
        .env_remove("GITHUB_TOKEN")
        .env("GITHUB_APP_ID", "7")
        .env("GITHUB_APP_PRIVATE_KEY", &pem)
        .args(["promote", "staging", "--run", &p.runs[0]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = fake.requests();
    assert_eq!(r[0].path, format!("/repos/{OWNER}/{NAME}/installation"));
    assert_eq!(r[1].path, "/app/installations/42/access_tokens");
    assert_eq!(r[1].body["repositories"], serde_json::json!([NAME]));
    assert!(r[2..]
        .iter()
        .all(|x| x.headers["authorization"] == format!("Bearer {TOKEN}")));
    assert_eq!(fake.pulls().len(), 1);
    assert!(!stderr(&out).contains("PRIVATE KEY"));
}

/// `mlops compare --comment` on pull request 5 with a challenger of this f1, as `gh` with
/// `env` set: the command to run.
fn compare_on_pr(p: &Project, fake: &Fake, f1: f64, env: &[(&str, &str)]) -> Output {
    let write = |name: &str, f1: f64| {
        let path = p.dir.join(name);
        std::fs::write(&path, format!("{{\"f1\": {f1}, \"roc_auc\": 0.95}}")).unwrap();
        path
    };
    let champion = write("champion.json", 0.82);
    let challenger = write("challenger.json", f1);
    let event = p.dir.join("event.json");
    std::fs::write(
        &event,
        r#"{"action": "synchronize", "number": 5, "pull_request": {"number": 5}}"#,
    )
    .unwrap();
    let mut cmd = gh(&p.dir, fake);
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    cmd.env("GITHUB_EVENT_PATH", &event)
        .arg("compare")
        .arg("--challenger")
        .arg(&challenger)
        .arg("--champion")
        .arg(&champion)
        .arg("--comment")
        .output()
        .unwrap()
}

#[test]
fn compare_keeps_one_sticky_comment_per_pull_request() {
    let p = project();
    let fake = Fake::start(TOKEN);
    fake.add_comment(
        5,
        "<!-- mlops:compare churn --> is how mlops marks its comment",
        "someone",
    );
    let compare = |f1: f64| compare_on_pr(&p, &fake, f1, &[]);
    let first = compare(0.90);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let second = compare(0.70);
    assert_eq!(
        second.status.code(),
        Some(1),
        "the gate still says no: {}",
        stderr(&second)
    );
    let ours: Vec<_> = fake
        .comments()
        .into_iter()
        .filter(|c| c.issue == 5 && c.user == "github-actions[bot]")
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(ours[0].body.starts_with("<!-- mlops:compare churn -->\n"));
    assert!(ours[0].body.contains("0.7"), "{}", ours[0].body);
    assert_eq!(count(&fake, "POST", "/issues/5/comments"), 1);
    assert_eq!(
        count(&fake, "PATCH", &format!("/issues/comments/{}", ours[0].id)),
        1
    );
    // Someone else's comment that merely mentions the marker is left alone.
    assert!(fake
        .comments()
        .iter()
        .any(|c| c.user == "someone" && c.body.starts_with("<!-- mlops")));
    assert_no_secret(&fake, &[&first, &second]);
}

/// The marker comment someone else wrote (it starts exactly like ours) is never edited: a
/// person's token (`GET /user`), the workflow's token (an installation token: GraphQL's
/// `viewer`) and a GitHub App (`GET /app`: `<slug>[bot]`) each edit only their own comment.
#[test]
fn the_sticky_comment_is_edited_only_when_the_token_wrote_it() {
    use crate::fake_github::Identity;
    const FORGED: &str = "<!-- mlops:compare churn -->\nverdict: promote (forged)";
    let p = project();
    let pem = {
        let scratch = Fake::start(TOKEN);
        app_key(&p, &scratch)
    };
    let app_env = [
        ("GITHUB_TOKEN", ""),
        ("GITHUB_APP_ID", "7"),
        ("GITHUB_APP_PRIVATE_KEY", pem.as_str()),
    ];
    type Case<'a> = (&'a str, Identity, &'a str, &'a [(&'a str, &'a str)]);
    let cases: [Case; 3] = [
        ("token", Identity::User("mlops-bot".into()), "mallory", &[]),
        (
            "workflow token",
            Identity::Installation("github-actions".into()),
            "mallory",
            &[],
        ),
        (
            "app",
            Identity::Installation("mlops-app".into()),
            "github-actions[bot]",
            &app_env,
        ),
    ];
    for (case, identity, forger, env) in cases {
        let fake = Fake::start(TOKEN);
        let me = identity.login();
        {
            let public = crate::fake_github::public_key_der(&pem);
            let mut s = fake.state.lock().unwrap();
            s.app_key = Some(public);
            s.app_slug = "mlops-app".into();
            s.identity = identity;
        }
        fake.add_comment(5, FORGED, forger);
        let forged_id = fake.comments()[0].id;
        let first = compare_on_pr(&p, &fake, 0.90, env);
        assert_eq!(first.status.code(), Some(0), "{case}: {}", stderr(&first));
        let second = compare_on_pr(&p, &fake, 0.70, env);
        assert_eq!(second.status.code(), Some(1), "{case}: {}", stderr(&second));
        let comments = fake.comments();
        let forged = comments.iter().find(|c| c.id == forged_id).unwrap();
        assert_eq!(forged.body, FORGED, "{case}: {forger}'s comment was edited");
        assert_eq!(
            count(&fake, "PATCH", &format!("/issues/comments/{forged_id}")),
            0,
            "{case}"
        );
        let ours: Vec<_> = comments.iter().filter(|c| c.user == me).collect();
        assert_eq!(ours.len(), 1, "{case}: {comments:?}");
        assert!(ours[0].body.contains("0.7"), "{case}: {}", ours[0].body);
        assert_eq!(count(&fake, "POST", "/issues/5/comments"), 1, "{case}");
        assert_eq!(
            count(&fake, "PATCH", &format!("/issues/comments/{}", ours[0].id)),
            1,
            "{case}"
        );
        // How the client learnt who it is, per kind of credential.
        let asked = |method: &str, path: &str| {
            fake.requests()
                .iter()
                .filter(|r| r.method == method && r.path == path && r.status == 200)
                .count()
        };
        match case {
            "token" => assert_eq!(asked("GET", "/user"), 2, "{case}"),
            "workflow token" => assert_eq!(asked("POST", "/graphql"), 2, "{case}"),
            _ => assert_eq!(asked("GET", "/app"), 2, "{case}"),
        }
        assert_no_secret(&fake, &[&first, &second]);
    }
}
