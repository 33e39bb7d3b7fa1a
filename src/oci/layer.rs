//! The model layer: a reproducible tar of a directory placed at a path inside the image.
//! Entries sorted by path, mtime 0, uid/gid 0, no user or group names, modes normalised to
//! 0755 (directories and executables) or 0644; compression none, gzip (level 6, no name or
//! time in the header) or zstd (level 3), single-threaded. Written once to a temporary file
//! while both digests are computed, so memory stays flat however big the model is. The model
//! directory is the training step's writing: it is read as a step output (see
//! `outputs`): regular files and directories only, no link followed.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::digest::{Digest, Hasher};
use anyhow::{Context, Result};

use crate::outputs::StepDir;

// How the model layer is compressed (`package.compression`); no doc comment: it would become
// a description in the committed schema.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub struct Layer {
    /// The blob as stored (compressed or not).
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
    /// sha256 of the uncompressed tar (the config's rootfs.diff_ids entry).
    pub diff_id: Digest,
    pub media_type: &'static str,
}

/// Counts and (unless built `passing`) hashes what passes through.
struct Hashing<W: Write> {
    inner: W,
    hasher: Option<Hasher>,
    count: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
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
            hasher: Some(Hasher::sha256()),
            count: 0,
        }
    }
    /// Counts only: for an uncompressed layer the stored bytes are the tar, hashed below.
    fn passing(inner: W) -> Self {
        Hashing {
            hasher: None,
            ..Hashing::new(inner)
        }
    }
    fn finish(self) -> (W, Option<Digest>, u64) {
        (self.inner, self.hasher.map(Hasher::finish), self.count)
    }
}

/// A directory entry: mode 0755, owned by root, mtime 0.
fn dir_header() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h
}

fn media_type(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// Builds the layer for `dir` at `at` (an absolute path in the image) into `work`.
pub fn build(dir: &Path, at: &str, compression: Compression, work: &Path) -> Result<Layer> {
    use std::os::unix::fs::PermissionsExt;
    let prefix = PathBuf::from(at.trim_start_matches('/'));
    let path = work.join("model-layer.blob");
    // The uncompressed stream is hashed for diff_id at the top of the chain; the stored bytes
    // at the bottom, which reports its digest through a channel when the encoder above it
    // finishes and drops it.
    let (tx, rx) = std::sync::mpsc::channel::<(Digest, u64)>();
    struct Report<W: Write> {
        inner: Option<Hashing<W>>,
        tx: std::sync::mpsc::Sender<(Digest, u64)>,
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
                if let Some(d) = d {
                    let _ = self.tx.send((d, n));
                }
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
    // Uncompressed, the stored bytes are the tar: one hash gives both digests.
    let top = match compression {
        Compression::None => Hashing::passing(sink),
        Compression::Gzip | Compression::Zstd => Hashing::new(sink),
    };
    let mut tar = tar::Builder::new(top);
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
    for d in parents.iter().chain(std::iter::once(&prefix)) {
        let mut h = dir_header();
        tar.append_data(&mut h, d, io::empty())?;
    }
    // The training step wrote this directory: regular files and directories only, nothing
    // followed, each file opened below its directory without following links, its size taken
    // from fstat of the opened file and exactly that many bytes read.
    let root = StepDir::open(dir)?;
    for (rel, is_dir) in root.walk()? {
        let name = prefix.join(&rel);
        if is_dir {
            let mut h = dir_header();
            tar.append_data(&mut h, &name, io::empty())?;
            continue;
        }
        let opened = root.open_file(&rel)?;
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(if opened.meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(opened.meta.len());
        let path = opened.path.clone();
        let data = std::io::BufReader::with_capacity(1 << 20, opened.exact());
        tar.append_data(&mut h, &name, data)
            .with_context(|| format!("cannot add {} to the model layer", path.display()))?;
    }
    let hashing = tar.into_inner()?;
    let (mut sink, diff_id, _) = hashing.finish();
    sink.flush()?;
    drop(sink); // finishes the encoder, then the reporter sends the stored digest
    let (digest, size) = rx.recv().context("layer writer did not finish")?;
    let diff_id = diff_id.unwrap_or_else(|| digest.clone());
    let media_type = media_type(compression);
    Ok(Layer {
        path,
        digest,
        size,
        diff_id,
        media_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn model() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("model.bin"), b"weights").unwrap();
        std::fs::write(dir.path().join("sub/config.json"), b"{}").unwrap();
        dir
    }

    #[test]
    fn holds_the_files_with_their_fstat_sizes_reproducibly() {
        let dir = model();
        let work = tempfile::tempdir().unwrap();
        let a = build(dir.path(), "/model", Compression::None, work.path()).unwrap();
        let bytes = std::fs::read(&a.path).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            seen.push((e.path().unwrap().display().to_string(), content));
        }
        assert_eq!(
            seen,
            [
                ("model".to_string(), vec![]),
                ("model/model.bin".to_string(), b"weights".to_vec()),
                ("model/sub".to_string(), vec![]),
                ("model/sub/config.json".to_string(), b"{}".to_vec()),
            ]
        );
        let work2 = tempfile::tempdir().unwrap();
        let b = build(dir.path(), "/model", Compression::None, work2.path()).unwrap();
        assert_eq!(a.digest, b.digest);
    }

    #[test]
    fn refuses_fifos_links_and_sockets_naming_them() {
        let work = tempfile::tempdir().unwrap();

        let dir = model();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("sub/pipe"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let e = format!(
            "{:#}",
            build(dir.path(), "/model", Compression::Gzip, work.path())
                .err()
                .unwrap()
        );
        assert!(e.contains("sub/pipe is a FIFO (named pipe)"), "{e}");

        let dir = model();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("sub/passwd")).unwrap();
        let e = format!(
            "{:#}",
            build(dir.path(), "/model", Compression::Gzip, work.path())
                .err()
                .unwrap()
        );
        assert!(e.contains("sub/passwd is a symbolic link"), "{e}");

        let dir = model();
        let _l = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
        let e = format!(
            "{:#}",
            build(dir.path(), "/model", Compression::Zstd, work.path())
                .err()
                .unwrap()
        );
        assert!(e.contains("sock is a socket"), "{e}");
    }
}
