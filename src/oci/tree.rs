//! The model directory as the model layer will hold it, scanned once before any byte of the
//! layer is produced: its entries in tar order, each file's `fstat` stamp, and the exact size
//! of the uncompressed tar. The layer is then written from this plan as often as needed (an
//! upload resumed after a cut regenerates the same bytes); every file is checked against its
//! stamp when it is opened and again once it has been read, so a model that changes in between
//! fails the packaging instead of mixing two versions.
//!
//! The plan's [`ModelTree::key`] is what the layer cache (see `image`) maps to a layer digest.
//! It is a fast path over metadata, not content: per file its path, size, mode, inode, device,
//! mtime and ctime (nanoseconds). A rewrite of the same size whose mtime is put back still moves
//! the ctime, which nothing but the kernel sets. A file whose mtime or ctime is within
//! [`RACY`] of the scan could still change within the same timestamp tick unseen (git's "racily
//! clean" entries): then the tree has no key, and the layer is hashed again rather than trusted.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};

use super::digest::Hasher;
use super::layer::Compression;
use crate::outputs::StepDir;

/// A stamp this close to the scan (or later) is not trusted as a cache key.
pub(crate) const RACY: Duration = Duration::from_secs(2);

/// What `fstat` says about a file, as far as its content could have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub size: u64,
    pub mode: u32,
    pub ino: u64,
    pub dev: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl Stamp {
    pub(crate) fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: m.len(),
            mode: m.mode(),
            ino: m.ino(),
            dev: m.dev(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    fn executable(&self) -> bool {
        self.mode & 0o111 != 0
    }

    /// Whether either time is within `RACY` of `scan` (or after it).
    fn racy(&self, scan: SystemTime) -> bool {
        let since_epoch = scan
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_sub(RACY);
        let limit = (
            since_epoch.as_secs() as i64,
            since_epoch.subsec_nanos() as i64,
        );
        self.mtime >= limit || self.ctime >= limit
    }
}

/// One entry of the layer: a directory, or a file with its stamp at scan time.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Dir(PathBuf),
    File { rel: PathBuf, stamp: Stamp },
}

/// The model directory, planned as a layer at `at` in the image.
#[derive(Debug)]
pub struct ModelTree {
    pub(crate) dir: PathBuf,
    /// The model path in the image, without its leading `/`.
    pub(crate) prefix: PathBuf,
    pub(crate) compression: Compression,
    pub(crate) entries: Vec<Entry>,
    tar_size: u64,
    key: Option<String>,
}

/// Counts what is written, and drops it.
struct Counting(u64);

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ModelTree {
    /// Scans `dir` (a step output: regular files and directories only, no link followed) for
    /// a layer at `at`, an absolute path in the image.
    pub fn scan(dir: &Path, at: &str, compression: Compression) -> Result<ModelTree> {
        ModelTree::scan_as_of(dir, at, compression, SystemTime::now())
    }

    /// `scan`, with stamps judged racy against `started`.
    fn scan_as_of(
        dir: &Path,
        at: &str,
        compression: Compression,
        started: SystemTime,
    ) -> Result<ModelTree> {
        let root = StepDir::open(dir)?;
        let mut entries = Vec::new();
        for (rel, is_dir) in root.walk()? {
            if is_dir {
                entries.push(Entry::Dir(rel));
                continue;
            }
            let opened = root.open_file(&rel)?;
            let stamp = Stamp::of(&opened.meta);
            entries.push(Entry::File { rel, stamp });
        }
        let mut tree = ModelTree {
            dir: dir.to_path_buf(),
            prefix: PathBuf::from(at.trim_start_matches('/')),
            compression,
            entries,
            tar_size: 0,
            key: None,
        };
        tree.tar_size = tree.headers_size()?
            + tree
                .files()
                .map(|(_, s)| s.size.div_ceil(512) * 512)
                .sum::<u64>();
        let racy = tree.files().any(|(_, s)| s.racy(started));
        tree.key = (!racy).then(|| tree.digest_of_stamps());
        Ok(tree)
    }

    pub(crate) fn files(&self) -> impl Iterator<Item = (&Path, &Stamp)> {
        self.entries.iter().filter_map(|e| match e {
            Entry::File { rel, stamp } => Some((rel.as_path(), stamp)),
            Entry::Dir(_) => None,
        })
    }

    /// The exact length of the uncompressed tar.
    pub fn tar_size(&self) -> u64 {
        self.tar_size
    }

    /// The cache key of the layer (see the module); None when a stamp is too recent to trust.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The tar's headers and trailer: the same archive with every file's data left out (each
    /// file then adds its size rounded up to 512 bytes).
    fn headers_size(&self) -> Result<u64> {
        let mut tar = tar::Builder::new(Counting(0));
        self.append_all(&mut tar, |_, _| Ok(Box::new(io::empty())))?;
        Ok(tar.into_inner()?.0)
    }

    fn digest_of_stamps(&self) -> String {
        let mut h = Hasher::sha256();
        h.update(b"mlops model layer v1\0");
        h.update(self.prefix.as_os_str().as_encoded_bytes());
        h.update(format!("\0{:?}\0", self.compression).as_bytes());
        for e in &self.entries {
            match e {
                Entry::Dir(rel) => {
                    h.update(b"d\0");
                    h.update(rel.as_os_str().as_encoded_bytes());
                }
                Entry::File { rel, stamp: s } => {
                    h.update(b"f\0");
                    h.update(rel.as_os_str().as_encoded_bytes());
                    let line = format!(
                        "\0{} {:o} {} {} {}.{} {}.{}",
                        s.size, s.mode, s.ino, s.dev, s.mtime.0, s.mtime.1, s.ctime.0, s.ctime.1
                    );
                    h.update(line.as_bytes());
                }
            }
            h.update(b"\n");
        }
        h.finish().to_string()
    }

    /// Writes the deterministic tar of the tree into `tar` (entries sorted, mtime 0, root-owned,
    /// modes 0755/0644); each file's bytes come from `data(rel, stamp)`.
    pub(crate) fn append_all<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        mut data: impl FnMut(&Path, &Stamp) -> Result<Box<dyn io::Read>>,
    ) -> Result<()> {
        tar.mode(tar::HeaderMode::Deterministic);
        // Parent directories of the model path, then the model path, then the tree.
        let mut parents = Vec::new();
        let mut p = self.prefix.as_path();
        while let Some(parent) = p.parent() {
            if parent.as_os_str().is_empty() {
                break;
            }
            parents.push(parent.to_path_buf());
            p = parent;
        }
        parents.reverse();
        for d in parents.iter().chain(std::iter::once(&self.prefix)) {
            tar.append_data(&mut dir_header(), d, io::empty())?;
        }
        for e in &self.entries {
            match e {
                Entry::Dir(rel) => {
                    tar.append_data(&mut dir_header(), self.prefix.join(rel), io::empty())?;
                }
                Entry::File { rel, stamp } => {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(if stamp.executable() { 0o755 } else { 0o644 });
                    h.set_uid(0);
                    h.set_gid(0);
                    h.set_mtime(0);
                    h.set_size(stamp.size);
                    let reader = data(rel, stamp)?;
                    tar.append_data(&mut h, self.prefix.join(rel), reader)
                        .with_context(|| {
                            format!(
                                "cannot add {} to the model layer",
                                self.dir.join(rel).display()
                            )
                        })?;
                }
            }
        }
        tar.finish()?;
        Ok(())
    }

    /// Writes the layer's tar into `sink` from the files themselves, each checked against its
    /// stamp when opened and after it was read (a model changed since the scan is an error).
    pub(crate) fn write_tar<W: Write>(&self, sink: W) -> Result<W> {
        let root = StepDir::open(&self.dir)?;
        let mut tar = tar::Builder::new(sink);
        let mut opened_last: Option<(PathBuf, std::fs::File, Stamp)> = None;
        let check = |last: &mut Option<(PathBuf, std::fs::File, Stamp)>| -> Result<()> {
            if let Some((rel, file, stamp)) = last.take() {
                let after = Stamp::of(&file.metadata()?);
                if after != stamp {
                    bail!("{}", self.changed(&rel));
                }
            }
            Ok(())
        };
        self.append_all(&mut tar, |rel, stamp| {
            check(&mut opened_last)?;
            let opened = root.open_file(rel)?;
            if Stamp::of(&opened.meta) != *stamp {
                bail!("{}", self.changed(rel));
            }
            opened_last = Some((rel.to_path_buf(), opened.file.try_clone()?, stamp.clone()));
            Ok(Box::new(io::BufReader::with_capacity(
                1 << 20,
                opened.exact(),
            )))
        })?;
        check(&mut opened_last)?;
        Ok(tar.into_inner()?)
    }

    fn changed(&self, rel: &Path) -> String {
        format!(
            "{} changed while the model layer was being built: package again once the model is written",
            self.dir.join(rel).display()
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A scan long after the files were written: no stamp is racy.
    fn later(dir: &Path) -> ModelTree {
        let t = SystemTime::now() + Duration::from_secs(60);
        ModelTree::scan_as_of(dir, "/model", Compression::None, t).unwrap()
    }

    #[test]
    fn the_planned_size_is_the_tar_size_long_names_included() {
        let dir = tempfile::tempdir().unwrap();
        let deep = "d".repeat(90);
        std::fs::create_dir_all(dir.path().join(&deep)).unwrap();
        std::fs::write(dir.path().join("a.bin"), vec![7u8; 1000]).unwrap();
        std::fs::write(dir.path().join(&deep).join("e".repeat(120)), b"x").unwrap();
        std::fs::write(dir.path().join("empty"), b"").unwrap();
        std::fs::write(dir.path().join("block"), vec![1u8; 512]).unwrap();
        let tree = ModelTree::scan(dir.path(), "/opt/ml/model", Compression::None).unwrap();
        let bytes = tree.write_tar(Vec::new()).unwrap();
        assert_eq!(bytes.len() as u64, tree.tar_size());
    }

    #[test]
    fn a_same_size_rewrite_with_its_mtime_put_back_changes_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("weights.bin");
        std::fs::write(&file, b"first weights").unwrap();
        let before = later(dir.path());
        let key = before.key().unwrap().to_string();
        assert_eq!(
            later(dir.path()).key(),
            Some(key.as_str()),
            "unchanged: same key"
        );
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        // Let the coarse kernel clock tick, so the ctime of the rewrite differs.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&file, b"other weights").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), mtime);
        let after = later(dir.path());
        assert_eq!(after.tar_size(), before.tar_size());
        assert!(after.key().is_some());
        assert_ne!(after.key(), Some(key.as_str()));
    }

    #[test]
    fn a_file_written_just_now_gives_no_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m"), b"weights").unwrap();
        let tree = ModelTree::scan(dir.path(), "/model", Compression::None).unwrap();
        assert_eq!(tree.key(), None);
        assert!(later(dir.path()).key().is_some());
    }

    #[test]
    fn a_file_changed_after_the_scan_fails_the_tar_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("weights.bin");
        std::fs::write(&file, b"first weights").unwrap();
        let tree = ModelTree::scan(dir.path(), "/model", Compression::None).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&file, b"other weights").unwrap();
        let e = format!("{:#}", tree.write_tar(Vec::new()).unwrap_err());
        assert!(
            e.contains("weights.bin changed while the model layer"),
            "{e}"
        );
    }
}
