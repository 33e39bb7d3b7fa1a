//! Blob uploads, as the distribution specification defines them.
//!
//! - A blob of at most one chunk (`MLOPS_REGISTRY_CHUNK_MIB`, default 64 MiB) goes up in one
//!   PUT after its POST; the pair is retried as a whole.
//! - A larger one goes up in chunks: POST, then one PATCH per chunk with `Content-Range` and
//!   `Content-Length`, then the closing PUT with `?digest=`. Where the bytes come from is a
//!   [`Chunks`]: a file, each body streamed from it in 1 MiB pieces and hashed in the same
//!   pass, the closing PUT sent only when they match the digest we were given (a file that
//!   changed under us is not pushed under the old digest); or the model layer generated as it
//!   goes (`stream`), whose digest is known once its last byte was sent.
//! - After a dropped connection or a 5xx during a PATCH, the upload's URL is asked where it
//!   stands (GET → 204 with `Range: 0-N`) and the upload resumes at byte N+1: at most the chunk
//!   in flight is sent again. A session the registry no longer knows (404, or 400
//!   `BLOB_UPLOAD_INVALID`: distribution cancels a session whose stored size differs from the
//!   offset its `_state` records, which is what a PATCH cut mid-body leaves) starts again from
//!   its POST, once.
//! - Every `Location` the registry answers with is resolved against the registry and refused
//!   when it leaves https; credentials go only to the registry's own origin (see `registry`).

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode, Url};

use super::auth::Scope;
use super::digest::{Digest, Hasher};
use super::progress::Progress;
use super::registry::{same_origin, Registry};
use crate::http::{Attempt, Failure};

/// How many times a chunked upload recovers from an interruption before giving up.
const RECOVERIES: u32 = 8;

/// The bytes the registry holds by an upload's `Range` header (`0-N`, or `bytes=0-N`).
/// distribution writes `0-0` for an empty upload; one byte held reads the same and is sent
/// again (the registry then refuses the range, or the digest check does).
pub(crate) fn held(headers: &HeaderMap) -> Option<u64> {
    let range = headers.get(header::RANGE)?.to_str().ok()?.trim();
    let range = range.strip_prefix("bytes=").unwrap_or(range);
    let (start, end) = range.split_once('-')?;
    let (start, end) = (
        start.trim().parse::<u64>().ok()?,
        end.trim().parse::<u64>().ok()?,
    );
    if start != 0 {
        return None;
    }
    Some(if end == 0 { 0 } else { end + 1 })
}

/// The hash of a blob's bytes, fed in order exactly once whatever is sent again.
struct Hashed {
    hasher: Option<Hasher>,
    /// Bytes hashed so far (all of `0..upto`).
    upto: u64,
}

impl Hashed {
    fn feed(&mut self, at: u64, bytes: &[u8]) {
        let end = at + bytes.len() as u64;
        if let Some(h) = self
            .hasher
            .as_mut()
            .filter(|_| at <= self.upto && self.upto < end)
        {
            h.update(&bytes[(self.upto - at) as usize..]);
            self.upto = end;
        }
    }
}

/// Where a PATCH left the upload.
enum Patched {
    /// Accepted: the new upload URL and the bytes held.
    At(Url, u64),
    /// The connection dropped, or the registry answered 5xx: ask where the upload stands.
    Interrupted(anyhow::Error),
    /// The registry no longer knows the session.
    Gone(String),
}

impl Registry {
    /// Uploads a blob unless the repository has it: bytes in memory (small blobs).
    /// Returns whether bytes were sent.
    pub async fn push_bytes(&self, repo: &str, digest: &str, bytes: &[u8]) -> Result<bool> {
        let scope = Scope::push(repo);
        if self.blob_exists_for(&scope, digest).await? {
            return Ok(false);
        }
        let body = bytes::Bytes::copy_from_slice(bytes);
        self.upload(&scope, digest, bytes.len() as u64, &|| {
            reqwest::Body::from(body.clone())
        })
        .await?;
        Ok(true)
    }

    /// Uploads a blob from a file unless the repository has it, streaming (memory stays flat);
    /// in chunks when it is larger than one. Returns whether bytes were sent.
    pub async fn push_file(&self, repo: &str, digest: &str, path: &Path) -> Result<bool> {
        let scope = Scope::push(repo);
        if self.blob_exists_for(&scope, digest).await? {
            return Ok(false);
        }
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        if size > self.chunk {
            let digest = self.parse_digest(repo, digest)?;
            let chunks = FileChunks {
                path: path.to_path_buf(),
                digest: digest.clone(),
                hashed: Arc::new(Mutex::new(Hashed {
                    hasher: Some(digest.hasher()),
                    upto: 0,
                })),
            };
            self.upload_chunked(&scope, &chunks, size, &digest.short())
                .await?;
            return Ok(true);
        }
        let path = path.to_path_buf();
        self.upload(&scope, digest, size, &move || {
            file_body(&path, 0, size, None)
        })
        .await?;
        Ok(true)
    }

    /// Where the registry wants the upload: its `Location`, resolved against the registry.
    pub(super) fn upload_location(&self, location: &str) -> Result<Url> {
        let url = self
            .base()
            .join(location)
            .with_context(|| format!("registry {}: bad upload location {location:?}", self.host))?;
        let downgrade = self.base().scheme() == "https" && url.scheme() != "https";
        if downgrade || !matches!(url.scheme(), "http" | "https") {
            bail!(
                "registry {} sends the upload to {url}, not over https: refusing",
                self.host
            );
        }
        if !same_origin(&url, self.base()) {
            tracing::debug!(
                "registry {}: upload goes to {} (another host: sent without credentials)",
                self.host,
                url.origin().ascii_serialization()
            );
        }
        Ok(url)
    }

    /// The `Location` of an answer, resolved and checked.
    fn location_of(&self, resp: &reqwest::Response) -> Result<Url> {
        let location = resp.headers().get(header::LOCATION);
        let Some(location) = location.and_then(|v| v.to_str().ok()) else {
            bail!(
                "registry {}: upload answer ({}) without a Location",
                self.host,
                resp.status()
            );
        };
        self.upload_location(location)
    }

    /// POST a session, then one monolithic PUT; the pair is retried as a whole.
    pub(super) async fn upload(
        &self,
        scope: &Scope,
        digest: &str,
        size: u64,
        body: &(dyn Fn() -> reqwest::Body + Sync),
    ) -> Result<()> {
        let digest = self.parse_digest(&scope.repo, digest)?;
        let what = format!("upload blob {digest}");
        let logged = format!("{what} to registry {}", self.host);
        self.policy()
            .run(&logged, true, || {
                self.upload_once(&what, scope, &digest, size, body)
            })
            .await
            .map_err(Failure::into_error)
    }

    /// A new upload session: its URL.
    async fn start_session(&self, what: &str, scope: &Scope) -> Result<Url> {
        let start = self.url(&scope.repo, "blobs/uploads/");
        let resp = self.send(what, scope, true, &|c| c.post(&start)).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.fail(what, &scope.repo, resp).await);
        }
        self.location_of(&resp)
    }

    /// One upload session: its POST, then the PUT of the whole blob. A failed PUT makes the
    /// whole session worth trying again (a new session, not the same PUT).
    async fn upload_once(
        &self,
        what: &str,
        scope: &Scope,
        digest: &Digest,
        size: u64,
        body: &(dyn Fn() -> reqwest::Body + Sync),
    ) -> Attempt<(), anyhow::Error> {
        let repo = &scope.repo;
        let mut url = match self.start_session(what, scope).await {
            Ok(url) => url,
            Err(e) => return Attempt::Done(Err(e)),
        };
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        // Not retried by `send`: the body stream is consumed; the session is restarted instead.
        let resp = self
            .send(what, scope, false, &|c| {
                c.request(Method::PUT, url.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, size)
                    .body(body())
            })
            .await;
        match resp {
            Ok(r) if r.status() == StatusCode::CREATED => Attempt::Done(Ok(())),
            Ok(r)
                if r.status().is_server_error() || r.status() == StatusCode::TOO_MANY_REQUESTS =>
            {
                let why = format!("the PUT was answered {}", r.status());
                Attempt::Busy {
                    answer: Err(self.fail(what, repo, r).await),
                    retry_after: None,
                    why,
                }
            }
            Ok(r) => Attempt::Done(Err(self.fail(what, repo, r).await)),
            Err(e) => Attempt::Busy {
                why: format!("{e:#}"),
                answer: Err(e),
                retry_after: None,
            },
        }
    }

    /// POST, PATCH per chunk (resuming where the registry stands after an interruption), then
    /// the closing PUT with the digest of what `chunks` produced; returns that digest.
    pub(super) async fn upload_chunked<C: Chunks>(
        &self,
        scope: &Scope,
        chunks: &C,
        size: u64,
        label: &str,
    ) -> Result<Digest> {
        let what = format!("chunked upload of blob {label}");
        let progress = Progress::new(&format!("upload {label}"), size);
        let mut session = self.start_session(&what, scope).await?;
        let (mut offset, mut recoveries, mut restarted) = (0u64, 0u32, false);
        while offset < size {
            let end = (offset + self.chunk).min(size);
            chunks.seek(offset).await?;
            let body = &|| chunks.body(offset, end - offset, &progress);
            let outcome = self
                .patch(&what, scope, &session, offset, end, body)
                .await?;
            let gone = match outcome {
                Patched::At(url, at) => {
                    session = url;
                    offset = at.min(size);
                    progress.set(offset);
                    continue;
                }
                Patched::Gone(why) => why,
                Patched::Interrupted(e) => {
                    recoveries += 1;
                    if recoveries > RECOVERIES {
                        return Err(e.context(format!(
                            "registry {}: {what} interrupted {RECOVERIES} times",
                            self.host
                        )));
                    }
                    tracing::warn!(
                        "registry {}: {what} interrupted at byte {offset} ({e:#}); asking where it stands",
                        self.host
                    );
                    tokio::time::sleep(self.policy().delay(recoveries)).await;
                    match self.upload_status(&what, scope, &session).await? {
                        Ok((url, at)) => {
                            tracing::info!("registry {}: resuming at byte {at}", self.host);
                            session = url;
                            offset = at.min(size);
                            progress.set(offset);
                            continue;
                        }
                        Err(why) => why,
                    }
                }
            };
            if restarted {
                bail!(
                    "registry {}: {what}: the upload session was lost twice ({gone}); try again",
                    self.host
                );
            }
            tracing::warn!(
                "registry {}: {what}: the registry lost the session ({gone}); starting again",
                self.host
            );
            restarted = true;
            session = self.start_session(&what, scope).await?;
            offset = 0;
            progress.set(0);
        }
        let digest = self.close_upload(&what, scope, session, chunks).await?;
        progress.finish();
        Ok(digest)
    }

    /// One PATCH of `start..end`, its body from `body` (built again for each try).
    async fn patch(
        &self,
        what: &str,
        scope: &Scope,
        session: &Url,
        start: u64,
        end: u64,
        body: &(dyn Fn() -> reqwest::Body + Sync),
    ) -> Result<Patched> {
        let len = end - start;
        let resp = self
            .send(what, scope, false, &|c| {
                c.request(Method::PATCH, session.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header("content-range", format!("{start}-{}", end - 1))
                    .header(header::CONTENT_LENGTH, len)
                    .body(body())
            })
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Ok(Patched::Interrupted(e)),
        };
        let status = resp.status();
        if status == StatusCode::ACCEPTED {
            let url = self.location_of(&resp)?;
            let at = held(resp.headers()).unwrap_or(end);
            return Ok(Patched::At(url, at));
        }
        if status.is_server_error() || status == StatusCode::RANGE_NOT_SATISFIABLE {
            return Ok(Patched::Interrupted(
                self.fail(what, &scope.repo, resp).await,
            ));
        }
        if status == StatusCode::NOT_FOUND {
            return Ok(Patched::Gone(format!("the PATCH was answered {status}")));
        }
        Err(self.fail(what, &scope.repo, resp).await)
    }

    /// Where an upload stands: its URL and the bytes held, or why it is gone.
    async fn upload_status(
        &self,
        what: &str,
        scope: &Scope,
        session: &Url,
    ) -> Result<Result<(Url, u64), String>> {
        let resp = self
            .send(what, scope, true, &|c| c.get(session.clone()))
            .await?;
        let status = resp.status();
        if status == StatusCode::NO_CONTENT || status.is_success() {
            let Some(at) = held(resp.headers()) else {
                bail!(
                    "registry {}: the upload status ({status}) has no readable Range header",
                    self.host
                );
            };
            let url = match resp.headers().get(header::LOCATION) {
                Some(_) => self.location_of(&resp)?,
                None => session.clone(),
            };
            return Ok(Ok((url, at)));
        }
        let error = self.fail(what, &scope.repo, resp).await;
        let text = format!("{error:#}");
        if status == StatusCode::NOT_FOUND
            || text.contains("BLOB_UPLOAD_INVALID")
            || text.contains("BLOB_UPLOAD_UNKNOWN")
        {
            return Ok(Err(format!("its status was answered {status}")));
        }
        Err(error)
    }

    /// The closing PUT with the digest of what `chunks` produced; when they cannot vouch for
    /// it (a file changed under us) the session is cancelled instead.
    async fn close_upload<C: Chunks>(
        &self,
        what: &str,
        scope: &Scope,
        session: Url,
        chunks: &C,
    ) -> Result<Digest> {
        let digest = match chunks.digest().await {
            Ok(d) => d,
            Err(e) => {
                let cancelled = self
                    .send(what, scope, true, &|c| c.delete(session.clone()))
                    .await;
                if let Err(e) = cancelled {
                    tracing::debug!("cancelling the upload failed: {e:#}");
                }
                return Err(e.context(format!(
                    "nothing was pushed to registry {} (the upload was cancelled)",
                    self.host
                )));
            }
        };
        let mut url = session;
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let resp = self
            .send(what, scope, true, &|c| {
                c.put(url.clone()).header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(digest);
        }
        // A closing PUT retried after a lost answer finds its session consumed.
        if resp.status() == StatusCode::NOT_FOUND
            && self.blob_exists_for(scope, digest.as_str()).await?
        {
            return Ok(digest);
        }
        Err(self.fail(what, &scope.repo, resp).await)
    }
}

/// The bytes of a chunked upload: where each PATCH body comes from, and the digest the closing
/// PUT names once all were sent.
pub(crate) trait Chunks: Sync {
    /// Makes the bytes from `offset` on the next a body gives (a stream regenerates them).
    fn seek(&self, offset: u64) -> impl Future<Output = Result<()>> + Send;
    /// The body of a PATCH of `len` bytes from `start`.
    fn body(&self, start: u64, len: u64, progress: &Progress) -> reqwest::Body;
    /// The digest of the bytes, once every one was sent.
    fn digest(&self) -> impl Future<Output = Result<Digest>> + Send;
}

/// A file pushed under a digest it was given: its bytes are hashed (once, in order) as they are
/// sent, and the upload is closed only when they match.
struct FileChunks {
    path: std::path::PathBuf,
    digest: Digest,
    hashed: Arc<Mutex<Hashed>>,
}

impl Chunks for FileChunks {
    async fn seek(&self, _offset: u64) -> Result<()> {
        Ok(())
    }

    fn body(&self, start: u64, len: u64, progress: &Progress) -> reqwest::Body {
        let watch = (self.hashed.clone(), progress.clone());
        file_body(&self.path, start, len, Some(watch))
    }

    async fn digest(&self) -> Result<Digest> {
        let computed = {
            let mut h = self.hashed.lock().unwrap_or_else(|e| e.into_inner());
            h.hasher.take().map(Hasher::finish)
        };
        if computed.as_ref() != Some(&self.digest) {
            bail!(
                "{} changed while it was uploaded (its bytes are now {}, not {}); package again",
                self.path.display(),
                computed.map_or_else(|| "unread".to_string(), |d| d.to_string()),
                self.digest
            );
        }
        Ok(self.digest.clone())
    }
}

/// `len` bytes of `path` from `start`, streamed in 1 MiB pieces, each hashed (once, in order)
/// and counted as it is read. An unreadable file fails the request with its error.
fn file_body(
    path: &Path,
    start: u64,
    len: u64,
    watch: Option<(Arc<Mutex<Hashed>>, Progress)>,
) -> reqwest::Body {
    use std::io::Seek;
    use tokio::io::AsyncReadExt;
    let file = std::fs::File::open(path).and_then(|mut f| {
        f.seek(std::io::SeekFrom::Start(start))?;
        Ok(f)
    });
    let file = match file {
        Ok(f) => tokio::fs::File::from_std(f).take(len),
        Err(e) => {
            let e = std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
            return reqwest::Body::wrap_stream(futures_util::stream::once(async move {
                Err::<bytes::Bytes, _>(e)
            }));
        }
    };
    let mut at = start;
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).map(move |piece| {
        if let (Ok(bytes), Some((hashed, progress))) = (&piece, &watch) {
            hashed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .feed(at, bytes);
            at += bytes.len() as u64;
            progress.set(at);
        }
        piece
    });
    reqwest::Body::wrap_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, v.parse().unwrap());
        h
    }

    #[test]
    fn ranges_say_how_many_bytes_the_registry_holds() {
        assert_eq!(held(&range("0-1048575")), Some(1 << 20));
        assert_eq!(held(&range("bytes=0-99")), Some(100));
        assert_eq!(held(&range("0-0")), Some(0));
        assert_eq!(held(&range("5-9")), None);
        assert_eq!(held(&range("0-x")), None);
        assert_eq!(held(&HeaderMap::new()), None);
    }

    #[test]
    fn bytes_sent_again_are_hashed_once() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = Hashed {
            hasher: Some(Hasher::sha256()),
            upto: 0,
        };
        h.feed(0, &data[..4000]);
        // The connection dropped at 4000; the registry held 2500: sent again from there.
        h.feed(2500, &data[2500..7000]);
        // A piece past what was hashed (a gap) is not hashed.
        h.feed(9000, &data[9000..]);
        h.feed(7000, &data[7000..]);
        assert_eq!(h.upto, 10_000);
        assert_eq!(h.hasher.take().unwrap().finish(), Digest::of(&data));
    }
}
