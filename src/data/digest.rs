//! Dataset digests: sha256 over the dataset's files in sorted order — each file's path relative
//! to the dataset, its length and its bytes — streamed in 1 MiB reads (sha2 uses SHA-NI where
//! the CPU has it). A single-file dataset hashes under its file name, so moving the dataset's
//! directory does not change its digest, and renaming a file inside it does.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::oci::digest::{Digest, Hasher};
use anyhow::{Context, Result};

/// The data files of a dataset: the file itself, or the .csv/.parquet files under a directory
/// (recursively), sorted by relative path.
pub fn dataset_files(path: &Path) -> Result<Vec<(String, PathBuf)>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read dataset {}", path.display()))?;
    if meta.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![(name, path.to_path_buf())]);
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let entry = entry?;
            let p = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("csv" | "parquet")
            ) {
                let rel = p
                    .strip_prefix(path)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                files.push((rel, p));
            }
        }
    }
    files.sort();
    if files.is_empty() {
        anyhow::bail!(
            "dataset directory {} holds no .csv or .parquet file",
            path.display()
        );
    }
    Ok(files)
}

/// `sha256:<hex>` of a dataset (file or directory).
pub fn digest_path(path: &Path) -> Result<Digest> {
    let mut hasher = Hasher::sha256();
    let mut buf = vec![0u8; 1 << 20];
    for (rel, file) in dataset_files(path)? {
        let mut f = std::fs::File::open(&file)
            .with_context(|| format!("cannot open {}", file.display()))?;
        let len = f.metadata()?.len();
        file_prefix(&mut hasher, &rel, len);
        loop {
            let n = f
                .read(&mut buf)
                .with_context(|| format!("cannot read {}", file.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(hasher.finish())
}

/// What the digest covers before a file's bytes: its relative path, a zero byte, its length.
pub(crate) fn file_prefix(hasher: &mut Hasher, rel: &str, len: u64) {
    hasher.update(rel.as_bytes());
    hasher.update(&[0u8]);
    hasher.update(&len.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_stable_and_content_sensitive() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        std::fs::write(&a, "x\n1\n").unwrap();
        let d1 = digest_path(&a).unwrap();
        assert_eq!(d1, digest_path(&a).unwrap());
        assert!(d1.as_str().starts_with("sha256:") && d1.as_str().len() == 71);
        std::fs::write(&a, "x\n2\n").unwrap();
        assert_ne!(d1, digest_path(&a).unwrap());
        // A directory dataset covers its data files in order, ignoring other files.
        std::fs::write(dir.path().join("b.csv"), "x\n3\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let files = dataset_files(dir.path()).unwrap();
        assert_eq!(
            files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
            ["a.csv", "b.csv"]
        );
    }
}
