//! The model layer: a reproducible tar of a directory placed at a path inside the image.
//! Entries sorted by path, mtime 0, uid/gid 0, no user or group names, modes normalised to
//! 0755 (directories and executables) or 0644; compression none, gzip (level 6, no name or
//! time in the header) or zstd (level 3), single-threaded. Written once to a temporary file
//! while both digests are computed, so memory stays flat however big the model is.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::config::Compression;

pub struct Layer {
    /// The blob as stored (compressed or not).
    pub path: PathBuf,
    pub digest: String,
    pub size: u64,
    /// sha256 of the uncompressed tar (the config's rootfs.diff_ids entry).
    pub diff_id: String,
    pub media_type: &'static str,
}

/// Counts and hashes what passes through.
struct Hashing<W: Write> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        )
    }
}

/// Every file and directory under `dir`, relative, sorted bytewise.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let e = e?;
            let p = e.path();
            let ft = e.file_type()?;
            if ft.is_symlink() {
                anyhow::bail!(
                    "{} is a symbolic link; a model directory must hold plain files",
                    p.display()
                );
            }
            if ft.is_dir() {
                stack.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    Ok(out)
}

/// Builds the layer for `dir` at `at` (an absolute path in the image) into `work`.
pub fn build(dir: &Path, at: &str, compression: Compression, work: &Path) -> Result<Layer> {
    use std::os::unix::fs::PermissionsExt;
    let prefix = PathBuf::from(at.trim_start_matches('/'));
    let path = work.join("model-layer.blob");
    // The uncompressed stream is hashed for diff_id at the top of the chain; the stored bytes
    // at the bottom, which reports its digest through a channel when the encoder above it
    // finishes and drops it.
    let (tx, rx) = std::sync::mpsc::channel::<(String, u64)>();
    struct Report<W: Write> {
        inner: Option<Hashing<W>>,
        tx: std::sync::mpsc::Sender<(String, u64)>,
    }
    impl<W: Write> Write for Report<W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.inner.as_mut().unwrap().write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.as_mut().unwrap().flush()
        }
    }
    impl<W: Write> Drop for Report<W> {
        fn drop(&mut self) {
            if let Some(h) = self.inner.take() {
                let (mut w, d, n) = h.finish();
                let _ = w.flush();
                let _ = self.tx.send((d, n));
            }
        }
    }
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let bottom = Report {
        inner: Some(Hashing::new(file)),
        tx,
    };
    let sink: Box<dyn Write> = match compression {
        Compression::None => Box::new(bottom),
        Compression::Gzip => Box::new(
            flate2::GzBuilder::new()
                .mtime(0)
                .write(bottom, flate2::Compression::new(6)),
        ),
        Compression::Zstd => Box::new(zstd::stream::write::Encoder::new(bottom, 3)?.auto_finish()),
    };
    let mut tar = tar::Builder::new(Hashing::new(sink));
    tar.mode(tar::HeaderMode::Deterministic);
    // Parent directories of the model path, then the tree.
    let mut parents = Vec::new();
    let mut p = prefix.as_path();
    while let Some(parent) = p.parent() {
        if parent.as_os_str().is_empty() {
            break;
        }
        parents.push(parent.to_path_buf());
        p = parent;
    }
    parents.reverse();
    let dir_header = || {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        h
    };
    for d in parents.iter().chain(std::iter::once(&prefix)) {
        let mut h = dir_header();
        tar.append_data(&mut h, d, io::empty())?;
    }
    for rel in entries(dir)? {
        let full = dir.join(&rel);
        let meta = std::fs::metadata(&full)?;
        let name = prefix.join(&rel);
        if meta.is_dir() {
            let mut h = dir_header();
            tar.append_data(&mut h, &name, io::empty())?;
        } else {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            });
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(meta.len());
            let f = std::fs::File::open(&full)
                .with_context(|| format!("cannot read {}", full.display()))?;
            tar.append_data(&mut h, &name, std::io::BufReader::with_capacity(1 << 20, f))?;
        }
    }
    let hashing = tar.into_inner()?;
    let (mut sink, diff_id, _) = hashing.finish();
    sink.flush()?;
    drop(sink); // finishes the encoder, then the reporter sends the stored digest
    let (digest, size) = rx.recv().context("layer writer did not finish")?;
    let media_type = match compression {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    };
    Ok(Layer {
        path,
        digest,
        size,
        diff_id,
        media_type,
    })
}
