//! The uncompressed model layer streamed straight into a chunked upload: a thread writes the
//! tar from the model's plan (`tree`) into a bounded channel of 1 MiB pieces while hashing it,
//! and each PATCH body takes its bytes from that channel; the digest is known when the last
//! byte has gone, for the closing PUT. Nothing is written to disk and at most a few pieces are
//! in memory. The tar is deterministic, so an upload resumed at the registry's offset, or
//! started again from its POST, regenerates it from the start and skips what the registry
//! already holds: the same bytes, hashed again from the first (a model changed in between
//! fails, see `tree`).

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll};

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::auth::Scope;
use super::digest::Digest;
use super::layer::Hashing;
use super::progress::Progress;
use super::registry::Registry;
use super::tree::ModelTree;
use super::upload::Chunks;

/// The size of the pieces the layer is cut into on its way to the socket.
const PIECE: usize = 1 << 20;
/// Pieces produced ahead of the upload: what the stream holds in memory at most.
const AHEAD: usize = 4;

enum Piece {
    Data(Bytes),
    /// The digest and size of everything produced, or why the tar failed.
    End(std::result::Result<(Digest, u64), String>),
}

/// Fills pieces and hands them to the channel; a closed channel (the upload stopped or started
/// over) ends the writing.
struct Pieces {
    tx: mpsc::Sender<Piece>,
    buf: BytesMut,
}

impl Pieces {
    fn hand_over(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = self.buf.split().freeze();
        self.buf.reserve(PIECE);
        self.tx
            .blocking_send(Piece::Data(piece))
            .map_err(|_| std::io::Error::other("the upload no longer reads the layer"))
    }
}

impl std::io::Write for Pieces {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(PIECE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIECE {
            self.hand_over()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts writing the layer of `tree` from its first byte.
fn generate(tree: Arc<ModelTree>) -> Result<mpsc::Receiver<Piece>> {
    let (tx, rx) = mpsc::channel(AHEAD);
    let end = tx.clone();
    std::thread::Builder::new()
        .name("model-layer".into())
        .spawn(move || {
            let pieces = Pieces {
                tx,
                buf: BytesMut::with_capacity(PIECE),
            };
            let written = tree.write_tar(Hashing::new(pieces)).and_then(|hashing| {
                let (mut pieces, digest, size) = hashing.finish();
                pieces.hand_over()?;
                Ok((digest.context("the layer hash was not kept")?, size))
            });
            let _ = end.blocking_send(Piece::End(written.map_err(|e| format!("{e:#}"))));
        })
        .context("cannot start the thread that writes the model layer")?;
    Ok(rx)
}

/// Where the stream stands: the bytes handed out so far of the current generation.
struct State {
    rx: mpsc::Receiver<Piece>,
    /// The part of a piece past the end of the body that took it.
    leftover: Bytes,
    position: u64,
    generation: u64,
    end: Option<std::result::Result<(Digest, u64), String>>,
}

impl State {
    /// The next bytes of the stream; None at its end.
    fn poll_next(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<Option<Bytes>>> {
        if !self.leftover.is_empty() {
            return Poll::Ready(Ok(Some(std::mem::take(&mut self.leftover))));
        }
        if let Some(end) = &self.end {
            return Poll::Ready(match end {
                Ok(_) => Ok(None),
                Err(e) => Err(anyhow::anyhow!("{e}")),
            });
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Piece::Data(b))) => Poll::Ready(Ok(Some(b))),
            Poll::Ready(Some(Piece::End(r))) => {
                self.end = Some(r);
                self.poll_next(cx)
            }
            Poll::Ready(None) => {
                self.end = Some(Err("the model layer writer stopped".into()));
                self.poll_next(cx)
            }
        }
    }

    /// Takes at most `max` bytes of `piece`, keeping the rest for the next taker.
    fn take(&mut self, mut piece: Bytes, max: u64) -> Bytes {
        if piece.len() as u64 > max {
            self.leftover = piece.split_off(max as usize);
        }
        self.position += piece.len() as u64;
        piece
    }
}

/// The uncompressed layer of a model tree as the chunks of an upload.
pub(crate) struct LayerStream {
    tree: Arc<ModelTree>,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl LayerStream {
    pub(crate) fn new(tree: Arc<ModelTree>) -> Result<LayerStream> {
        let rx = generate(tree.clone())?;
        Ok(LayerStream {
            tree,
            state: Arc::new(Mutex::new(State {
                rx,
                leftover: Bytes::new(),
                position: 0,
                generation: 0,
                end: None,
            })),
        })
    }

    async fn next(&self) -> Result<Option<Bytes>> {
        std::future::poll_fn(|cx| lock(&self.state).poll_next(cx)).await
    }
}

impl Chunks for LayerStream {
    async fn seek(&self, offset: u64) -> Result<()> {
        {
            let mut s = lock(&self.state);
            if offset < s.position {
                tracing::info!(
                    "regenerating the model layer up to byte {offset} (the registry holds that much)"
                );
                s.rx = generate(self.tree.clone())?;
                s.leftover = Bytes::new();
                s.position = 0;
                s.generation += 1;
                s.end = None;
            }
        }
        loop {
            let need = offset - lock(&self.state).position;
            if need == 0 {
                return Ok(());
            }
            let Some(piece) = self.next().await? else {
                bail!("the model layer ended before byte {offset}, which the registry holds");
            };
            lock(&self.state).take(piece, need);
        }
    }

    fn body(&self, start: u64, len: u64, progress: &Progress) -> reqwest::Body {
        let state = self.state.clone();
        let generation = lock(&state).generation;
        let (mut at, end) = (start, start + len);
        let progress = progress.clone();
        let stream = futures_util::stream::poll_fn(move |cx| {
            if at == end {
                return Poll::Ready(None);
            }
            let mut s = lock(&state);
            if s.generation != generation || s.position != at {
                // A body built again for a request sent again: its bytes are gone. The upload
                // asks the registry where it stands and regenerates from there.
                let e = "the model layer stream has moved on: asking the registry where it stands";
                return Poll::Ready(Some(Err(std::io::Error::other(e))));
            }
            match s.poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(e)) => {
                    Poll::Ready(Some(Err(std::io::Error::other(format!("{e:#}")))))
                }
                Poll::Ready(Ok(None)) => Poll::Ready(Some(Err(std::io::Error::other(format!(
                    "the model layer ended at byte {at}, before the {end} planned"
                ))))),
                Poll::Ready(Ok(Some(piece))) => {
                    let piece = s.take(piece, end - at);
                    at = s.position;
                    progress.set(at);
                    Poll::Ready(Some(Ok(piece)))
                }
            }
        });
        reqwest::Body::wrap_stream(stream)
    }

    async fn digest(&self) -> Result<Digest> {
        if self.next().await?.is_some() {
            bail!(
                "the model layer grew past its planned {} bytes: {} changed while it was uploaded; package again",
                self.tree.tar_size(),
                self.tree.dir.display()
            );
        }
        match lock(&self.state).end.clone() {
            Some(Ok((digest, size))) if size == self.tree.tar_size() => Ok(digest),
            Some(Ok((_, size))) => bail!(
                "the model layer came to {size} bytes, not the {} planned: {} changed while it was uploaded; package again",
                self.tree.tar_size(),
                self.tree.dir.display()
            ),
            Some(Err(e)) => Err(anyhow::anyhow!("{e}")),
            None => bail!("the model layer stream did not end"),
        }
    }
}

impl Registry {
    /// Uploads the uncompressed layer of `tree` as it is generated, unless the registry has it.
    /// A layer larger than one chunk is streamed into PATCHes and its digest known at the end;
    /// a smaller one is hashed first (a read of at most one chunk) and then sent in one PUT
    /// after a HEAD, as small blobs are. Returns the layer's digest and whether it was sent.
    pub async fn push_model_layer(
        &self,
        repo: &str,
        tree: Arc<ModelTree>,
    ) -> Result<(Digest, bool)> {
        let scope = Scope::push(repo);
        let size = tree.tar_size();
        if size > self.chunk {
            let stream = LayerStream::new(tree)?;
            let digest = self
                .upload_chunked(&scope, &stream, size, "model layer")
                .await?;
            return Ok((digest, true));
        }
        let t = tree.clone();
        let (digest, _) = tokio::task::spawn_blocking(move || super::layer::hash_tar(&t))
            .await
            .context("the model layer hash stopped")??;
        if self.blob_exists_for(&scope, digest.as_str()).await? {
            return Ok((digest, false));
        }
        let progress = Progress::new("upload model layer", size);
        let body = || match LayerStream::new(tree.clone()) {
            Ok(stream) => stream.body(0, size, &progress),
            Err(e) => reqwest::Body::wrap_stream(futures_util::stream::once(async move {
                Err::<Bytes, _>(std::io::Error::other(format!("{e:#}")))
            })),
        };
        // The registry checks the bytes against the digest: a model changed since it was
        // hashed is refused, and the stream itself fails on a changed file (see `tree`).
        self.upload(&scope, digest.as_str(), size, &body).await?;
        progress.finish();
        Ok((digest, true))
    }
}
