//! The model layer: a reproducible tar of a directory placed at a path inside the image.
//! Entries sorted by path, mtime 0, uid/gid 0, no user or group names, modes normalised to
//! 0755 (directories and executables) or 0644; compression none, gzip (level 6, no name or
//! time in the header) or zstd (level 3), single-threaded. The tar comes from the plan of
//! `tree` (scanned once; files checked against their stamps as they are read). Pushed to a
//! registry uncompressed, it is streamed straight into the upload (see `stream`); compressed,
//! or for an OCI layout, it is written once to a file while both digests are computed, so
//! memory stays flat however big the model is. The model directory is the training step's
//! writing: it is read as a step output (see `outputs`): regular files and directories only,
//! no link followed.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::digest::{Digest, Hasher};
use super::tree::ModelTree;

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
pub(crate) struct Hashing<W: Write> {
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
    pub(crate) fn new(inner: W) -> Self {
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
    pub(crate) fn finish(self) -> (W, Option<Digest>, u64) {
        (self.inner, self.hasher.map(Hasher::finish), self.count)
    }
}

pub(crate) fn media_type(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// Builds the layer planned by `tree` into a file in `work`.
pub fn build(tree: &ModelTree, work: &Path) -> Result<Layer> {
    let path = work.join("model-layer.blob");
    let compression = tree.compression;
    // The uncompressed stream is hashed for diff_id at the top of the chain; the stored bytes
    // at the bottom, which reports its digest through a channel when the encoder above it
    // finishes and drops it.
    let (tx, rx) = std::sync::mpsc::channel::<(Digest, u64)>();
    struct Report<W: Write> {
        inner: Option<Hashing<W>>,
        tx: std::sync::mpsc::Sender<(Digest, u64)>,
    }
    impl<W: Write> Report<W> {
        fn inner(&mut self) -> io::Result<&mut Hashing<W>> {
            self.inner
                .as_mut()
                .ok_or_else(|| io::Error::other("the layer writer was already finished"))
        }
    }
    impl<W: Write> Write for Report<W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.inner()?.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner()?.flush()
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
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let bottom = Report {
        inner: Some(Hashing::new(io::BufWriter::with_capacity(1 << 20, file))),
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
    let hashing = tree.write_tar(top)?;
    let (mut sink, diff_id, _) = hashing.finish();
    sink.flush()?;
    drop(sink); // finishes the encoder, then the reporter sends the stored digest
    let (digest, size) = rx.recv().context("layer writer did not finish")?;
    let diff_id = diff_id.unwrap_or_else(|| digest.clone());
    Ok(Layer {
        path,
        digest,
        size,
        diff_id,
        media_type: media_type(compression),
    })
}

/// The digest and size of the uncompressed layer of `tree`, from reading the model once
/// (nothing is written).
pub fn hash_tar(tree: &ModelTree) -> Result<(Digest, u64)> {
    let hashing = tree.write_tar(Hashing::new(io::sink()))?;
    let (_, digest, size) = hashing.finish();
    Ok((digest.context("the layer hash was not kept")?, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn build_dir(dir: &Path, compression: Compression, work: &Path) -> Result<Layer> {
        build(&ModelTree::scan(dir, "/model", compression)?, work)
    }

    #[test]
    fn the_hashed_tar_is_the_built_one() {
        let dir = model();
        let work = tempfile::tempdir().unwrap();
        let built = build_dir(dir.path(), Compression::None, work.path()).unwrap();
        let tree = ModelTree::scan(dir.path(), "/model", Compression::None).unwrap();
        let (digest, size) = hash_tar(&tree).unwrap();
        assert_eq!((digest, size), (built.digest.clone(), built.size));
        assert_eq!(built.diff_id, built.digest);
        assert_eq!(size, tree.tar_size());
        let gz = build_dir(dir.path(), Compression::Gzip, work.path()).unwrap();
        assert_eq!(gz.diff_id, built.digest);
    }

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
        let a = build_dir(dir.path(), Compression::None, work.path()).unwrap();
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
        let b = build_dir(dir.path(), Compression::None, work2.path()).unwrap();
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
            build_dir(dir.path(), Compression::Gzip, work.path())
                .err()
                .unwrap()
        );
        assert!(e.contains("sub/pipe is a FIFO (named pipe)"), "{e}");

        let dir = model();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("sub/passwd")).unwrap();
        let e = format!(
            "{:#}",
            build_dir(dir.path(), Compression::Gzip, work.path())
                .err()
                .unwrap()
        );
        assert!(e.contains("sub/passwd is a symbolic link"), "{e}");

        let dir = model();
        let _l = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
        let e = format!(
            "{:#}",
            build_dir(dir.path(), Compression::Zstd, work.path())
                .err()
                .unwrap()
        );
        assert!(e.contains("sock is a socket"), "{e}");
    }
}
