//! Registry auth as real registries do it, against Debian's docker-registry started by
//! scripts/services: TLS with a private CA plus htpasswd Basic auth, and token auth whose realm
//! is the token issuer below (the registry verifies its ES256 JWTs against the issuer's
//! certificate in its rootcertbundle). `mlops package`, `sign` and `verify` go through; wrong
//! credentials, an unknown CA and an expired token each fail clearly, naming the registry.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;

use mlops::oci::credentials::{Credentials, RegistrySettings};
use mlops::oci::registry::{sha256_digest, Registry, OCI_MANIFEST};

use crate::common::{copy_dir, fixture, mlops, stderr};

const ISSUER_PASSWORD: &str = "issuer-password";

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn tls_registry() -> String {
    setting("MLOPS_TEST_REGISTRY_TLS", "127.0.0.1:5001")
}

fn token_registry() -> String {
    setting("MLOPS_TEST_REGISTRY_TOKEN", "127.0.0.1:5002")
}

fn ca_file() -> String {
    setting(
        "MLOPS_TEST_REGISTRY_CA",
        "/var/cache/mlops-test/registry-auth/ca.pem",
    )
}

fn htpasswd_user() -> (String, String) {
    let pair = setting(
        "MLOPS_TEST_REGISTRY_HTPASSWD_USER",
        "mlops:mlops-test-password",
    );
    let (u, p) = pair.split_once(':').expect("user:password");
    (u.to_string(), p.to_string())
}

fn unique(name: &str) -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("{name}-{}-{ms}", std::process::id())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A token request the issuer answered: the user and the scopes asked for.
type TokenLog = Arc<Mutex<Vec<(String, Vec<String>)>>>;

/// The token issuer behind the token registry's realm, started once per test binary on the
/// fixed realm address. Users: any name with the password `ISSUER_PASSWORD`; a user whose
/// name starts with `expired` always gets expired tokens, one starting with `stale` gets an
/// expired first token and valid ones after it.
fn issuer() -> TokenLog {
    static LOG: OnceLock<TokenLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let realm = setting("MLOPS_TEST_TOKEN_REALM", "127.0.0.1:5003");
        let listener = TcpListener::bind(&realm).unwrap_or_else(|e| {
            panic!("cannot serve the token realm on {realm} ({e}): is another test run holding it?")
        });
        let key = pem_der(&setting(
            "MLOPS_TEST_TOKEN_KEY",
            "/var/cache/mlops-test/registry-auth/token.key",
        ));
        let cert = pem_der(&setting(
            "MLOPS_TEST_TOKEN_CERT",
            "/var/cache/mlops-test/registry-auth/token.pem",
        ));
        let log: TokenLog = Arc::default();
        let seen = log.clone();
        std::thread::spawn(move || {
            let issued: Mutex<HashMap<String, usize>> = Mutex::default();
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let (status, body) = answer_token(&head, &key, &cert, &issued, &seen);
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        log
    })
    .clone()
}

fn pem_der(path: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (scripts/services generates it)"));
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// One token request: its status line and JSON body.
fn answer_token(
    head: &str,
    key: &[u8],
    cert: &[u8],
    issued: &Mutex<HashMap<String, usize>>,
    log: &TokenLog,
) -> (&'static str, String) {
    let target = head.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    let user = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        let v = v.trim().strip_prefix("Basic ")?;
        k.eq_ignore_ascii_case("authorization").then(|| {
            let raw = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
            String::from_utf8(raw).ok()
        })?
    });
    let Some((user, password)) = user.as_deref().and_then(|u| u.split_once(':')) else {
        return (
            "401 Unauthorized",
            r#"{"details":"credentials required"}"#.into(),
        );
    };
    if password != ISSUER_PASSWORD {
        return ("401 Unauthorized", r#"{"details":"wrong password"}"#.into());
    }
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    log.lock().unwrap().push((user.to_string(), scopes.clone()));
    let nth = {
        let mut issued = issued.lock().unwrap();
        let n = issued.entry(user.to_string()).or_default();
        *n += 1;
        *n
    };
    let expired = user.starts_with("expired") || (user.starts_with("stale") && nth == 1);
    // distribution allows 60 s of clock skew: an expired token is ten minutes old.
    let exp = if expired { now() - 600 } else { now() + 300 };
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let rest = s.strip_prefix("repository:")?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(serde_json::json!({
                "type": "repository", "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }))
        })
        .collect();
    let service = params
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let claims = serde_json::json!({
        "iss": "mlops-test-issuer", "sub": user, "aud": service,
        "exp": exp, "nbf": now() - 1200, "iat": now() - 1200,
        "jti": format!("{user}-{nth}"), "access": access,
    });
    let jwt = sign_jwt(&claims, key, cert);
    let body = serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 300});
    ("200 OK", body.to_string())
}

/// An ES256 JWT with the issuer's certificate in `x5c`, as distribution verifies it.
fn sign_jwt(claims: &serde_json::Value, key: &[u8], cert: &[u8]) -> String {
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = serde_json::json!({
        "typ": "JWT", "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(cert)],
    });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key).unwrap();
    let sig = pair
        .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    format!("{input}.{}", b64(sig.as_ref()))
}

/// A small base image (one empty layer) pushed to `host/repo:1` with the library client.
fn push_base(host: &str, repo: &str, settings: &RegistrySettings) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "app/base.txt", &b"hi\n"[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let layer = gz.finish().unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&tar)]},
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256_digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256_digest(&layer), "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let reg = Registry::new(host, settings).unwrap();
        reg.push_bytes(repo, &sha256_digest(&layer), &layer)
            .await
            .unwrap();
        reg.push_bytes(repo, &sha256_digest(&config), &config)
            .await
            .unwrap();
        reg.put_manifest(repo, "1", &manifest, OCI_MANIFEST)
            .await
            .unwrap();
    });
}

/// The churn fixture, trained, packaging to `repository` on `base`, with a signing key pair.
fn trained_project(repository: &str, base: &str) -> tempfile::TempDir {
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
            &format!("base_image: {base}"),
        );
    std::fs::write(dir.path().join("mlops.yaml"), yaml).unwrap();
    let out = mlops(dir.path()).arg("train").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = mlops(dir.path())
        .args(["sign", "--generate-key", "cosign"])
        .env("MLOPS_SIGNING_PASSWORD", "pw")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    dir
}

/// `mlops ARGS` in `dir` with these registry settings.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = mlops(dir);
    cmd.args(args)
        .env("MLOPS_SIGNING_PASSWORD", "pw")
        .env("MLOPS_REGISTRY_BACKOFF_MS", "20");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// package, sign and verify, each exiting 0; returns the image reference.
fn package_sign_verify(dir: &Path, env: &[(&str, &str)]) -> String {
    let out = run(dir, &["package", "--format", "json"], env);
    assert_eq!(out.status.code(), Some(0), "package: {}", stderr(&out));
    let packaged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let image = packaged["reference"].as_str().unwrap().to_string();
    let out = run(dir, &["sign", "--key", "cosign.key"], env);
    assert_eq!(out.status.code(), Some(0), "sign: {}", stderr(&out));
    let out = run(dir, &["verify", &image, "--key", "cosign.pub"], env);
    assert_eq!(out.status.code(), Some(0), "verify: {}", stderr(&out));
    image
}

fn assert_fails_naming(out: &Output, registry: &str, words: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("registry {registry}")), "{err}");
    for w in words {
        assert!(err.contains(w), "{w:?} not in: {err}");
    }
}

#[test]
fn a_tls_registry_with_htpasswd_packages_signs_and_verifies() {
    let host = tls_registry();
    let (user, password) = htpasswd_user();
    let pem = std::fs::read(ca_file()).expect("the test CA (scripts/services makes it)");
    let settings = RegistrySettings::anonymous()
        .with_https_hosts(vec![host.clone()])
        .with_extra_roots(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .with_credentials(
            &host,
            Credentials {
                username: user.clone(),
                password: password.clone(),
            },
        );
    let base = format!("test/{}", unique("base"));
    push_base(&host, &base, &settings);
    let repo = format!("{host}/test/{}", unique("churn"));
    let dir = trained_project(&repo, &format!("{host}/{base}:1"));
    let ca = ca_file();
    let env = [
        ("MLOPS_REGISTRY_HTTPS_HOSTS", host.as_str()),
        ("MLOPS_REGISTRY_CA_FILE", ca.as_str()),
        ("MLOPS_REGISTRY_USER", user.as_str()),
        ("MLOPS_REGISTRY_PASSWORD", password.as_str()),
    ];
    let image = package_sign_verify(dir.path(), &env);
    assert!(image.starts_with(&format!("{repo}@sha256:")), "{image}");

    let mut wrong = env;
    wrong[3].1 = "not-the-password";
    let out = run(
        dir.path(),
        &["verify", &image, "--key", "cosign.pub"],
        &wrong,
    );
    assert_fails_naming(&out, &host, &["refused the credentials", &user]);

    let out = run(
        dir.path(),
        &["verify", &image, "--key", "cosign.pub"],
        &env[..1],
    );
    assert_fails_naming(&out, &host, &["not trusted", "MLOPS_REGISTRY_CA_FILE"]);
    // SSL_CERT_FILE is trusted too.
    let mut via_ssl = env;
    via_ssl[1].0 = "SSL_CERT_FILE";
    let out = run(
        dir.path(),
        &["verify", &image, "--key", "cosign.pub"],
        &via_ssl,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_token_registry_packages_signs_and_verifies_with_scoped_tokens() {
    let log = issuer();
    let host = token_registry();
    let creds = |user: &str| Credentials {
        username: user.to_string(),
        password: ISSUER_PASSWORD.to_string(),
    };
    let settings = RegistrySettings::anonymous().with_credentials(&host, creds("builder"));
    let base = format!("test/{}", unique("base"));
    push_base(&host, &base, &settings);
    let name = format!("test/{}", unique("churn"));
    let repo = format!("{host}/{name}");
    let dir = trained_project(&repo, &format!("{host}/{base}:1"));
    let user = unique("stale");
    let env = [
        ("MLOPS_REGISTRY_USER", user.as_str()),
        ("MLOPS_REGISTRY_PASSWORD", ISSUER_PASSWORD),
    ];
    // The first token this user gets is expired: refreshed once, and everything goes through.
    let image = package_sign_verify(dir.path(), &env);
    assert!(image.starts_with(&format!("{repo}@sha256:")), "{image}");
    let asked: Vec<Vec<String>> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(u, _)| *u == user)
        .map(|(_, s)| s.clone())
        .collect();
    assert!(asked.len() >= 2, "{asked:?}");
    // The base layer was mounted with one token carrying both repositories' scopes.
    let mount = vec![
        format!("repository:{name}:pull,push"),
        format!("repository:{base}:pull"),
    ];
    assert!(asked.contains(&mount), "{asked:?}");
    // Pulls ask for pull only.
    assert!(
        asked.contains(&vec![format!("repository:{base}:pull")]),
        "{asked:?}"
    );

    let expired = unique("expired");
    let env = [
        ("MLOPS_REGISTRY_USER", expired.as_str()),
        ("MLOPS_REGISTRY_PASSWORD", ISSUER_PASSWORD),
    ];
    let out = run(dir.path(), &["verify", &image, "--key", "cosign.pub"], &env);
    assert_fails_naming(&out, &host, &["even after fetching a new one", "expired"]);

    let env = [
        ("MLOPS_REGISTRY_USER", "builder"),
        ("MLOPS_REGISTRY_PASSWORD", "wrong"),
    ];
    let out = run(dir.path(), &["verify", &image, "--key", "cosign.pub"], &env);
    assert_fails_naming(&out, &host, &["token request", "401"]);
}
