//! Streaming dataset scans: CSV (header row, types inferred over the whole file) and Parquet,
//! one pass, memory bounded by the sample and the category tables, never by the file size.
//!
//! Types: a column is `integer` while every non-null value parses as an i64, `float` once one
//! needs a decimal point or exponent, `boolean` when every value is true/false, and
//! `categorical` as soon as a value is none of those (the type widens, it never fails). Nulls:
//! empty fields and NA, N/A, NaN, nan, null, NULL, None. A column that changes type part-way
//! is reported as the wider type; the schema check then compares it with the reference.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// Column types, as stored in references and reported by checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Integer,
    Float,
    Boolean,
    Categorical,
}

impl Kind {
    pub fn is_numeric(self) -> bool {
        matches!(self, Kind::Integer | Kind::Float)
    }
}

/// Distinct values tracked per column before it counts as high-cardinality.
pub const MAX_CATEGORIES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: the file is empty (a CSV dataset needs a header row)", .path.display())]
    Empty { path: PathBuf },
    #[error("{}:{line}: expected {expected} fields as in the header, found {found}{hint}", .path.display())]
    Ragged {
        path: PathBuf,
        line: u64,
        expected: usize,
        found: usize,
        hint: &'static str,
    },
    #[error("{}:{line}: column {column:?} is not UTF-8 text (byte {byte} of the field)", .path.display())]
    NotUtf8 {
        path: PathBuf,
        line: u64,
        column: String,
        byte: usize,
    },
    #[error("{}:{line}: {message}", .path.display())]
    Csv {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}: not a readable Parquet file: {message}", .path.display())]
    Parquet { path: PathBuf, message: String },
    #[error("{}: columns {found:?} differ from {first:?} in {}", .path.display(), .first_file.display())]
    Mismatch {
        path: PathBuf,
        found: Vec<String>,
        first: Vec<String>,
        first_file: PathBuf,
    },
    #[error("{}: duplicate column name {name:?} in the header", .path.display())]
    DuplicateColumn { path: PathBuf, name: String },
}

fn is_null(field: &str) -> bool {
    matches!(
        field,
        "" | "NA" | "N/A" | "NaN" | "nan" | "null" | "NULL" | "None"
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    AllNull,
    Integer,
    Float,
    Boolean,
    Categorical,
}

/// Running statistics of one column.
#[derive(Debug, Clone)]
pub struct ColumnScan {
    pub name: String,
    state: State,
    pub nulls: u64,
    pub count: u64,
    mean: f64,
    m2: f64,
    pub min: f64,
    pub max: f64,
    /// Value → count, until more than MAX_CATEGORIES distinct values are seen.
    pub counts: Option<HashMap<String, u64>>,
}

impl ColumnScan {
    fn new(name: String) -> ColumnScan {
        ColumnScan {
            name,
            state: State::AllNull,
            nulls: 0,
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            counts: Some(HashMap::new()),
        }
    }

    pub fn kind(&self) -> Kind {
        match self.state {
            State::Integer => Kind::Integer,
            State::Float => Kind::Float,
            State::Boolean => Kind::Boolean,
            // A column with no values at all has no type to drift; call it categorical.
            State::AllNull | State::Categorical => Kind::Categorical,
        }
    }

    pub fn mean(&self) -> Option<f64> {
        (self.kind().is_numeric() && self.count > 0).then_some(self.mean)
    }

    /// Sample standard deviation (n − 1), as pandas reports it.
    pub fn std(&self) -> Option<f64> {
        (self.kind().is_numeric() && self.count > 1)
            .then(|| (self.m2 / (self.count - 1) as f64).sqrt())
    }

    fn push(&mut self, field: &str) {
        if is_null(field) {
            self.nulls += 1;
            return;
        }
        self.count += 1;
        // Widen the type as needed.
        let number = match self.state {
            State::Categorical => None,
            State::Boolean => {
                if !matches!(
                    field,
                    "true" | "false" | "True" | "False" | "TRUE" | "FALSE"
                ) {
                    self.state = State::Categorical;
                }
                None
            }
            State::AllNull | State::Integer | State::Float => {
                if self.state != State::Float && field.parse::<i64>().is_ok() {
                    self.state = State::Integer;
                    field.parse::<f64>().ok()
                } else if let Some(x) = field.parse::<f64>().ok().filter(|x| x.is_finite()) {
                    self.state = State::Float;
                    Some(x)
                } else if self.state == State::AllNull
                    && matches!(
                        field,
                        "true" | "false" | "True" | "False" | "TRUE" | "FALSE"
                    )
                {
                    self.state = State::Boolean;
                    None
                } else {
                    self.state = State::Categorical;
                    None
                }
            }
        };
        if let Some(x) = number {
            // Welford: stable mean and variance in one pass.
            let n = self.count as f64;
            let d = x - self.mean;
            self.mean += d / n;
            self.m2 += d * (x - self.mean);
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        if let Some(counts) = &mut self.counts {
            if let Some(c) = counts.get_mut(field) {
                *c += 1;
            } else if counts.len() < MAX_CATEGORIES {
                counts.insert(field.to_string(), 1);
            } else {
                self.counts = None;
            }
        }
    }
}

/// A uniform sample of rows (Vitter's Algorithm L: the random draws are few and the result
/// depends only on the seed and the row order).
#[derive(Debug)]
struct Reservoir {
    capacity: usize,
    rows: Vec<Vec<Option<String>>>,
    rng: ChaCha8Rng,
    seen: u64,
    next: u64,
    w: f64,
}

impl Reservoir {
    fn new(capacity: usize, seed: u64) -> Reservoir {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let w = if capacity > 0 {
            (rng.random::<f64>().ln() / capacity as f64).exp()
        } else {
            0.0
        };
        let mut r = Reservoir {
            capacity,
            rows: Vec::new(),
            rng,
            seen: 0,
            next: capacity as u64,
            w,
        };
        r.skip();
        r
    }

    fn skip(&mut self) {
        if self.capacity == 0 {
            self.next = u64::MAX;
            return;
        }
        let u: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
        let gap = (u.ln() / (1.0 - self.w).ln()).floor();
        self.next = self.next.saturating_add(if gap.is_finite() {
            gap as u64
        } else {
            u64::MAX / 2
        }) + 1;
    }

    /// Whether row number `self.seen` goes in, and where.
    fn slot(&mut self) -> Option<usize> {
        let i = self.seen;
        self.seen += 1;
        if (i as usize) < self.capacity {
            return Some(i as usize);
        }
        if i + 1 == self.next {
            let slot = self.rng.random_range(0..self.capacity);
            let u: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
            self.w *= (u.ln() / self.capacity as f64).exp();
            self.skip();
            return Some(slot);
        }
        None
    }
}

/// Everything one pass over a dataset learns.
#[derive(Debug)]
pub struct Scan {
    pub rows: u64,
    pub columns: Vec<ColumnScan>,
    /// Sampled rows, fields as text (None for nulls).
    pub sample: Vec<Vec<Option<String>>>,
}

pub struct Scanner {
    pub columns: Vec<ColumnScan>,
    reservoir: Reservoir,
    rows: u64,
}

impl Scanner {
    pub fn new(header: Vec<String>, sample_size: usize, seed: u64) -> Scanner {
        Scanner {
            columns: header.into_iter().map(ColumnScan::new).collect(),
            reservoir: Reservoir::new(sample_size, seed),
            rows: 0,
        }
    }

    fn row<'a>(&mut self, fields: impl Iterator<Item = &'a str> + Clone) {
        self.rows += 1;
        for (col, f) in self.columns.iter_mut().zip(fields.clone()) {
            col.push(f);
        }
        if let Some(slot) = self.reservoir.slot() {
            let row: Vec<Option<String>> = fields
                .map(|f| (!is_null(f)).then(|| f.to_string()))
                .collect();
            if slot == self.reservoir.rows.len() {
                self.reservoir.rows.push(row);
            } else {
                self.reservoir.rows[slot] = row;
            }
        }
    }

    pub fn finish(self) -> Scan {
        Scan {
            rows: self.rows,
            columns: self.columns,
            sample: self.reservoir.rows,
        }
    }
}

/// Reads one CSV file into the scanner (the header must match `expected` when given).
fn scan_csv(
    path: &Path,
    scanner: &mut Option<Scanner>,
    sample_size: usize,
    seed: u64,
    first: &mut Option<(PathBuf, Vec<String>)>,
) -> Result<(), ReadError> {
    let file = std::fs::File::open(path).map_err(|source| ReadError::Io {
        path: path.into(),
        source,
    })?;
    let file = std::io::BufReader::with_capacity(1 << 20, file);
    let tail = || ends_with_closing_quote(path);
    scan_csv_from(path, file, tail, scanner, sample_size, seed, first)
}

/// Scans CSV text held in memory as [`scan`] scans a CSV file (`name` names it in errors).
pub fn scan_csv_bytes(
    name: &Path,
    bytes: &[u8],
    sample_size: usize,
    seed: u64,
) -> Result<Scan, ReadError> {
    let mut scanner = None;
    let tail = || Ok(closes_quote(&bytes[bytes.len().saturating_sub(64)..]));
    scan_csv_from(
        name,
        bytes,
        tail,
        &mut scanner,
        sample_size,
        seed,
        &mut None,
    )?;
    scanner
        .map(Scanner::finish)
        .ok_or_else(|| ReadError::Empty { path: name.into() })
}

/// The CSV parse behind [`scan_csv`]; `tail` says whether the input's last non-blank byte
/// closes a quoted field.
fn scan_csv_from(
    path: &Path,
    input: impl std::io::Read,
    tail: impl FnOnce() -> Result<bool, ReadError>,
    scanner: &mut Option<Scanner>,
    sample_size: usize,
    seed: u64,
    first: &mut Option<(PathBuf, Vec<String>)>,
) -> Result<(), ReadError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(input);
    let mut record = csv::ByteRecord::new();
    let read =
        |reader: &mut csv::Reader<_>, record: &mut csv::ByteRecord| -> Result<bool, ReadError> {
            reader.read_byte_record(record).map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                match e.into_kind() {
                    csv::ErrorKind::Io(source) => ReadError::Io {
                        path: path.into(),
                        source,
                    },
                    other => ReadError::Csv {
                        path: path.into(),
                        line,
                        message: format!("{other:?}"),
                    },
                }
            })
        };
    if !read(&mut reader, &mut record)? {
        return Err(ReadError::Empty { path: path.into() });
    }
    let header = utf8_fields(path, &record, None, 1)?;
    let mut seen = std::collections::HashSet::new();
    for h in &header {
        if !seen.insert(h.clone()) {
            return Err(ReadError::DuplicateColumn {
                path: path.into(),
                name: h.clone(),
            });
        }
    }
    match first {
        Some((first_file, first_header)) if *first_header != header => {
            return Err(ReadError::Mismatch {
                path: path.into(),
                found: header,
                first: first_header.clone(),
                first_file: first_file.clone(),
            })
        }
        Some(_) => {}
        None => *first = Some((path.to_path_buf(), header.clone())),
    }
    let scanner = scanner.get_or_insert_with(|| Scanner::new(header.clone(), sample_size, seed));
    let width = header.len();
    // The csv parser accepts a quote left open until the end of the file as one long field;
    // remember where the last multi-line field started to report it.
    let mut open_quote_at: Option<u64> = None;
    while read(&mut reader, &mut record)? {
        let line = record.position().map_or(0, |p| p.line());
        open_quote_at = record.iter().any(|f| f.contains(&b'\n')).then_some(line);
        if record.len() != width {
            if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
                continue; // a blank line
            }
            let hint = if record.iter().any(|f| f.contains(&b'"')) || record.len() < width {
                " (an unbalanced quote or a missing separator?)"
            } else {
                ""
            };
            return Err(ReadError::Ragged {
                path: path.into(),
                line,
                expected: width,
                found: record.len(),
                hint,
            });
        }
        let mut fields: Vec<&str> = Vec::with_capacity(width);
        for (i, f) in record.iter().enumerate() {
            match std::str::from_utf8(f) {
                Ok(s) => fields.push(s),
                Err(e) => {
                    return Err(ReadError::NotUtf8 {
                        path: path.into(),
                        line,
                        column: header[i].clone(),
                        byte: e.valid_up_to(),
                    })
                }
            }
        }
        scanner.row(fields.iter().copied());
    }
    if let Some(line) = open_quote_at {
        if !tail()? {
            return Err(ReadError::Csv {
                path: path.into(),
                line,
                message: "a quoted field is never closed (unbalanced \")".into(),
            });
        }
    }
    Ok(())
}

/// Whether the file's last non-blank byte closes a quoted field.
fn ends_with_closing_quote(path: &Path) -> Result<bool, ReadError> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |source| ReadError::Io {
        path: path.into(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(64)))
        .map_err(io)?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).map_err(io)?;
    Ok(closes_quote(&tail))
}

fn closes_quote(tail: &[u8]) -> bool {
    tail.iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b'"')
}

fn utf8_fields(
    path: &Path,
    record: &csv::ByteRecord,
    header: Option<&[String]>,
    line: u64,
) -> Result<Vec<String>, ReadError> {
    record
        .iter()
        .enumerate()
        .map(|(i, f)| {
            std::str::from_utf8(f)
                .map(str::to_string)
                .map_err(|e| ReadError::NotUtf8 {
                    path: path.into(),
                    line,
                    column: header
                        .and_then(|h| h.get(i).cloned())
                        .unwrap_or_else(|| format!("#{}", i + 1)),
                    byte: e.valid_up_to(),
                })
        })
        .collect()
}

/// Reads one Parquet file batch by batch into the scanner.
fn scan_parquet(
    path: &Path,
    scanner: &mut Option<Scanner>,
    sample_size: usize,
    seed: u64,
    first: &mut Option<(PathBuf, Vec<String>)>,
) -> Result<(), ReadError> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bad = |message: String| ReadError::Parquet {
        path: path.into(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|source| ReadError::Io {
        path: path.into(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(e.to_string()))?;
    let header: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    match first {
        Some((first_file, first_header)) if *first_header != header => {
            return Err(ReadError::Mismatch {
                path: path.into(),
                found: header,
                first: first_header.clone(),
                first_file: first_file.clone(),
            })
        }
        Some(_) => {}
        None => *first = Some((path.to_path_buf(), header.clone())),
    }
    let scanner = scanner.get_or_insert_with(|| Scanner::new(header.clone(), sample_size, seed));
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let options = FormatOptions::default().with_null("");
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let mut texts: Vec<String> = vec![String::new(); formatters.len()];
        for row in 0..batch.num_rows() {
            for (t, f) in texts.iter_mut().zip(&formatters) {
                t.clear();
                use std::fmt::Write;
                let _ = write!(t, "{}", f.value(row));
            }
            scanner.row(texts.iter().map(String::as_str));
        }
    }
    Ok(())
}

/// Scans a dataset (file or directory of .csv/.parquet files in sorted order).
pub fn scan(path: &Path, sample_size: usize, seed: u64) -> anyhow::Result<Scan> {
    let files = super::digest::dataset_files(path)?;
    let mut scanner = None;
    let mut first = None;
    for (_, file) in &files {
        let parquet = file.extension().and_then(|e| e.to_str()) == Some("parquet");
        if parquet {
            scan_parquet(file, &mut scanner, sample_size, seed, &mut first)?;
        } else {
            scan_csv(file, &mut scanner, sample_size, seed, &mut first)?;
        }
    }
    scanner
        .map(Scanner::finish)
        .ok_or_else(|| anyhow::anyhow!("dataset {} has no data files", path.display()))
}

#[cfg(test)]
mod tests;
