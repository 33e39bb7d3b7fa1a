//! An in-process HTTP listener on a loopback port that plays a registry, a token service or a
//! blob store, and misbehaves on request: a handler decides each answer (a full reply, a body
//! that never ends, a body that stops halfway, or no answer at all). Every request is recorded
//! with its headers, so tests can say who saw which secret.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

pub enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// 200 with a chunked body that never ends (until the client hangs up).
    Endless,
    /// 200 with `Content-Length: declared` (chunked when None), `sent`, then silence.
    Stall {
        declared: Option<u64>,
        sent: Vec<u8>,
    },
    /// 200, chunked: `sent`, then the body ends (shorter than a descriptor may say).
    Chunked { sent: Vec<u8> },
    /// No answer at all, and the request body is left unread.
    Hang,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn body(content_type: &str, body: Vec<u8>) -> Reply {
        Reply::status(200)
            .header("content-type", content_type)
            .with_body(body)
    }

    pub fn json(value: &Value) -> Reply {
        Reply::body("application/json", serde_json::to_vec(value).unwrap())
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }

    fn with_body(mut self, bytes: Vec<u8>) -> Reply {
        if let Reply::Full { body, .. } = &mut self {
            *body = bytes;
        }
        self
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

pub struct Fake {
    pub port: u16,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Fake {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (l, s) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = conn else { continue };
                let (l, s, h) = (l.clone(), s.clone(), handler.clone());
                std::thread::spawn(move || serve(stream, &l, &s, h.as_ref()));
            }
        });
        Fake { port, log, stop }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(Request, Option<usize>, bool)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let req = Request {
        method,
        target,
        headers,
    };
    let length = req.header("content-length").and_then(|v| v.parse().ok());
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    Some((req, length, chunked))
}

fn skip_body(
    reader: &mut BufReader<TcpStream>,
    length: Option<usize>,
    chunked: bool,
) -> Option<()> {
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                return Some(());
            }
        }
    }
    let mut body = vec![0u8; length.unwrap_or(0)];
    reader.read_exact(&mut body).ok()
}

fn silence(stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Request>>, stop: &AtomicBool, handler: &Handler) {
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let Some((req, length, chunked)) = read_request(&mut reader) else {
        return;
    };
    log.lock().unwrap().push(req.clone());
    let reply = handler(&req);
    if let Reply::Hang = reply {
        return silence(stop);
    }
    if skip_body(&mut reader, length, chunked).is_none() {
        return;
    }
    let head = |status: u16, extra: &str| {
        format!("HTTP/1.1 {status} X\r\nConnection: close\r\n{extra}\r\n").into_bytes()
    };
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut extra: String = headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}\r\n"))
                .collect();
            extra.push_str(&format!("Content-Length: {}\r\n", body.len()));
            let _ = out.write_all(&head(status, &extra));
            if req.method != "HEAD" {
                let _ = out.write_all(&body);
            }
        }
        Reply::Endless => {
            let _ = out.write_all(&head(200, "Transfer-Encoding: chunked\r\n"));
            let chunk = vec![b'x'; 64 * 1024];
            while !stop.load(Ordering::SeqCst) {
                let framed =
                    [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                if out.write_all(&framed).is_err() {
                    return;
                }
            }
        }
        Reply::Stall { declared, sent } => {
            match declared {
                Some(n) => {
                    let _ = out.write_all(&head(200, &format!("Content-Length: {n}\r\n")));
                    let _ = out.write_all(&sent);
                }
                None => {
                    let _ = out.write_all(&head(200, "Transfer-Encoding: chunked\r\n"));
                    let _ = out.write_all(format!("{:x}\r\n", sent.len()).as_bytes());
                    let _ = out.write_all(&sent);
                    let _ = out.write_all(b"\r\n");
                }
            }
            let _ = out.flush();
            silence(stop);
        }
        Reply::Chunked { sent } => {
            let _ = out.write_all(&head(200, "Transfer-Encoding: chunked\r\n"));
            let _ = out.write_all(format!("{:x}\r\n", sent.len()).as_bytes());
            let _ = out.write_all(&sent);
            let _ = out.write_all(b"\r\n0\r\n\r\n");
        }
        Reply::Hang => {}
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A base image: its manifest (tag `1` of `acme/base`) and blobs by digest.
pub struct Image {
    pub manifest: Vec<u8>,
    pub digest: String,
    pub blobs: HashMap<String, Vec<u8>>,
}

impl Image {
    /// A one-layer image; `edit` may change the manifest's JSON before it is serialised.
    pub fn new(edit: impl FnOnce(&mut Value)) -> Image {
        let layer = b"base layer bytes".to_vec();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
            "history": [],
        }))
        .unwrap();
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer), "size": layer.len()}],
        });
        edit(&mut manifest);
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let mut blobs = HashMap::new();
        blobs.insert(sha256(&config), config);
        blobs.insert(sha256(&layer), layer);
        Image {
            digest: sha256(&manifest),
            manifest,
            blobs,
        }
    }

    pub fn layer_digest(&self) -> String {
        let m: Value = serde_json::from_slice(&self.manifest).unwrap();
        m["layers"][0]["digest"].as_str().unwrap().to_string()
    }

    /// The answer of a registry holding this image as `acme/base:1`; None for other paths.
    pub fn serve(&self, req: &Request) -> Option<Reply> {
        let path = req.path();
        let manifest = path == "/v2/acme/base/manifests/1"
            || path == format!("/v2/acme/base/manifests/{}", self.digest);
        if manifest {
            return Some(Reply::body(OCI_MANIFEST, self.manifest.clone()));
        }
        let digest = path.strip_prefix("/v2/acme/base/blobs/")?;
        let blob = self.blobs.get(digest)?;
        Some(Reply::body("application/octet-stream", blob.clone()))
    }
}
