//! Accepted references: `.mlops/data/<dataset>.json`, committed. A reference is what the team
//! last accepted for a dataset — its digest, schema, profile and sample — and what
//! `mlops data check` compares new data with. `mlops data accept` writes it, atomically.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use serde_json::value::{to_raw_value, RawValue};

use super::profile::{ColumnSample, Profile, Sample};
use super::read::Kind;

/// Version of the reference file format.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub version: u32,
    pub dataset: String,
    /// The dataset's path as written in mlops.yaml when it was accepted.
    pub path: String,
    pub digest: String,
    pub accepted_at: String,
    /// The commit checked out when it was accepted (None outside git).
    #[serde(default)]
    pub git_commit: Option<String>,
    /// Column → type, in file order.
    pub schema: IndexMap<String, Kind>,
    pub profile: Profile,
    pub sample: Sample,
}

/// Where a dataset's reference lives.
pub fn path_for(root: &Path, dataset: &str) -> PathBuf {
    root.join(".mlops")
        .join("data")
        .join(format!("{dataset}.json"))
}

/// The reference of a dataset, None when none was accepted yet.
pub fn load(root: &Path, dataset: &str) -> Result<Option<Reference>> {
    let path = path_for(root, dataset);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let reference: Reference = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a valid dataset reference; restore it from git or run `mlops data accept --dataset {dataset}`",
            path.display()
        )
    })?;
    if reference.version != FORMAT_VERSION {
        anyhow::bail!(
            "{}: reference format version {} is not supported (this mlops reads version {FORMAT_VERSION})",
            path.display(),
            reference.version
        );
    }
    Ok(Some(reference))
}

/// Writes the reference atomically. Objects are indented; arrays of values stay on one line,
/// so a 100,000-value sample is one line, not 100,000.
pub fn save(root: &Path, reference: &Reference) -> Result<PathBuf> {
    let path = path_for(root, &reference.dataset);
    let saved = Saved::of(reference)?;
    crate::fsutil::write_atomic_with(&path, |out| {
        let mut ser = serde_json::Serializer::with_formatter(&mut *out, CompactArrays::default());
        saved.serialize(&mut ser).map_err(std::io::Error::other)?;
        out.write_all(b"\n")
    })?;
    Ok(path)
}

/// A reference as it is written: the same fields in the same order, each column's sample
/// arrays (most of the file's bytes) printed beforehand, the columns on every core. Arrays
/// are written compactly, so a fragment prints as the array would in place.
#[derive(Serialize)]
struct Saved<'a> {
    version: u32,
    dataset: &'a str,
    path: &'a str,
    digest: &'a str,
    accepted_at: &'a str,
    git_commit: &'a Option<String>,
    schema: &'a IndexMap<String, Kind>,
    profile: &'a Profile,
    sample: SavedSample<'a>,
}

#[derive(Serialize)]
struct SavedSample<'a> {
    size: usize,
    seed: u64,
    rows: usize,
    columns: IndexMap<&'a str, SavedColumn>,
}

#[derive(Serialize)]
struct SavedColumn {
    #[serde(skip_serializing_if = "Option::is_none")]
    numbers: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    texts: Option<Box<RawValue>>,
}

impl<'a> Saved<'a> {
    fn of(r: &'a Reference) -> Result<Saved<'a>> {
        let columns: Vec<(&String, &ColumnSample)> = r.sample.columns.iter().collect();
        let printed = super::per_core(columns.len(), |part| {
            columns[part]
                .iter()
                .map(|&(name, c)| {
                    let column = SavedColumn {
                        numbers: c.numbers.as_ref().map(to_raw_value).transpose()?,
                        texts: c.texts.as_ref().map(to_raw_value).transpose()?,
                    };
                    Ok((name.as_str(), column))
                })
                .collect::<Vec<serde_json::Result<_>>>()
        });
        let saved = printed
            .into_iter()
            .collect::<serde_json::Result<IndexMap<_, _>>>()?;
        Ok(Saved {
            version: r.version,
            dataset: &r.dataset,
            path: &r.path,
            digest: &r.digest,
            accepted_at: &r.accepted_at,
            git_commit: &r.git_commit,
            schema: &r.schema,
            profile: &r.profile,
            sample: SavedSample {
                size: r.sample.size,
                seed: r.sample.seed,
                rows: r.sample.rows,
                columns: saved,
            },
        })
    }
}

/// serde_json's pretty printer, except inside arrays, which are written compactly.
#[derive(Default)]
struct CompactArrays {
    indent: usize,
    in_array: usize,
    has_value: bool,
}

impl CompactArrays {
    fn newline<W: ?Sized + std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.indent {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for CompactArrays {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.in_array += 1;
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.in_array -= 1;
        w.write_all(b"]")
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b",")
        }
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.has_value = false;
        if self.in_array == 0 {
            self.indent += 1;
        }
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        if self.in_array == 0 {
            self.indent -= 1;
            if self.has_value {
                self.newline(w)?;
            }
        }
        self.has_value = true;
        w.write_all(b"}")
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        if self.in_array == 0 {
            self.newline(w)
        } else {
            Ok(())
        }
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        if self.in_array == 0 {
            w.write_all(b": ")
        } else {
            w.write_all(b":")
        }
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_reference_reads_back_and_keeps_samples_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("d.csv");
        // Text that JSON escapes: a quote, a tab, a control character, non-ASCII.
        std::fs::write(&csv, "x,c\n1.5,a\n2.25,\"b\"\"q\"\n-3,\u{1}\t\u{e9}\n").unwrap();
        let scan = crate::data::read::scan(&csv, 100, 0).unwrap();
        let (profile, sample) = crate::data::profile::build(&scan, 100, 0);
        let reference = Reference {
            version: FORMAT_VERSION,
            dataset: "train".into(),
            path: "d.csv".into(),
            digest: "sha256:00".into(),
            accepted_at: "2026-01-01T00:00:00Z".into(),
            git_commit: None,
            schema: profile
                .columns
                .iter()
                .map(|(k, c)| (k.clone(), c.kind))
                .collect(),
            profile,
            sample,
        };
        let path = save(dir.path(), &reference).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // Written as the Reference itself serializes, byte for byte.
        let mut plain = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut plain, CompactArrays::default());
        reference.serialize(&mut ser).unwrap();
        assert_eq!(text.trim_end(), String::from_utf8(plain).unwrap());
        assert!(text.contains("\"numbers\": [-3.0,1.5,2.25]"), "{text}");
        assert!(
            text.contains("\n  \"schema\": {\n    \"x\": \"float\","),
            "{text}"
        );
        assert_eq!(load(dir.path(), "train").unwrap(), Some(reference));
        assert_eq!(load(dir.path(), "test").unwrap(), None);
        std::fs::write(&path, "{").unwrap();
        let err = format!("{:#}", load(dir.path(), "train").unwrap_err());
        assert!(err.contains("mlops data accept --dataset train"), "{err}");
    }
}
