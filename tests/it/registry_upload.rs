//! Chunked, resumable blob uploads through a proxy that cuts the connection mid-blob: to the
//! real registry (distribution 2.8, which cancels a session cut mid-PATCH: the upload starts
//! again once) and to an in-process registry that keeps what it received and reports it in
//! `Range`, as the distribution specification describes (the upload resumes: at most the chunk
//! in flight is sent again). The same for the model layer streamed as it is generated: it is
//! regenerated up to the registry's offset, and equals the layer built on disk.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mlops::oci::credentials::RegistrySettings;
use mlops::oci::layer::{self, Compression};
use mlops::oci::registry::{sha256_digest, Registry};
use mlops::oci::tree::ModelTree;

use crate::common::registry;

const MIB: u64 = 1 << 20;

/// What the proxy saw: bytes from the client to the registry, and whether it cut.
#[derive(Default)]
struct Relayed {
    up: AtomicU64,
    cut: AtomicBool,
}

/// A TCP proxy in front of `upstream` that counts the bytes the client sends and, once they
/// pass `cut_at`, cuts the connection carrying them (both sides), once.
fn cutting_proxy(upstream: String, cut_at: u64) -> (String, Arc<Relayed>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(Relayed::default());
    let stats = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            let Ok(up) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut c_read, mut u_write) = (client.try_clone().unwrap(), up.try_clone().unwrap());
            let (mut u_read, mut c_write) = (up, client);
            let stats = stats.clone();
            let (c2, u2) = (c_write.try_clone().unwrap(), u_write.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    let n = match c_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let before = stats.up.fetch_add(n as u64, Ordering::SeqCst);
                    if before + n as u64 > cut_at && !stats.cut.swap(true, Ordering::SeqCst) {
                        let keep = (cut_at.saturating_sub(before)) as usize;
                        let _ = u_write.write_all(&buf[..keep.min(n)]);
                        stats
                            .up
                            .fetch_sub((n - keep.min(n)) as u64, Ordering::SeqCst);
                        break;
                    }
                    if u_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = c2.shutdown(Shutdown::Both);
                let _ = u2.shutdown(Shutdown::Both);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut u_read, &mut c_write);
                let _ = c_write.shutdown(Shutdown::Both);
            });
        }
    });
    (addr, seen)
}

/// `size` bytes that do not compress, in a file under `dir`.
fn random_file(dir: &Path, size: u64) -> (std::path::PathBuf, String) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ std::process::id() as u64;
    let bytes: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let path = dir.join("blob");
    std::fs::write(&path, &bytes).unwrap();
    (path, sha256_digest(&bytes))
}

/// Anonymous, 1 MiB chunks, short retry gaps: what every upload in this file uses.
fn chunked() -> RegistrySettings {
    RegistrySettings::anonymous()
        .with_chunk(MIB)
        .with_backoff(std::time::Duration::from_millis(20))
}

fn push(host: &str, repo: &str, digest: &str, path: &Path) -> anyhow::Result<bool> {
    let settings = chunked();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let reg = Registry::new(host, &settings)?;
        reg.push_file(repo, digest, path).await
    })
}

fn fetch(host: &str, repo: &str, digest: &str, size: u64) -> Vec<u8> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let reg = Registry::new(host, &RegistrySettings::anonymous()).unwrap();
        reg.blob(repo, digest, size).await.unwrap()
    })
}

#[test]
fn a_chunked_upload_cut_mid_blob_reaches_the_real_registry_whole() {
    let dir = tempfile::tempdir().unwrap();
    let size = 6 * MIB + 12345;
    let (path, digest) = random_file(dir.path(), size);
    let (proxy, relayed) = cutting_proxy(registry(), 3 * MIB + 500);
    let repo = format!("test/chunked-{}", std::process::id());
    assert!(push(&proxy, &repo, &digest, &path).expect("the upload completes"));
    assert!(
        relayed.cut.load(Ordering::SeqCst),
        "the proxy cut the upload"
    );
    // From the registry itself, verified against the digest by the client.
    let blob = fetch(&registry(), &repo, &digest, size);
    assert_eq!(sha256_digest(&blob), digest);
    let sent = relayed.up.load(Ordering::SeqCst);
    eprintln!("{} bytes sent again for a {size}-byte blob", sent - size);
    // distribution cancels the cut session: the bytes before the cut go again, not more.
    assert!(
        sent < size + 3 * MIB + 600 + 64 * 1024,
        "{sent} bytes sent for a {size}-byte blob"
    );
    // Pushed again: already there, nothing sent.
    assert!(!push(&registry(), &repo, &digest, &path).unwrap());
}

/// An upload session of the in-process registry: the bytes it received so far.
type Sessions = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// A registry that implements blob uploads only, keeping every byte it receives (also of a
/// PATCH cut short) and reporting them in `Range`, as the specification describes.
fn spec_registry() -> (String, Sessions) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let sessions: Sessions = Arc::default();
    let blobs: Sessions = Arc::default();
    let stored = blobs.clone();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(stream) = conn else { continue };
            let (sessions, blobs) = (sessions.clone(), blobs.clone());
            std::thread::spawn(move || serve_upload(stream, n, &sessions, &blobs));
        }
    });
    (addr, stored)
}

fn serve_upload(mut s: TcpStream, n: usize, sessions: &Sessions, blobs: &Sessions) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let len: u64 = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let id = path.rsplit('/').next().unwrap_or("").to_string();
    let answer = |s: &mut TcpStream, status: &str, headers: &str| {
        let _ = write!(
            s,
            "HTTP/1.1 {status}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
    };
    let range = |held: usize| format!("Range: 0-{}\r\n", held.max(1) - 1);
    match method {
        "HEAD" if path.contains("/blobs/sha256:") => {
            let known = blobs.lock().unwrap().contains_key(&id);
            answer(&mut s, if known { "200 OK" } else { "404 Not Found" }, "");
        }
        "POST" => {
            let id = format!("u{n}");
            sessions.lock().unwrap().insert(id.clone(), Vec::new());
            let location = format!("Location: {path}{id}\r\n");
            answer(&mut s, "202 Accepted", &(location + "Range: 0-0\r\n"));
        }
        "PATCH" => {
            let mut got = Vec::new();
            let _ = (&mut s).take(len).read_to_end(&mut got);
            let mut all = sessions.lock().unwrap();
            let Some(data) = all.get_mut(&id) else {
                return answer(&mut s, "404 Not Found", "");
            };
            data.extend_from_slice(&got);
            let headers = format!("Location: {path}\r\n{}", range(data.len()));
            answer(&mut s, "202 Accepted", &headers);
        }
        "GET" if path.contains("/blobs/uploads/") => match sessions.lock().unwrap().get(&id) {
            Some(data) => answer(&mut s, "204 No Content", &range(data.len())),
            None => answer(&mut s, "404 Not Found", ""),
        },
        "PUT" => {
            let Some(data) = sessions.lock().unwrap().remove(&id) else {
                return answer(&mut s, "404 Not Found", "");
            };
            let digest = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("digest="))
                .unwrap_or("")
                .replace("%3A", ":");
            if sha256_digest(&data) != digest {
                return answer(&mut s, "400 Bad Request", "");
            }
            blobs.lock().unwrap().insert(digest, data);
            answer(&mut s, "201 Created", "");
        }
        _ => answer(&mut s, "405 Method Not Allowed", ""),
    }
}

#[test]
fn a_chunked_upload_cut_mid_blob_resumes_where_the_registry_stands() {
    let dir = tempfile::tempdir().unwrap();
    let size = 6 * MIB + 777;
    let (path, digest) = random_file(dir.path(), size);
    let (upstream, blobs) = spec_registry();
    let (proxy, relayed) = cutting_proxy(upstream, 3 * MIB + 300_000);
    assert!(push(&proxy, "acme/model", &digest, &path).expect("the upload completes"));
    assert!(
        relayed.cut.load(Ordering::SeqCst),
        "the proxy cut the upload"
    );
    let stored = blobs.lock().unwrap().get(&digest).cloned();
    assert_eq!(stored.map(|b| sha256_digest(&b)), Some(digest));
    // Request heads are a few hundred bytes each: what is left over was sent again.
    let again = relayed.up.load(Ordering::SeqCst) - size;
    eprintln!("{again} bytes sent again for a {size}-byte blob");
    assert!(
        again <= 2 * MIB,
        "{again} bytes sent again (chunks of 1 MiB)"
    );
}

/// A model directory of a few files (`size` bytes in all, incompressible), and the layer of it
/// built on disk the way an OCI layout gets it: what the streamed upload must equal.
fn model_dir(
    size: u64,
) -> (
    tempfile::TempDir,
    std::sync::Arc<ModelTree>,
    Vec<u8>,
    String,
) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(model.join("sub")).unwrap();
    let (big, _) = random_file(&model, size - 1000);
    std::fs::rename(big, model.join("sub/weights.bin")).unwrap();
    std::fs::write(model.join("config.json"), vec![b'{'; 1000]).unwrap();
    let tree = std::sync::Arc::new(ModelTree::scan(&model, "/model", Compression::None).unwrap());
    let work = tempfile::tempdir().unwrap();
    let built = layer::build(&tree, work.path()).unwrap();
    let bytes = std::fs::read(&built.path).unwrap();
    assert_eq!(sha256_digest(&bytes), built.digest.as_str());
    assert_eq!(bytes.len() as u64, tree.tar_size());
    let digest = built.digest.to_string();
    (dir, tree, bytes, digest)
}

fn push_layer(host: &str, repo: &str, tree: &std::sync::Arc<ModelTree>) -> anyhow::Result<String> {
    let settings = chunked();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let reg = Registry::new(host, &settings)?;
        Ok(reg
            .push_model_layer(repo, tree.clone())
            .await?
            .0
            .to_string())
    })
}

#[test]
fn a_streamed_model_layer_is_the_layer_built_on_disk() {
    let (_dir, tree, bytes, digest) = model_dir(3 * MIB + 4321);
    let repo = format!("test/streamed-{}", std::process::id());
    let pushed = push_layer(&registry(), &repo, &tree).expect("the streamed upload completes");
    assert_eq!(pushed, digest);
    let blob = fetch(&registry(), &repo, &digest, bytes.len() as u64);
    assert!(blob == bytes, "the registry holds the tar built on disk");
}

#[test]
fn a_streamed_layer_cut_mid_upload_reaches_the_real_registry_whole() {
    let (_dir, tree, bytes, digest) = model_dir(6 * MIB + 999);
    let (proxy, relayed) = cutting_proxy(registry(), 3 * MIB + 500);
    let repo = format!("test/streamed-cut-{}", std::process::id());
    let pushed = push_layer(&proxy, &repo, &tree).expect("the upload completes");
    assert!(
        relayed.cut.load(Ordering::SeqCst),
        "the proxy cut the upload"
    );
    assert_eq!(pushed, digest);
    let blob = fetch(&registry(), &repo, &digest, bytes.len() as u64);
    assert!(blob == bytes);
}

#[test]
fn a_streamed_layer_cut_mid_upload_is_regenerated_up_to_the_registry_offset() {
    let (_dir, tree, bytes, digest) = model_dir(6 * MIB + 777);
    let size = bytes.len() as u64;
    let (upstream, blobs) = spec_registry();
    let (proxy, relayed) = cutting_proxy(upstream, 3 * MIB + 300_000);
    let pushed = push_layer(&proxy, "acme/model", &tree).expect("the upload completes");
    assert!(
        relayed.cut.load(Ordering::SeqCst),
        "the proxy cut the upload"
    );
    assert_eq!(pushed, digest);
    let stored = blobs.lock().unwrap().get(&digest).cloned();
    assert!(
        stored == Some(bytes),
        "the registry holds the tar built on disk"
    );
    let again = relayed.up.load(Ordering::SeqCst) - size;
    eprintln!("{again} bytes sent again for a {size}-byte layer");
    assert!(
        again <= 2 * MIB,
        "{again} bytes sent again (chunks of 1 MiB)"
    );
}

#[test]
fn a_model_changed_during_a_streamed_upload_is_not_pushed() {
    let (dir, tree, bytes, digest) = model_dir(6 * MIB + 777);
    // The registry resumes after the cut; the file changed meanwhile: the regenerated stream
    // refuses it, and nothing is stored under any digest.
    let (upstream, blobs) = spec_registry();
    let (proxy, relayed) = cutting_proxy(upstream, 3 * MIB);
    let weights = dir.path().join("model/sub/weights.bin");
    let watcher = {
        let relayed = relayed.clone();
        std::thread::spawn(move || {
            while !relayed.cut.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let mut f = std::fs::File::options().write(true).open(&weights).unwrap();
            f.write_all(b"tampered").unwrap();
        })
    };
    let e = format!("{:#}", push_layer(&proxy, "acme/model", &tree).unwrap_err());
    watcher.join().unwrap();
    assert!(
        e.contains("weights.bin changed while the model layer"),
        "{e}"
    );
    assert!(blobs.lock().unwrap().is_empty(), "nothing stored");
    let _ = (bytes, digest);
}
