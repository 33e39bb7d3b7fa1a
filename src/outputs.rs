//! Reading back what a step wrote — its outputs directory and its model directory — without
//! trusting it. The step's code is hostile (a fork's pull request runs it): a symbolic link
//! would make the host read its own secrets, a FIFO would hang it, a sparse file of terabytes
//! would exhaust its memory. So every path below a step's directory is opened one component at
//! a time relative to the directory above it, with `O_NOFOLLOW` (a link anywhere is refused,
//! whatever races the step tries) and `O_NONBLOCK` (opening a FIFO never waits for a writer);
//! the opened file must be a regular file (`fstat`), and is read with a size limit.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags};

/// metrics.json, read back from a step (train or evaluate).
pub const METRICS_LIMIT: u64 = 1 << 20;
/// predictions.csv, read back from an evaluation.
pub const PREDICTIONS_LIMIT: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{} is {kind}, not a regular file: mlops reads what a step wrote only from regular files and directories, and never follows links or opens pipes, sockets or devices\n  help: make the step write the file itself", .path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{} is {size} bytes, larger than the {} limit for {what}\n  help: write less (a step's {what} is a summary, not data)", .path.display(), human(*.limit))]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
        what: String,
    },
    #[error("{} changed while it was read ({how}): a step's files must be complete before it exits", .path.display())]
    Changed { path: PathBuf, how: &'static str },
    #[error("{} is not a plain relative path below {}", .rel.display(), .root.display())]
    BadPath { root: PathBuf, rel: PathBuf },
    #[error("cannot read {}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl OutputError {
    /// Whether the file is simply absent (the caller may treat that as "not written").
    pub fn is_not_found(&self) -> bool {
        matches!(self, OutputError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b => format!("{b} bytes"),
    }
}

/// What a file type is, in words, for messages.
pub fn kind(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "of an unknown type"
    }
}

/// Whether anything (a link included) exists at `path`, without following it.
pub fn present(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

const FILE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// A directory a step wrote into, opened once; everything below it is opened relative to it.
pub struct StepDir {
    path: PathBuf,
    fd: File,
}

/// A regular file opened below a [`StepDir`], with its `fstat` at open time.
pub struct Opened {
    pub path: PathBuf,
    pub file: File,
    pub meta: Metadata,
}

impl StepDir {
    /// Opens `path` (which the host created and mounted; its last component must still be a
    /// directory, not a link to one).
    pub fn open(path: &Path) -> Result<StepDir, OutputError> {
        match rustix::fs::open(path, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(StepDir {
                path: path.to_path_buf(),
                fd: File::from(fd),
            }),
            Err(e) => Err(refusal(path, e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the regular file at `rel`, refusing a link in any component.
    pub fn open_file(&self, rel: &Path) -> Result<Opened, OutputError> {
        let path = self.path.join(rel);
        let names = self.components(rel)?;
        let Some((last, dirs)) = names.split_last() else {
            return Err(OutputError::BadPath {
                root: self.path.clone(),
                rel: rel.to_path_buf(),
            });
        };
        let dir = self.open_dir(&dirs.iter().collect::<PathBuf>())?;
        let at = &dir;
        // Look before opening: a FIFO, a socket or a device is never opened at all. The open
        // below still refuses a link and cannot block, whatever replaced the entry meanwhile.
        let st = rustix::fs::statat(at.as_fd(), *last, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| OutputError::Io {
                path: path.clone(),
                source: e.into(),
            })?;
        let file_type = rustix::fs::FileType::from_raw_mode(st.st_mode);
        if file_type != rustix::fs::FileType::RegularFile {
            return Err(OutputError::NotRegular {
                path,
                kind: kind_of_raw(file_type),
            });
        }
        let fd = rustix::fs::openat(at.as_fd(), *last, FILE_FLAGS, Mode::empty())
            .map_err(|e| refusal(&path, e))?;
        let file = File::from(fd);
        let meta = file.metadata().map_err(|source| OutputError::Io {
            path: path.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(OutputError::NotRegular {
                kind: kind(meta.file_type()),
                path,
            });
        }
        Ok(Opened { path, file, meta })
    }

    /// Opens the directory at `rel` (empty: the root itself), refusing a link in any component.
    fn open_dir(&self, rel: &Path) -> Result<File, OutputError> {
        let mut dir = self.fd.try_clone().map_err(|source| OutputError::Io {
            path: self.path.clone(),
            source,
        })?;
        let mut reached = self.path.clone();
        for name in self.components(rel)? {
            reached.push(name);
            let fd = rustix::fs::openat(dir.as_fd(), name, DIR_FLAGS, Mode::empty())
                .map_err(|e| refusal(&reached, e))?;
            dir = File::from(fd);
        }
        Ok(dir)
    }

    fn components<'a>(&self, rel: &'a Path) -> Result<Vec<&'a std::ffi::OsStr>, OutputError> {
        rel.components()
            .map(|c| match c {
                Component::Normal(name) => Ok(name),
                _ => Err(OutputError::BadPath {
                    root: self.path.clone(),
                    rel: rel.to_path_buf(),
                }),
            })
            .collect()
    }

    /// Every directory and regular file below, relative, sorted bytewise; anything else
    /// (a link, a FIFO, a socket, a device) is an error naming it.
    pub fn walk(&self) -> Result<Vec<(PathBuf, bool)>, OutputError> {
        let mut out = Vec::new();
        // Directories are reopened from the root when their turn comes (one fd at a time,
        // however wide the tree), each component without following links.
        let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let dir = self.open_dir(&rel)?;
            let full = self.path.join(&rel);
            let io_err = |source: rustix::io::Errno| OutputError::Io {
                path: full.clone(),
                source: source.into(),
            };
            let entries = rustix::fs::Dir::read_from(dir.as_fd()).map_err(io_err)?;
            for entry in entries {
                let entry = entry.map_err(io_err)?;
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
                let child = rel.join(name);
                let child_path = self.path.join(&child);
                // fstatat without following: the entry's own type, whatever d_type says.
                let st =
                    rustix::fs::statat(dir.as_fd(), name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| OutputError::Io {
                            path: child_path.clone(),
                            source: e.into(),
                        })?;
                match rustix::fs::FileType::from_raw_mode(st.st_mode) {
                    rustix::fs::FileType::Directory => {
                        stack.push(child.clone());
                        out.push((child, true));
                    }
                    rustix::fs::FileType::RegularFile => out.push((child, false)),
                    other => {
                        return Err(OutputError::NotRegular {
                            path: child_path,
                            kind: kind_of_raw(other),
                        })
                    }
                }
            }
        }
        out.sort_by(|a, b| {
            a.0.as_os_str()
                .as_encoded_bytes()
                .cmp(b.0.as_os_str().as_encoded_bytes())
        });
        Ok(out)
    }
}

fn kind_of_raw(t: rustix::fs::FileType) -> &'static str {
    use rustix::fs::FileType as T;
    match t {
        T::Symlink => "a symbolic link",
        T::Directory => "a directory",
        T::Fifo => "a FIFO (named pipe)",
        T::Socket => "a socket",
        T::CharacterDevice => "a character device",
        T::BlockDevice => "a block device",
        T::RegularFile => "a regular file",
        T::Unknown => "of an unknown type",
    }
}

/// The error for a failed `open(O_NOFOLLOW)`: a link says ELOOP (or ENOTDIR when asked for a
/// directory); say what is there instead.
fn refusal(path: &Path, e: rustix::io::Errno) -> OutputError {
    use rustix::io::Errno;
    if e == Errno::LOOP || e == Errno::NOTDIR || e == Errno::NXIO {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            return OutputError::NotRegular {
                path: path.to_path_buf(),
                kind: kind(meta.file_type()),
            };
        }
    }
    OutputError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

impl Opened {
    /// A reader of exactly the size `fstat` gave at open time: a file that shrinks, grows or
    /// is modified while it is read is an error naming it.
    pub fn exact(self) -> Exact {
        Exact {
            remaining: self.meta.len(),
            file: self.file,
            path: self.path,
            before: self.meta,
            checked: false,
        }
    }
}

pub struct Exact {
    file: File,
    path: PathBuf,
    remaining: u64,
    before: Metadata,
    checked: bool,
}

impl Exact {
    fn changed(&self, how: &'static str) -> io::Error {
        io::Error::other(OutputError::Changed {
            path: self.path.clone(),
            how,
        })
    }
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::MetadataExt;
        if self.remaining == 0 {
            if !self.checked {
                self.checked = true;
                let mut one = [0u8; 1];
                if self.file.read(&mut one)? != 0 {
                    return Err(self.changed("it grew"));
                }
                let after = self.file.metadata()?;
                let (a, b) = (&self.before, &after);
                if (a.len(), a.mtime(), a.mtime_nsec()) != (b.len(), b.mtime(), b.mtime_nsec()) {
                    return Err(self.changed("it was modified"));
                }
            }
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..max])?;
        if n == 0 && max > 0 {
            return Err(self.changed("it shrank"));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Opens the step output at `path` (its directory is the step's, the file is the step's
/// writing): a regular file of at most `limit` bytes.
pub fn open_limited(path: &Path, limit: u64, what: &str) -> Result<Limited, OutputError> {
    let (dir, name) = split(path)?;
    let opened = StepDir::open(dir)?.open_file(Path::new(name))?;
    let size = opened.meta.len();
    if size > limit {
        return Err(OutputError::TooLarge {
            path: opened.path,
            size,
            limit,
            what: what.to_string(),
        });
    }
    Ok(Limited {
        inner: opened.file.take(limit + 1),
        path: opened.path,
        limit,
        read: 0,
        what: what.to_string(),
    })
}

fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr), OutputError> {
    let bad = || OutputError::BadPath {
        root: PathBuf::from("."),
        rel: path.to_path_buf(),
    };
    let name = path.file_name().ok_or_else(bad)?;
    let dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .ok_or_else(bad)?;
    Ok((dir, name))
}

/// The whole step output at `path`, at most `limit` bytes.
pub fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, OutputError> {
    let mut reader = open_limited(path, limit, what)?;
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| reader.error(e))?;
    Ok(bytes)
}

/// A step output being read: an error past the limit (the file grew after it was opened).
pub struct Limited {
    inner: io::Take<File>,
    path: PathBuf,
    limit: u64,
    read: u64,
    what: String,
}

impl Limited {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The typed error behind an `io::Error` this reader returned.
    pub fn error(&self, e: io::Error) -> OutputError {
        if self.read > self.limit {
            return OutputError::TooLarge {
                path: self.path.clone(),
                size: self.read,
                limit: self.limit,
                what: self.what.clone(),
            };
        }
        OutputError::Io {
            path: self.path.clone(),
            source: e,
        }
    }
}

impl Read for Limited {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(format!(
                "{} grew past the {} limit for {} while it was read",
                self.path.display(),
                human(self.limit),
                self.what
            )));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// An I/O error names the file and its cause once (the cause is the error's source,
    /// which `{:#}` prints after the message).
    #[test]
    fn io_errors_print_their_cause_once() {
        let e = anyhow::Error::from(OutputError::Io {
            path: "out/metrics.json".into(),
            source: io::Error::other("the disk went away"),
        });
        assert_eq!(
            format!("{e:#}"),
            "cannot read out/metrics.json: the disk went away"
        );
    }

    fn fifo(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
    }

    #[test]
    fn reads_a_regular_file_within_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.json");
        std::fs::write(&p, b"{\"f1\": 1}").unwrap();
        assert_eq!(
            read_limited(&p, 100, "metrics.json").unwrap(),
            b"{\"f1\": 1}"
        );
        assert!(present(&p));
    }

    #[test]
    fn refuses_links_fifos_sockets_and_devices_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let pipe = dir.path().join("pipe.json");
        fifo(&pipe);
        let sock = dir.path().join("sock.json");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink("/nonexistent/x", &dangling).unwrap();
        let dev = Path::new("/dev/null");
        for (path, what) in [
            (&link, "a symbolic link"),
            (&pipe, "a FIFO (named pipe)"),
            (&sock, "a socket"),
            (&dangling, "a symbolic link"),
            (&dev.to_path_buf(), "a character device"),
        ] {
            let e = read_limited(path, 100, "metrics.json")
                .unwrap_err()
                .to_string();
            assert!(e.contains(&path.display().to_string()), "{e}");
            assert!(e.contains(what), "{path:?}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert!(present(&dangling));
        assert!(!present(&dir.path().join("absent")));
        assert!(read_limited(&dir.path().join("absent"), 1, "x")
            .unwrap_err()
            .is_not_found());
    }

    #[test]
    fn refuses_a_link_in_a_directory_component() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("f"), "s3cret").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("sub")).unwrap();
        let root = StepDir::open(dir.path()).unwrap();
        let e = root
            .open_file(Path::new("sub/f"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("a symbolic link"), "{e}");
        assert!(root.open_file(Path::new("../x")).is_err());
        // The step directory itself replaced by a link is refused too.
        assert!(StepDir::open(&dir.path().join("sub")).is_err());
    }

    #[test]
    fn a_sparse_file_over_the_limit_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.json");
        let f = File::create(&p).unwrap();
        f.set_len(2 << 30).unwrap();
        let start = std::time::Instant::now();
        let e = read_limited(&p, METRICS_LIMIT, "metrics.json")
            .unwrap_err()
            .to_string();
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        assert!(
            e.contains("2147483648 bytes, larger than the 1 MiB limit for metrics.json"),
            "{e}"
        );
    }

    #[test]
    fn a_file_growing_past_the_limit_while_read_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("predictions.csv");
        std::fs::write(&p, b"12345").unwrap();
        let mut r = open_limited(&p, 8, "predictions.csv").unwrap();
        std::fs::write(&p, b"1234567890").unwrap();
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert!(matches!(r.error(e), OutputError::TooLarge { .. }));
    }

    #[test]
    fn exact_reads_the_fstat_size_and_notices_changes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m"), b"abcdef").unwrap();
        let root = StepDir::open(dir.path()).unwrap();
        let mut out = Vec::new();
        root.open_file(Path::new("m"))
            .unwrap()
            .exact()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"abcdef");

        let grows = root.open_file(Path::new("m")).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("m"))
            .unwrap()
            .write_all(b"more")
            .unwrap();
        let e = grows
            .exact()
            .read_to_end(&mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("changed while it was read (it grew)"), "{e}");

        let shrinks = root.open_file(Path::new("m")).unwrap();
        File::options()
            .write(true)
            .open(dir.path().join("m"))
            .unwrap()
            .set_len(2)
            .unwrap();
        let e = shrinks
            .exact()
            .read_to_end(&mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("(it shrank)"), "{e}");
    }

    #[test]
    fn walk_lists_files_and_directories_and_refuses_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), "x").unwrap();
        std::fs::write(dir.path().join("z"), "x").unwrap();
        let root = StepDir::open(dir.path()).unwrap();
        let listed: Vec<(String, bool)> = root
            .walk()
            .unwrap()
            .into_iter()
            .map(|(p, d)| (p.display().to_string(), d))
            .collect();
        assert_eq!(
            listed,
            [
                ("a".into(), true),
                ("a/b".into(), true),
                ("a/b/f".into(), false),
                ("z".into(), false)
            ]
        );
        fifo(&dir.path().join("a/b/pipe"));
        let e = root.walk().unwrap_err().to_string();
        assert!(e.contains("a/b/pipe is a FIFO (named pipe)"), "{e}");
        std::fs::remove_file(dir.path().join("a/b/pipe")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("a/etc")).unwrap();
        let e = root.walk().unwrap_err().to_string();
        assert!(e.contains("a/etc is a symbolic link"), "{e}");
    }
}
