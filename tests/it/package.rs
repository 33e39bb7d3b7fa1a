//! `mlops package` against the local registry (scripts/services): the churn model on the
//! serving base, pulled by digest and served; reproducible digests; no re-upload; retries
//! through a registry that fails; an OCI layout on disk.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

use crate::common::{copy_dir, fixture, mlops, stderr, stdout};

const DOCKER: &str = "/usr/bin/docker";

fn registry() -> String {
    std::env::var("MLOPS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

/// The churn fixture, trained once, packaging to `repository` on `base`.
fn trained_project(repository: &str, base_registry: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("churn"), dir.path());
    let yaml = std::fs::read_to_string(dir.path().join("mlops.yaml"))
        .unwrap()
        .replace(
            "repository: 127.0.0.1:5000/acme/churn",
            &format!("repository: {repository}"),
        )
        .replace(
            "base_image: 127.0.0.1:5000/acme/serve-sklearn:1",
            &format!("base_image: {base_registry}/acme/serve-sklearn:1"),
        );
    std::fs::write(dir.path().join("mlops.yaml"), yaml).unwrap();
    let out = mlops(dir.path()).arg("train").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    dir
}

fn package(dir: &Path) -> Value {
    let out = mlops(dir)
        .args(["package", "--format", "json"])
        .env("MLOPS_REGISTRY_BACKOFF_MS", "20")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

fn unique(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{name}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    )
}

struct Container(String);
impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new(DOCKER).args(["rm", "-f", &self.0]).output();
    }
}

fn http(port: u16, request: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn packages_pulls_and_serves_the_model_reproducibly() {
    let reg = registry();
    let repo = format!("{reg}/test/{}", unique("churn"));
    let dir = trained_project(&repo, &reg);
    // Stamps younger than 2 s are not trusted as a cache key (see src/oci/tree.rs).
    std::thread::sleep(Duration::from_millis(2100));
    let first = package(dir.path());
    assert_ne!(first["fingerprint"], "", "{first:#}");
    let reference = first["reference"].as_str().unwrap().to_string();
    let digest = first["digest"].as_str().unwrap();
    assert_eq!(reference, format!("{repo}@{digest}"));
    // Base layers were mounted from acme/serve-sklearn; only the model, config and manifest moved.
    let model_size = first["model_layer"]["size"].as_u64().unwrap();
    let uploaded = first["uploaded_bytes"].as_u64().unwrap();
    assert!(
        uploaded >= model_size && uploaded < model_size + 64 * 1024,
        "{first:#}"
    );
    let ann = &first["annotations"];
    assert_eq!(ann["dev.mlops.model"], "churn");
    assert!(ann["dev.mlops.data.train.digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(
        ann["dev.mlops.metrics.digest"].is_null(),
        "not evaluated yet"
    );
    let run_id = first["tag"].as_str().unwrap().to_string();
    assert!(dir
        .path()
        .join(format!(".mlops/runs/{run_id}/package.json"))
        .exists());

    // Same run again: same digest, nothing uploaded.
    let second = package(dir.path());
    assert_eq!(second["digest"], first["digest"]);
    assert_eq!(second["uploaded_bytes"], 0, "{second:#}");
    // Touched model files defeat the shortcut: rebuilt, same digest, still nothing uploaded.
    let model_file = dir
        .path()
        .join(format!(".mlops/runs/{run_id}/model/model.joblib"));
    let f = std::fs::File::options()
        .write(true)
        .open(&model_file)
        .unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    let third = package(dir.path());
    assert_ne!(third["fingerprint"], first["fingerprint"]);
    assert_eq!(third["digest"], first["digest"]);
    assert_eq!(third["uploaded_bytes"], 0, "{third:#}");
    // Touched long enough ago to be trusted again: the new stamps are the key now.
    std::thread::sleep(Duration::from_millis(2100));
    let fourth = package(dir.path());
    assert_ne!(fourth["fingerprint"], "", "{fourth:#}");
    assert_eq!(fourth["digest"], first["digest"]);
    assert_eq!(fourth["uploaded_bytes"], 0, "{fourth:#}");

    // The registry has it under the run id tag, as an OCI manifest.
    let pulled = Command::new(DOCKER)
        .args(["pull", &reference])
        .output()
        .unwrap();
    assert!(pulled.status.success(), "docker pull: {}", stderr(&pulled));
    let name = unique("serve");
    let started = Command::new(DOCKER)
        .args([
            "run",
            "-d",
            "--name",
            &name,
            "-p",
            "127.0.0.1::8080",
            &reference,
        ])
        .output()
        .unwrap();
    assert!(started.status.success(), "docker run: {}", stderr(&started));
    let _guard = Container(name.clone());
    let port_out = Command::new(DOCKER)
        .args(["port", &name, "8080/tcp"])
        .output()
        .unwrap();
    let port: u16 = stdout(&port_out)
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port: {}", stdout(&port_out)));
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        if let Some(r) = http(port, "GET /health HTTP/1.0\r\n\r\n") {
            if r.starts_with("HTTP/1.0 200") {
                break r;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the served model never became healthy"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(health.contains("\"status\": \"ok\""), "{health}");
    // One row of the test set, without its label.
    let test = std::fs::read_to_string(dir.path().join("data/test.csv")).unwrap();
    let mut lines = test.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut instance = serde_json::Map::new();
    for (h, v) in header.iter().zip(&row) {
        if *h != "label" {
            let value = v.parse::<f64>().map(Value::from).unwrap_or(Value::from(*v));
            instance.insert(h.to_string(), value);
        }
    }
    let body = serde_json::json!({"instances": [instance]}).to_string();
    let resp = http(
        port,
        &format!(
            "POST /predict HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .unwrap();
    assert!(resp.starts_with("HTTP/1.0 200"), "{resp}");
    assert!(resp.contains("\"predictions\": ["), "{resp}");
    let _ = Command::new(DOCKER).args(["rmi", &reference]).output();

    // The same image into an OCI layout on disk: the same manifest, so the same digest.
    let yaml = std::fs::read_to_string(dir.path().join("mlops.yaml"))
        .unwrap()
        .replace(
            &format!("repository: {repo}"),
            "repository: oci:build/image",
        );
    std::fs::write(dir.path().join("mlops.yaml"), yaml).unwrap();
    let layout = package(dir.path());
    assert_eq!(layout["digest"], first["digest"]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("build/image/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["manifests"][0]["digest"], first["digest"]);
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        run_id.as_str()
    );
    let hex = digest.trim_start_matches("sha256:");
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(format!("build/image/blobs/sha256/{hex}"))).unwrap(),
    )
    .unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let h = layer["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let blob = dir.path().join(format!("build/image/blobs/sha256/{h}"));
        assert_eq!(
            std::fs::metadata(&blob).unwrap().len(),
            layer["size"].as_u64().unwrap()
        );
    }
}

/// The layer cache keys on stamps, not on mtime alone: model bytes rewritten at the same size
/// with their mtime put back are packaged anew, under the digest of the new bytes, which go up.
#[test]
fn a_same_size_rewrite_with_the_old_mtime_is_never_the_stale_layer() {
    let reg = registry();
    let repo = format!("{reg}/test/{}", unique("rewrite"));
    let dir = trained_project(&repo, &reg);
    std::thread::sleep(Duration::from_millis(2100));
    let first = package(dir.path());
    let run_id = first["tag"].as_str().unwrap();
    let model_file = dir
        .path()
        .join(format!(".mlops/runs/{run_id}/model/model.joblib"));
    let meta = std::fs::metadata(&model_file).unwrap();
    let mut bytes = std::fs::read(&model_file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&model_file, &bytes).unwrap();
    let f = std::fs::File::options()
        .write(true)
        .open(&model_file)
        .unwrap();
    f.set_modified(meta.modified().unwrap()).unwrap();
    drop(f);
    let after = std::fs::metadata(&model_file).unwrap();
    assert_eq!(
        (after.len(), after.modified().unwrap()),
        (meta.len(), meta.modified().unwrap())
    );
    std::thread::sleep(Duration::from_millis(2100));
    let second = package(dir.path());
    assert_ne!(second["fingerprint"], "", "{second:#}");
    assert_ne!(second["fingerprint"], first["fingerprint"]);
    assert_ne!(
        second["model_layer"]["digest"],
        first["model_layer"]["digest"]
    );
    assert_ne!(second["digest"], first["digest"]);
    let size = second["model_layer"]["size"].as_u64().unwrap();
    assert!(
        second["uploaded_bytes"].as_u64().unwrap() >= size,
        "{second:#}"
    );
    // The registry holds the new bytes under the new digest: the layer read back is the file.
    let layer = second["model_layer"]["digest"].as_str().unwrap();
    let repository = repo.trim_start_matches(&format!("{reg}/"));
    let out = Command::new("curl")
        .args([
            "-fsS",
            &format!("http://{reg}/v2/{repository}/blobs/{layer}"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut archive = tar::Archive::new(&out.stdout[..]);
    let held = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find_map(|mut e| {
            (e.path().unwrap().to_str() == Some("model/model.joblib")).then(|| {
                let mut v = Vec::new();
                e.read_to_end(&mut v).unwrap();
                v
            })
        });
    assert!(held == Some(bytes), "the layer holds the rewritten bytes");
}

/// A proxy in front of the registry that answers 500 to the first two attempts of every
/// distinct request (method and path), then forwards.
fn flaky_proxy(upstream: String) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let upstream = upstream.clone();
            let seen = seen.clone();
            std::thread::spawn(move || {
                // Read the head and the body (Content-Length), then decide.
                let mut buf = Vec::new();
                let mut byte = [0u8; 1];
                while !buf.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    buf.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                if client.read_exact(&mut body).is_err() {
                    return;
                }
                let line = head.lines().next().unwrap_or("").to_string();
                let mut key = line.split('?').next().unwrap_or("").to_string();
                // Upload sessions get fresh ids: count them as one request per method.
                if let Some(i) = key.find("/blobs/uploads/") {
                    key.truncate(i + "/blobs/uploads/".len());
                }
                let attempts = {
                    let mut s = seen.lock().unwrap();
                    s.push(key.clone());
                    s.iter().filter(|k| **k == key).count()
                };
                if attempts <= 2 {
                    let _ = client.write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                }
                // Forward with Connection: close, relay the answer until EOF.
                let mut up = TcpStream::connect(&upstream).unwrap();
                let head = head
                    .lines()
                    .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                    .collect::<Vec<_>>()
                    .join("\r\n");
                let head = head.trim_end().to_string() + "\r\nConnection: close\r\n\r\n";
                up.write_all(head.as_bytes()).unwrap();
                up.write_all(&body).unwrap();
                let _ = std::io::copy(&mut up, &mut client);
            });
        }
    });
    (port, log)
}

#[test]
fn a_registry_failing_twice_per_request_still_gets_the_whole_image() {
    let (port, log) = flaky_proxy(registry());
    let proxy = format!("127.0.0.1:{port}");
    let repo = format!("{proxy}/test/{}", unique("flaky"));
    // Base and target behind the same flaky proxy, so base layers are mounted through it.
    let dir = trained_project(&repo, &proxy);
    let packaged = package(dir.path());
    let reference = packaged["reference"].as_str().unwrap();
    // The image is complete in the real registry: pull it from there by digest.
    let direct = reference.replace(&proxy, &registry());
    let out = Command::new(DOCKER)
        .args(["pull", &direct])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker pull {direct}: {}",
        stderr(&out)
    );
    let _ = Command::new(DOCKER).args(["rmi", &direct]).output();
    let log = log.lock().unwrap();
    assert!(
        log.iter().any(|l| l.starts_with("PUT /v2/test/")),
        "{log:?}"
    );
}

#[test]
fn package_without_a_trained_model_or_registry_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("churn"), dir.path());
    let out = mlops(dir.path()).arg("package").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("mlops train"), "{}", stderr(&out));
    // A registry nobody listens on: the error names it.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("churn"), dir.path());
    let yaml = std::fs::read_to_string(dir.path().join("mlops.yaml"))
        .unwrap()
        .replace(
            "127.0.0.1:5000/acme/serve-sklearn",
            "127.0.0.1:9/acme/serve-sklearn",
        );
    std::fs::write(dir.path().join("mlops.yaml"), yaml).unwrap();
    std::fs::create_dir_all(dir.path().join(".mlops/runs/r1/model")).unwrap();
    std::fs::write(dir.path().join(".mlops/runs/r1/model/model.joblib"), "x").unwrap();
    let out = mlops(dir.path())
        .args(["package", "--run", "r1"])
        .env("MLOPS_REGISTRY_BACKOFF_MS", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("registry 127.0.0.1:9") && err.contains("acme/serve-sklearn"),
        "{err}"
    );
}

fn keypair(dir: &Path, prefix: &str) {
    let out = mlops(dir)
        .args(["sign", "--generate-key", prefix])
        .env("MLOPS_SIGNING_PASSWORD", "correct horse")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn verify(dir: &Path, image: &str, key: &str, extra: &[&str]) -> (i32, String, String) {
    let out = mlops(dir)
        .args(["verify", image, "--key", key])
        .args(extra)
        .output()
        .unwrap();
    (out.status.code().unwrap(), stdout(&out), stderr(&out))
}

fn put_manifest(repo_ref: &str, tag: &str, bytes: &[u8]) {
    let (host, repo) = repo_ref.split_once('/').unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let reg = mlops::oci::registry::Registry::new(
            host,
            &mlops::oci::credentials::RegistrySettings::anonymous(),
        )
        .unwrap();
        reg.put_manifest(repo, tag, bytes, mlops::oci::registry::OCI_MANIFEST)
            .await
            .unwrap();
    });
}

fn get_manifest(repo_ref: &str, tag: &str) -> Value {
    let (host, repo) = repo_ref.split_once('/').unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let reg = mlops::oci::registry::Registry::new(
            host,
            &mlops::oci::credentials::RegistrySettings::anonymous(),
        )
        .unwrap();
        serde_json::from_slice(&reg.manifest(repo, tag).await.unwrap().bytes).unwrap()
    })
}

fn push_blob(repo_ref: &str, bytes: &[u8]) -> String {
    let (host, repo) = repo_ref.split_once('/').unwrap();
    let digest = mlops::oci::registry::sha256_digest(bytes);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let reg = mlops::oci::registry::Registry::new(
            host,
            &mlops::oci::credentials::RegistrySettings::anonymous(),
        )
        .unwrap();
        reg.push_bytes(repo, &digest, bytes).await.unwrap();
    });
    digest
}

#[test]
fn signs_attests_and_verifies_failing_closed() {
    let reg = registry();
    let repo = format!("{reg}/test/{}", unique("signed"));
    let dir = trained_project(&repo, &reg);
    let p = dir.path();
    keypair(p, "cosign");
    keypair(p, "other");
    let a = package(p);
    let image_a = a["reference"].as_str().unwrap().to_string();
    let digest_a = a["digest"].as_str().unwrap().to_string();

    let sign = || {
        mlops(p)
            .args(["sign", "--key", "cosign.key"])
            .env("MLOPS_SIGNING_PASSWORD", "correct horse")
            .output()
            .unwrap()
    };
    let out = sign();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), image_a);
    // Signing again never duplicates.
    let out = sign();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("already carries"), "{}", stderr(&out));
    let sig_tag = format!("{}.sig", digest_a.replace(':', "-"));
    let sig_manifest = get_manifest(&repo, &sig_tag);
    assert_eq!(sig_manifest["layers"].as_array().unwrap().len(), 1);
    // A wrong password is a clear error.
    let out = mlops(p)
        .args(["sign", "--key", "cosign.key"])
        .env("MLOPS_SIGNING_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot decrypt the signing key"),
        "{}",
        stderr(&out)
    );

    // Verified, with the evidence.
    let (code, json, err) = verify(p, &image_a, "cosign.pub", &["--require-attestation"]);
    assert_eq!(code, 0, "{err}");
    let evidence: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(evidence["digest"], digest_a.as_str());
    let types: Vec<&str> = evidence["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["predicateType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "https://slsa.dev/provenance/v1",
            "https://mlops.dev/evaluation/v1"
        ]
    );
    let eval = &evidence["attestations"][1]["predicate"];
    assert!(eval["data"]["train"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));

    // The wrong key.
    let (code, _, err) = verify(p, &image_a, "other.pub", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not verify with this key"), "{err}");

    // Image B: the same run with one more file in the model, unsigned.
    std::fs::write(
        p.join(format!(
            ".mlops/runs/{}/model/NOTE",
            a["tag"].as_str().unwrap()
        )),
        "b",
    )
    .unwrap();
    let b = package(p);
    let image_b = b["reference"].as_str().unwrap().to_string();
    let digest_b = b["digest"].as_str().unwrap().to_string();
    assert_ne!(digest_a, digest_b);
    let (code, _, err) = verify(p, &image_b, "cosign.pub", &[]);
    assert_eq!(code, 1);
    assert!(err.contains("has no signature"), "{err}");

    // A's signature replayed onto B.
    let sig_b = format!("{}.sig", digest_b.replace(':', "-"));
    put_manifest(&repo, &sig_b, &serde_json::to_vec(&sig_manifest).unwrap());
    let (code, _, err) = verify(p, &image_b, "cosign.pub", &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("over {digest_a}, not {digest_b}")),
        "{err}"
    );

    // A tampered payload: B's digest written into the payload, A's signature kept.
    let layer = &sig_manifest["layers"][0];
    let (host, name) = repo.split_once('/').unwrap();
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{host}/{name}"}},"image":{{"docker-manifest-digest":"{digest_b}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    let tampered_digest = push_blob(&repo, payload.as_bytes());
    let mut tampered = sig_manifest.clone();
    tampered["layers"][0]["digest"] = Value::from(tampered_digest);
    tampered["layers"][0]["size"] = Value::from(payload.len());
    assert!(layer["annotations"]["dev.cosignproject.cosign/signature"].is_string());
    put_manifest(&repo, &sig_b, &serde_json::to_vec(&tampered).unwrap());
    let (code, _, err) = verify(p, &image_b, "cosign.pub", &[]);
    assert_eq!(code, 1);
    assert!(err.contains("does not verify with this key"), "{err}");

    // Signed but not attested: --require-attestation says no.
    let out = mlops(p)
        .args(["sign", &image_b, "--key", "cosign.key", "--no-attest"])
        .env("MLOPS_SIGNING_PASSWORD", "correct horse")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(verify(p, &image_b, "cosign.pub", &[]).0, 0);
    let (code, _, err) = verify(p, &image_b, "cosign.pub", &["--require-attestation"]);
    assert_eq!(code, 1);
    assert!(err.contains("no verified attestation"), "{err}");
    // A tag instead of a digest is bad input.
    let (code, _, err) = verify(p, &format!("{repo}:latest"), "cosign.pub", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("names no digest"), "{err}");

    // An independent verifier agrees on A: the registry's own bytes, fetched with a plain HTTP
    // client, checked the way `cosign verify --key` checks them, the signature by OpenSSL.
    let (host, name) = repo.split_once('/').unwrap();
    let fetch = |path: &str, accept: &str| -> Vec<u8> {
        let url = format!("http://{host}/v2/{name}/{path}");
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let response = reqwest::Client::new()
                .get(&url)
                .header("Accept", accept)
                .send()
                .await
                .unwrap();
            assert!(
                response.status().is_success(),
                "GET {url}: {}",
                response.status()
            );
            response.bytes().await.unwrap().to_vec()
        })
    };
    let sig_a = format!("{}.sig", digest_a.replace(':', "-"));
    let manifest: Value = serde_json::from_slice(&fetch(
        &format!("manifests/{sig_a}"),
        "application/vnd.oci.image.manifest.v1+json",
    ))
    .unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest:#}");
    let layer = &layers[0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let blob = layer["digest"].as_str().unwrap();
    let payload = fetch(&format!("blobs/{blob}"), "*/*");
    let payload_digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&payload))
    );
    assert_eq!(payload_digest, blob, "the layer is the payload it names");
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        claims["critical"]["image"]["docker-manifest-digest"],
        digest_a.as_str()
    );
    assert_eq!(
        claims["critical"]["identity"]["docker-reference"],
        repo.as_str()
    );
    assert_eq!(
        claims["critical"]["type"],
        "cosign container image signature"
    );
    let signature = base64::engine::general_purpose::STANDARD
        .decode(
            layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let check = tempfile::tempdir().unwrap();
    std::fs::write(check.path().join("payload"), &payload).unwrap();
    std::fs::write(check.path().join("signature"), &signature).unwrap();
    let openssl = |public: &str| {
        Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(p.join(public))
            .arg("-signature")
            .arg(check.path().join("signature"))
            .arg(check.path().join("payload"))
            .output()
            .unwrap()
    };
    let ok = openssl("cosign.pub");
    assert!(
        ok.status.success() && stdout(&ok).contains("Verified OK"),
        "{}{}",
        stdout(&ok),
        stderr(&ok)
    );
    let wrong = openssl("other.pub");
    assert!(!wrong.status.success(), "{}", stdout(&wrong));
}

/// `package.dockerfile`: the serving image is built through the engine, pushed as
/// `<repository>:serve-<content hash>`, and the model layer goes on it like on any base image;
/// packaging again with the same build context reuses that base instead of building it.
#[test]
fn a_dockerfile_base_is_built_pushed_next_to_the_model_and_packaged_on() {
    let repository = format!("{}/acme/{}", registry(), unique("dockerfile-base"));
    let dir = trained_project(&repository, &registry());
    let yaml = std::fs::read_to_string(dir.path().join("mlops.yaml"))
        .unwrap()
        .replace(
            &format!("base_image: {}/acme/serve-sklearn:1", registry()),
            "dockerfile: serve.Dockerfile",
        );
    std::fs::write(dir.path().join("mlops.yaml"), yaml).unwrap();
    std::fs::write(
        dir.path().join("serve.Dockerfile"),
        format!(
            "FROM {}/acme/serve-sklearn:1\nLABEL dev.mlops.test=dockerfile-base\n",
            registry()
        ),
    )
    .unwrap();
    let run_id = std::fs::read_to_string(dir.path().join(".mlops/runs/latest"))
        .unwrap()
        .trim()
        .to_string();
    let packaged = package(dir.path());
    let base = packaged["base_image"].as_str().unwrap().to_string();
    let tag = base
        .strip_prefix(&format!("{repository}:serve-"))
        .unwrap_or_else(|| panic!("{packaged}"))
        .to_string();
    assert!(
        tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit()),
        "{base}"
    );
    let build_log = dir
        .path()
        .join(format!(".mlops/runs/{run_id}/logs/package-build.log"));
    assert!(
        std::fs::read_to_string(&build_log)
            .unwrap()
            .contains("building"),
        "{}",
        build_log.display()
    );
    let digest = packaged["digest"].as_str().unwrap();
    assert_eq!(packaged["reference"], format!("{repository}@{digest}"));
    // The built base is in the registry under its tag, and the image is its layers plus ours.
    let base_manifest = get_manifest(&repository, &format!("serve-{tag}"));
    let image = get_manifest(&repository, digest);
    let base_layers = base_manifest["layers"].as_array().unwrap();
    let layers = image["layers"].as_array().unwrap();
    assert_eq!(layers.len(), base_layers.len() + 1);
    for (ours, theirs) in layers.iter().zip(base_layers) {
        assert_eq!(ours["digest"], theirs["digest"]);
    }
    assert_eq!(
        layers.last().unwrap()["digest"],
        packaged["model_layer"]["digest"]
    );
    // Same context, Dockerfile and build arguments: the pushed base is reused, not rebuilt.
    let again = package(dir.path());
    assert_eq!(again["base_image"], base.as_str(), "{again}");
    let log = std::fs::read_to_string(&build_log).unwrap();
    assert!(
        log.contains("reusing") && !log.contains("building"),
        "{log}"
    );
    // A changed Dockerfile is a new base.
    std::fs::write(
        dir.path().join("serve.Dockerfile"),
        format!(
            "FROM {}/acme/serve-sklearn:1\nLABEL dev.mlops.test=dockerfile-base-2\n",
            registry()
        ),
    )
    .unwrap();
    let changed = package(dir.path());
    assert_ne!(changed["base_image"], base.as_str(), "{changed}");
}
