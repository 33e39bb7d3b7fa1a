//! Registries as adversaries, with in-process fakes on loopback (`fake.rs`): a registry's
//! credentials reach that registry only (never another registry, its token service, an upload
//! location or a redirect elsewhere); token realms are checked; whatever a hostile registry
//! sends (an endless manifest or blob, a wrong size, a digest naming a path, a thousand and one
//! signatures, silence) ends in a clear error with exit 2; Ctrl-C during a stalled upload ends
//! `mlops package` with exit 130.

pub(crate) mod fake;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::common::{mlops, stderr, stdout};
use fake::{sha256, Fake, Image, Reply, Request};

const SECRET: &str = "s3cret-of-registry-A-71f9";

/// A tiny project packaging to `repository` on `base_image`, trained on this machine.
fn trained(repository: &str, base_image: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::write(root.join("data/train.csv"), "a,label\n1,0\n2,1\n").unwrap();
    std::fs::write(root.join("data/test.csv"), "a,label\n3,0\n4,1\n").unwrap();
    std::fs::write(
        root.join("mlops.yaml"),
        format!(
            r#"version: 1
model: tiny
data:
  train: {{path: data/train.csv}}
  test: {{path: data/test.csv}}
train:
  image: mlops-test/busybox
  command: [sh, -c, "echo model > $MLOPS_MODEL_DIR/model.txt"]
evaluate:
  command: [sh, -c, "echo '{{\"acc\": 1}}' > $MLOPS_OUTPUT_DIR/metrics.json"]
compare:
  metrics:
    acc: {{direction: maximize, threshold: 0.5}}
package:
  repository: {repository}
  base_image: {base_image}
  model_path: /model
"#
        ),
    )
    .unwrap();
    let out = mlops(root)
        .args(["train", "--runner", "process"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    dir
}

/// `mlops` with no registry settings from the machine: an empty Docker config (`mlops()`
/// already leaves out every MLOPS_ and DOCKER_ variable).
fn isolated(dir: &Path) -> Command {
    let mut cmd = mlops(dir);
    let home = dir.join(".test-home");
    std::fs::create_dir_all(&home).unwrap();
    cmd.env("HOME", &home)
        .env("DOCKER_CONFIG", &home)
        .env("MLOPS_REGISTRY_BACKOFF_MS", "1");
    cmd
}

fn package(dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = isolated(dir);
    cmd.args(["package", "--format", "json"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// Requests that carry A's secret in any header, in clear or base64.
fn carrying_secret(requests: &[Request]) -> Vec<String> {
    let encoded = basic("ci", SECRET);
    let encoded = encoded.trim_start_matches("Basic ");
    requests
        .iter()
        .filter(|r| {
            r.headers
                .iter()
                .any(|(_, v)| v.contains(SECRET) || v.contains(encoded))
        })
        .map(|r| format!("{} {}", r.method, r.target))
        .collect()
}

/// Registry A wants Basic credentials and sends uploads to a blob store on another port (and
/// redirects blob checks there); registry B holds the base image behind a Bearer token from a
/// realm on a third port. Only A may ever see A's secret.
#[test]
fn credentials_reach_only_their_registry() {
    let storage = Fake::start(|req| match (req.method.as_str(), req.path()) {
        ("PUT", p) if p.starts_with("/upload/") => Reply::status(201),
        _ => Reply::status(404),
    });
    let realm = Fake::start(|req| match req.path() {
        "/token" => Reply::json(&json!({"token": "token-for-B"})),
        _ => Reply::status(404),
    });
    let image = Image::new(|_| {});
    let challenge = format!(
        r#"Bearer realm="http://127.0.0.1:{}/token",service="registry-b""#,
        realm.port
    );
    let b = Fake::start(move |req| {
        if req.header("authorization") != Some("Bearer token-for-B") {
            return Reply::status(401).header("www-authenticate", &challenge);
        }
        image.serve(req).unwrap_or(Reply::status(404))
    });
    let store = storage.host();
    let credentials = basic("ci", SECRET);
    let a = Fake::start(move |req| {
        if req.header("authorization") != Some(credentials.as_str()) {
            return Reply::status(401).header("www-authenticate", r#"Basic realm="A""#);
        }
        let path = req.path();
        match req.method.as_str() {
            "HEAD" if path.contains("/blobs/") => {
                let digest = path.rsplit('/').next().unwrap_or("");
                Reply::status(307).header("location", &format!("http://{store}/check/{digest}"))
            }
            "POST" if path == "/v2/acme/tiny/blobs/uploads/" => {
                Reply::status(202).header("location", &format!("http://{store}/upload/1"))
            }
            "HEAD" => Reply::status(404),
            "PUT" if path.starts_with("/v2/acme/tiny/manifests/") => Reply::status(201),
            _ => Reply::status(404),
        }
    });
    let dir = trained(
        &format!("{}/acme/tiny", a.host()),
        &format!("{}/acme/base:1", b.host()),
    );
    // MLOPS_REGISTRY is left out: package.repository's host (A) is the default.
    let out = package(
        dir.path(),
        &[
            ("MLOPS_REGISTRY_USER", "ci"),
            ("MLOPS_REGISTRY_PASSWORD", SECRET),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let packaged: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        packaged["reference"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/acme/tiny@sha256:", a.host())),
        "{}",
        stdout(&out)
    );

    assert_eq!(
        carrying_secret(&b.requests()),
        Vec::<String>::new(),
        "registry B saw A's secret"
    );
    assert_eq!(
        carrying_secret(&realm.requests()),
        Vec::<String>::new(),
        "B's token service saw A's secret"
    );
    assert_eq!(
        carrying_secret(&storage.requests()),
        Vec::<String>::new(),
        "the blob store saw A's secret"
    );
    // The paths under test were taken: B's token fetched anonymously, uploads and redirected
    // checks at the store without any Authorization, A authenticated.
    let tokens: Vec<Request> = realm.requests();
    assert!(!tokens.is_empty() && tokens.iter().all(|r| r.header("authorization").is_none()));
    assert!(b
        .requests()
        .iter()
        .any(|r| r.header("authorization") == Some("Bearer token-for-B")));
    let at_store = storage.requests();
    let puts: Vec<&Request> = at_store.iter().filter(|r| r.method == "PUT").collect();
    let checks: Vec<&Request> = at_store.iter().filter(|r| r.method == "HEAD").collect();
    assert!(puts.len() >= 3, "base layer, model layer, config: {puts:?}");
    assert!(!checks.is_empty(), "{at_store:?}");
    for r in puts.iter().chain(&checks) {
        assert_eq!(r.header("authorization"), None, "{} {}", r.method, r.target);
    }
    assert!(a
        .requests()
        .iter()
        .any(|r| r.header("authorization") == Some(basic("ci", SECRET).as_str())));
}

/// A token realm on a host unrelated to the registry (`localhost` for `127.0.0.1`) gets no
/// request at all, unless MLOPS_REGISTRY_TOKEN_HOSTS lists it.
#[test]
fn a_token_realm_elsewhere_is_refused_unless_listed() {
    let realm = Fake::start(|req| match req.path() {
        "/token" => Reply::json(&json!({"token": "t"})),
        _ => Reply::status(404),
    });
    let image = Image::new(|_| {});
    let challenge = format!(r#"Bearer realm="http://localhost:{}/token""#, realm.port);
    let b = Fake::start(move |req| {
        if req.header("authorization") != Some("Bearer t") {
            return Reply::status(401).header("www-authenticate", &challenge);
        }
        image.serve(req).unwrap_or(Reply::status(404))
    });
    let dir = trained("oci:layout", &format!("{}/acme/base:1", b.host()));
    let out = package(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("localhost:{}", realm.port))
            && err.contains("unrelated")
            && err.contains("MLOPS_REGISTRY_TOKEN_HOSTS"),
        "{err}"
    );
    assert!(realm.requests().is_empty(), "{:?}", realm.requests());

    let listed = format!("ghcr.io, localhost:{}", realm.port);
    let out = package(dir.path(), &[("MLOPS_REGISTRY_TOKEN_HOSTS", &listed)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!realm.requests().is_empty());
}

/// Packages to an OCI layout from a base registry answering with `handler`; expects exit 2
/// with `expected` in the message, within `seconds`.
fn refused(
    handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    expected: &str,
    seconds: u64,
    env: &[(&str, &str)],
) -> Fake {
    let base = Fake::start(handler);
    let dir = trained("oci:layout", &format!("{}/acme/base:1", base.host()));
    let started = Instant::now();
    let out = package(dir.path(), env);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(expected), "expected {expected:?} in: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(seconds),
        "took {:?}",
        started.elapsed()
    );
    // Nothing half-read is left in the layout.
    let leftovers: Vec<_> = walk(&dir.path().join("layout/blobs"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    base
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn a_manifest_larger_than_4_mib_is_refused() {
    // Announced by Content-Length, and endless without one.
    refused(
        |_| Reply::body(fake::OCI_MANIFEST, vec![b' '; 5 << 20]),
        "more than 4 MiB: refusing it",
        30,
        &[],
    );
    refused(|_| Reply::Endless, "more than 4 MiB: refusing it", 30, &[]);
}

#[test]
fn a_blob_is_exactly_its_descriptors_size_and_digest() {
    let image = || Image::new(|_| {});
    let layer = image().layer_digest();
    let is_layer = move |req: &Request| req.path().ends_with(&layer);
    let (l1, l2, l3, l4) = (
        is_layer.clone(),
        is_layer.clone(),
        is_layer.clone(),
        is_layer,
    );
    let (i1, i2, i3, i4) = (image(), image(), image(), image());
    // Endless: reading stops past the descriptor's 16 bytes.
    refused(
        move |r| {
            if l1(r) {
                Reply::Endless
            } else {
                i1.serve(r).unwrap_or(Reply::status(404))
            }
        },
        "sent more than the 16 bytes its descriptor gives",
        30,
        &[],
    );
    // Announced shorter than the descriptor says.
    refused(
        move |r| {
            if l2(r) {
                Reply::body("application/octet-stream", b"0123456789".to_vec())
            } else {
                i2.serve(r).unwrap_or(Reply::status(404))
            }
        },
        "as 10 bytes, but its descriptor says 16",
        30,
        &[],
    );
    // Ends short without announcing a length.
    refused(
        move |r| {
            if l3(r) {
                Reply::Chunked {
                    sent: b"0123456789".to_vec(),
                }
            } else {
                i3.serve(r).unwrap_or(Reply::status(404))
            }
        },
        "after 10 of its 16 bytes",
        30,
        &[],
    );
    // The right size, other bytes.
    refused(
        move |r| {
            if l4(r) {
                Reply::body("application/octet-stream", b"BASE LAYER BYTES".to_vec())
            } else {
                i4.serve(r).unwrap_or(Reply::status(404))
            }
        },
        &format!(
            "returned blob acme/base@{} with digest sha256:",
            image().layer_digest()
        ),
        30,
        &[],
    );
}

#[test]
fn a_silent_registry_times_out() {
    let image = Image::new(|_| {});
    let layer = image.layer_digest();
    refused(
        move |r| {
            if r.path().ends_with(&layer) {
                Reply::Stall {
                    declared: Some(16),
                    sent: b"base".to_vec(),
                }
            } else {
                image.serve(r).unwrap_or(Reply::status(404))
            }
        },
        "no data for 1 s",
        20,
        &[("MLOPS_REGISTRY_TIMEOUT_SECS", "1")],
    );
}

#[test]
fn digests_from_a_manifest_name_no_path() {
    let image = Image::new(|m| m["layers"][0]["digest"] = json!("sha256:../../x"));
    let base = refused(
        move |r| image.serve(r).unwrap_or(Reply::status(404)),
        "\"sha256:../../x\" is not a digest",
        30,
        &[],
    );
    for r in base.requests() {
        assert!(
            r.path().starts_with("/v2/acme/base/") && !r.path().contains("/x"),
            "{} {}",
            r.method,
            r.target
        );
    }
    // A config that would not fit in memory is not read.
    let image = Image::new(|m| m["config"]["size"] = json!(17u64 << 20));
    let base = refused(
        move |r| image.serve(r).unwrap_or(Reply::status(404)),
        "refusing to read more than 16 MiB into memory",
        30,
        &[],
    );
    assert!(base
        .requests()
        .iter()
        .all(|r| !r.path().contains("/blobs/")));
}

/// `mlops verify` against a registry whose `.sig` manifest is hostile.
fn verify_against(signature_manifest: Value) -> Output {
    let body = serde_json::to_vec(&signature_manifest).unwrap();
    let reg = Fake::start(move |r| {
        if r.path().ends_with(".sig") {
            Reply::body(fake::OCI_MANIFEST, body.clone())
        } else {
            Reply::status(404)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let keys = isolated(dir.path())
        .args(["sign", "--generate-key", "k"])
        .env("MLOPS_SIGNING_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(keys.status.success(), "{}", stderr(&keys));
    let image = format!("{}/acme/base@sha256:{}", reg.host(), "a".repeat(64));
    isolated(dir.path())
        .args(["verify", &image, "--key", "k.pub"])
        .output()
        .unwrap()
}

#[test]
fn signature_manifests_are_bounded() {
    let layer = |size: u64| json!({"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": sha256(b"p"), "size": size});
    let many: Vec<Value> = (0..1001).map(|_| layer(1)).collect();
    let out = verify_against(json!({"schemaVersion": 2, "layers": many}));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has 1001 layers, more than the 1000"),
        "{}",
        stderr(&out)
    );

    let out = verify_against(json!({"schemaVersion": 2, "layers": [layer(17 << 20)]}));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("more than the 16 MiB"),
        "{}",
        stderr(&out)
    );

    let bad = json!({"mediaType": "x", "digest": "sha256:../../../v2/x", "size": 1});
    let out = verify_against(json!({"schemaVersion": 2, "layers": [bad]}));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not a digest"), "{}", stderr(&out));
}

/// Ctrl-C while a registry holds an upload: no cleanup is pending, so the process ends at once
/// with exit 130.
#[test]
fn ctrl_c_during_a_stalled_upload_exits_130() {
    let image = Image::new(|_| {});
    let base = Fake::start(move |r| image.serve(r).unwrap_or(Reply::status(404)));
    let target = Fake::start(|req| match req.method.as_str() {
        "POST" => Reply::status(202).header("location", "/upload/1"),
        "PUT" if req.path().starts_with("/upload/") => Reply::Hang,
        _ => Reply::status(404),
    });
    let dir = trained(
        &format!("{}/acme/tiny", target.host()),
        &format!("{}/acme/base:1", base.host()),
    );
    let mut child = isolated(dir.path())
        .arg("package")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !target.requests().iter().any(|r| r.method == "PUT") {
        assert!(Instant::now() < deadline, "the upload never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "mlops package ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("mlops package still running 10 s after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{status:?}");
}

/// Docker's config.json entries go to the host:port of their key only, and
/// MLOPS_REGISTRY_USER/_PASSWORD to the registry MLOPS_REGISTRY names only.
#[test]
fn docker_config_entries_and_variables_go_to_their_registry_only() {
    let image = Image::new(|_| {});
    let b = Fake::start(move |req| image.serve(req).unwrap_or(Reply::status(404)));
    let credentials = basic("ci", SECRET);
    let a = Fake::start(move |req| {
        if req.header("authorization") != Some(credentials.as_str()) {
            return Reply::status(401).header("www-authenticate", r#"Basic realm="A""#);
        }
        match req.method.as_str() {
            "POST" => Reply::status(202).header("location", "/upload/1"),
            "PUT" => Reply::status(201),
            _ => Reply::status(404),
        }
    });
    let dir = trained(
        &format!("{}/acme/tiny", a.host()),
        &format!("{}/acme/base:1", b.host()),
    );
    let other = "other-secret-for-127.0.0.1-without-port";
    let config = json!({"auths": {
        format!("http://{}/v2/", a.host()): {"auth": basic("ci", SECRET).trim_start_matches("Basic ")},
        "127.0.0.1": {"username": "x", "password": other},
    }});
    let home = dir.path().join(".test-home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("config.json"), config.to_string()).unwrap();
    let variable = "variable-secret-for-another-registry";
    let out = package(
        dir.path(),
        &[
            ("MLOPS_REGISTRY", "registry.example:5000"),
            ("MLOPS_REGISTRY_USER", "env"),
            ("MLOPS_REGISTRY_PASSWORD", variable),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all: Vec<Request> = a.requests().into_iter().chain(b.requests()).collect();
    for r in &all {
        let text = format!("{:?}", r.headers);
        assert!(
            !text.contains(other) && !text.contains(variable),
            "{} {}: {text}",
            r.method,
            r.target
        );
    }
    assert_eq!(carrying_secret(&b.requests()), Vec::<String>::new());
    assert!(b
        .requests()
        .iter()
        .all(|r| r.header("authorization").is_none()));
}

/// The engine pulls the training image: it gets the credentials of exactly that registry.
#[test]
fn engine_pulls_carry_only_the_pulled_registrys_credentials() {
    let seen = |_: &Request| Reply::status(401).header("www-authenticate", r#"Basic realm="pull""#);
    let b = Fake::start(seen);
    let dir = trained("oci:layout", &format!("{}/acme/base:1", b.host()));
    let yaml = std::fs::read_to_string(dir.path().join("mlops.yaml"))
        .unwrap()
        .replace(
            "image: mlops-test/busybox",
            &format!("image: {}/acme/trainer:1", b.host()),
        );
    std::fs::write(dir.path().join("mlops.yaml"), yaml).unwrap();
    let train = |env: &[(&str, &str)]| {
        let mut cmd = isolated(dir.path());
        cmd.arg("train");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    // Credentials for another registry: the engine's pull from B carries none of them.
    let out = train(&[
        ("MLOPS_REGISTRY", "registry.example:5000"),
        ("MLOPS_REGISTRY_USER", "ci"),
        ("MLOPS_REGISTRY_PASSWORD", SECRET),
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !b.requests().is_empty(),
        "the engine never asked B: {}",
        stderr(&out)
    );
    assert_eq!(carrying_secret(&b.requests()), Vec::<String>::new());
    // B's own credentials: the engine presents them to B.
    let before = b.requests().len();
    let out = train(&[
        ("MLOPS_REGISTRY", &b.host()),
        ("MLOPS_REGISTRY_USER", "ci"),
        ("MLOPS_REGISTRY_PASSWORD", SECRET),
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    let later = b.requests()[before..].to_vec();
    assert!(!carrying_secret(&later).is_empty(), "{later:?}");
}
