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

mod columnar;
mod number;
mod parallel;
mod sample;

pub(crate) use number::parse_float;
pub use sample::{Cell, SampleRow};

use crate::oci::digest::{Digest, Hasher};
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
    #[error("cannot read {}", .path.display())]
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
    /// Mean and sum of squared deviations of the first `joined` numbers; the numbers after
    /// them wait in `pending` and join in batches (a division per value is a long chain).
    mean: f64,
    m2: f64,
    joined: u64,
    pending: Vec<f64>,
    pub min: f64,
    pub max: f64,
    /// Value → count, until more than MAX_CATEGORIES distinct values are seen.
    pub counts: Option<Counts>,
}

/// Category counts (foldhash: fast on short keys, and seeded per process so crafted values
/// cannot force collisions).
pub type Counts = HashMap<String, u64, foldhash::fast::RandomState>;

impl ColumnScan {
    fn new(name: String) -> ColumnScan {
        ColumnScan {
            name,
            state: State::AllNull,
            nulls: 0,
            count: 0,
            mean: 0.0,
            m2: 0.0,
            joined: 0,
            pending: Vec::new(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            counts: Some(Counts::default()),
        }
    }

    /// A fresh column for one chunk of a parallel scan; `counted` is false once the whole
    /// column is known to have more than MAX_CATEGORIES distinct values.
    fn for_chunk(name: &str, counted: bool) -> ColumnScan {
        let mut c = ColumnScan::new(name.to_string());
        if !counted {
            c.counts = None;
        }
        c
    }

    /// Folds the statistics of the next rows (`later`, scanned on their own) into these.
    /// Types widen as one pass would widen them; moments combine by Chan's formula, exactly
    /// the one-pass figures when either side is empty.
    fn merge(&mut self, mut later: ColumnScan) {
        use State::*;
        self.flush();
        later.flush();
        self.state = match (self.state, later.state) {
            (a, AllNull) => a,
            (AllNull, b) => b,
            (Categorical, _) | (_, Categorical) => Categorical,
            (Boolean, Boolean) => Boolean,
            (Boolean, _) | (_, Boolean) => Categorical,
            (Float, _) | (_, Float) => Float,
            (Integer, Integer) => Integer,
        };
        (self.mean, self.m2) = chan(
            (self.joined, self.mean, self.m2),
            (later.joined, later.mean, later.m2),
        );
        self.joined += later.joined;
        self.count += later.count;
        self.nulls += later.nulls;
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.counts = match (self.counts.take(), later.counts) {
            (Some(mut a), Some(b)) => {
                for (k, v) in b {
                    *a.entry(k).or_insert(0) += v;
                }
                (a.len() <= MAX_CATEGORIES).then_some(a)
            }
            _ => None,
        };
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

    /// Count, mean and sum of squared deviations of every number so far.
    fn moments(&self) -> (u64, f64, f64) {
        let joined = (self.joined, self.mean, self.m2);
        if self.pending.is_empty() {
            return joined;
        }
        let b = Moments::of(&self.pending);
        let n = self.pending.len() as u64;
        let (mean, m2) = chan(joined, (n, b.mean, b.m2));
        (self.joined + n, mean, m2)
    }

    pub fn mean(&self) -> Option<f64> {
        let (n, mean, _) = self.moments();
        (self.kind().is_numeric() && n > 0).then_some(mean)
    }

    /// Sample standard deviation (n − 1), as pandas reports it.
    pub fn std(&self) -> Option<f64> {
        let (n, _, m2) = self.moments();
        (self.kind().is_numeric() && n > 1).then(|| (m2 / (n - 1) as f64).sqrt())
    }

    /// The pending numbers into the moments.
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let b = Moments::of(&self.pending);
            self.join_moments(b);
            self.pending.clear();
        }
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
                if let Some(i) = (self.state != State::Float)
                    .then(|| field.parse::<i64>().ok())
                    .flatten()
                {
                    self.state = State::Integer;
                    // Both roundings of the same integer agree; only "-0" needs its sign.
                    Some(if i == 0 && field.starts_with('-') {
                        -0.0
                    } else {
                        i as f64
                    })
                } else if let Some(x) = parse_float(field).filter(|x| x.is_finite()) {
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
            self.add_number(x);
        }
        self.count_value(field, 1);
    }

    /// Non-null finite numbers of a typed column, all at once: as `push_int` (`float` false)
    /// or `push_float` of each, category keys left to the caller. The moments of the batch
    /// (two passes over it) join the running ones by Chan's formula: Welford's figures up to
    /// rounding.
    fn push_numbers(&mut self, values: &[f64], float: bool) {
        if values.is_empty() {
            return;
        }
        match self.state {
            State::Categorical => {}
            State::Boolean => self.state = State::Categorical,
            State::AllNull | State::Integer | State::Float => {
                if float {
                    self.state = State::Float;
                } else if self.state != State::Float {
                    self.state = State::Integer;
                }
                self.flush();
                let batch = Moments::of(values);
                self.min = self.min.min(batch.min);
                self.max = self.max.max(batch.max);
                self.join_moments(batch);
            }
        }
        self.count += values.len() as u64;
    }

    fn join_moments(&mut self, b: Moments) {
        let n = b.n as u64;
        (self.mean, self.m2) = chan((self.joined, self.mean, self.m2), (n, b.mean, b.m2));
        self.joined += n;
    }

    /// Adds `n` to the count of `key` (as `n` calls of `count_value`, the cap applied once).
    fn count_value_n(&mut self, key: String, n: u64) {
        if let Some(counts) = &mut self.counts {
            *counts.entry(key).or_insert(0) += n;
            if counts.len() > MAX_CATEGORIES {
                self.counts = None;
            }
        }
    }

    fn add_number(&mut self, x: f64) {
        const BATCH: usize = 4096;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(BATCH);
        }
        self.pending.push(x);
        if self.pending.len() == BATCH {
            self.flush();
        }
    }

    /// Counts `n` more of `field`.
    fn count_value(&mut self, field: &str, n: u64) {
        if let Some(counts) = &mut self.counts {
            if let Some(c) = counts.get_mut(field) {
                *c += n;
            } else if counts.len() < MAX_CATEGORIES {
                counts.insert(field.to_string(), n);
            } else {
                self.counts = None;
            }
        }
    }
}

/// Chan's formula: the mean and sum of squared deviations of two sets of numbers, from each
/// one's (count, mean, sum of squared deviations); exact when either side is empty.
fn chan(a: (u64, f64, f64), b: (u64, f64, f64)) -> (f64, f64) {
    match (a.0, b.0) {
        (_, 0) => (a.1, a.2),
        (0, _) => (b.1, b.2),
        (na, nb) => {
            let (na, nb) = (na as f64, nb as f64);
            let n = na + nb;
            let d = b.1 - a.1;
            (a.1 + d * nb / n, a.2 + b.2 + d * d * na * nb / n)
        }
    }
}

/// Count, mean, sum of squared deviations, min and max of a batch of numbers.
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Moments {
    /// Two passes: the sum with the extremes, then the squared deviations. Four lanes each:
    /// the sums vectorise, and pairwise-ish summing loses less.
    fn of(values: &[f64]) -> Moments {
        let mut quads = values.chunks_exact(4);
        let mut acc = [0.0f64; 4];
        // The values are finite: plain comparisons suffice.
        let (mut lo, mut hi) = ([f64::INFINITY; 4], [f64::NEG_INFINITY; 4]);
        for q in &mut quads {
            for k in 0..4 {
                acc[k] += q[k];
                lo[k] = if q[k] < lo[k] { q[k] } else { lo[k] };
                hi[k] = if q[k] > hi[k] { q[k] } else { hi[k] };
            }
        }
        let rest = quads.remainder();
        let tail: f64 = rest.iter().sum();
        let (mut min, mut max) = (
            lo[0].min(lo[1]).min(lo[2].min(lo[3])),
            hi[0].max(hi[1]).max(hi[2].max(hi[3])),
        );
        for &x in rest {
            min = min.min(x);
            max = max.max(x);
        }
        let n = values.len() as f64;
        let mean = ((acc[0] + acc[1]) + (acc[2] + acc[3]) + tail) / n;
        let mut acc = [0.0f64; 4];
        let mut quads = values.chunks_exact(4);
        for q in &mut quads {
            for (a, &x) in acc.iter_mut().zip(q) {
                *a += (x - mean) * (x - mean);
            }
        }
        let tail: f64 = quads
            .remainder()
            .iter()
            .map(|&x| (x - mean) * (x - mean))
            .sum();
        let m2 = (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail;
        Moments {
            n,
            mean,
            m2,
            min,
            max,
        }
    }
}

/// A sampled row as the reservoir holds it: most rows taken are replaced later, so a CSV
/// row is kept as its record's bytes and split into fields only if it stays to the end.
#[derive(Debug)]
enum Kept {
    Row(SampleRow),
    Record(Box<[u8]>),
}

/// A uniform sample of rows (Vitter's Algorithm L: the random draws are few and the result
/// depends only on the seed and the row order).
#[derive(Debug)]
struct Reservoir {
    capacity: usize,
    rows: Vec<Kept>,
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

    /// The rows of the next `n` offered that are still in the sample after them, as
    /// (row among the `n`, slot) by row: the reservoir advances as if each had been offered,
    /// and the caller places those rows (with `place`, in slot order) once it has them.
    fn plan(&mut self, n: u64) -> Vec<(u64, usize)> {
        let start = self.seen;
        let end = start.saturating_add(n);
        // Slot -> the last of the `n` rows placed in it (a row of a later slot write wins).
        const EMPTY: u64 = u64::MAX;
        let mut kept: Vec<u64> = Vec::new();
        let mut put = |slot: usize, row: u64| {
            if slot >= kept.len() {
                kept.resize(slot + 1, EMPTY);
            }
            kept[slot] = row;
        };
        while self.seen < end {
            if (self.seen as usize) < self.capacity {
                put(self.seen as usize, self.seen - start);
                self.seen += 1;
                continue;
            }
            // The next row taken is row `next - 1`: skip the rows before it.
            let taken = self.next.saturating_sub(1);
            if taken >= end {
                self.seen = end;
                break;
            }
            self.seen = taken;
            if let Some(slot) = self.slot() {
                put(slot, taken - start);
            }
        }
        let mut plan: Vec<(u64, usize)> = kept
            .into_iter()
            .enumerate()
            .filter(|&(_, r)| r != EMPTY)
            .map(|(s, r)| (r, s))
            .collect();
        plan.sort_unstable();
        plan
    }

    fn place(&mut self, slot: usize, row: Kept) {
        if slot == self.rows.len() {
            self.rows.push(row);
        } else {
            self.rows[slot] = row;
        }
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
    /// Sampled rows, fields as text.
    pub sample: Vec<SampleRow>,
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

    pub fn finish(self) -> Scan {
        Scan {
            rows: self.rows,
            columns: self.columns,
            sample: split_records(self.reservoir.rows),
        }
    }
}

/// The sample's rows, the CSV records that stayed to the end split into fields on every core
/// (a parser each: every record is parsed on its own).
fn split_records(kept: Vec<Kept>) -> Vec<SampleRow> {
    let parsed = super::per_core(kept.len(), |part| {
        let mut parser = parallel::RowParser::new();
        kept[part]
            .iter()
            .map(|k| match k {
                Kept::Record(bytes) => Some(parser.fields(bytes)),
                Kept::Row(_) => None,
            })
            .collect()
    });
    let rows = kept.into_iter().zip(parsed);
    rows.filter_map(|(k, parsed)| match k {
        Kept::Row(row) => Some(row),
        Kept::Record(_) => parsed,
    })
    .collect()
}

/// Reads one CSV file into the scanner, hashing its bytes into `hasher` on the way.
fn scan_csv(
    path: &Path,
    hasher: Option<&mut Hasher>,
    scanner: &mut Option<Scanner>,
    sample_size: usize,
    seed: u64,
    first: &mut Option<(PathBuf, Vec<String>)>,
) -> Result<(), ReadError> {
    let file = std::fs::File::open(path).map_err(|source| ReadError::Io {
        path: path.into(),
        source,
    })?;
    parallel::scan_csv_stream(path, file, hasher, scanner, sample_size, seed, first)
}

/// Scans CSV text held in memory as [`scan`] scans a CSV file (`name` names it in errors).
pub fn scan_csv_bytes(
    name: &Path,
    bytes: &[u8],
    sample_size: usize,
    seed: u64,
) -> Result<Scan, ReadError> {
    let mut scanner = None;
    parallel::scan_csv_stream(
        name,
        bytes,
        None,
        &mut scanner,
        sample_size,
        seed,
        &mut None,
    )?;
    scanner
        .map(Scanner::finish)
        .ok_or_else(|| ReadError::Empty { path: name.into() })
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

/// Scans a dataset (file or directory of .csv/.parquet files in sorted order).
pub fn scan(path: &Path, sample_size: usize, seed: u64) -> anyhow::Result<Scan> {
    scan_files(path, None, sample_size, seed)
}

/// Scans a dataset and computes its digest (see `data::digest`) in the same read of its files.
pub fn scan_digest(path: &Path, sample_size: usize, seed: u64) -> anyhow::Result<(Digest, Scan)> {
    let mut hasher = Hasher::sha256();
    let scan = scan_files(path, Some(&mut hasher), sample_size, seed)?;
    Ok((hasher.finish(), scan))
}

fn scan_files(
    path: &Path,
    mut hasher: Option<&mut Hasher>,
    sample_size: usize,
    seed: u64,
) -> anyhow::Result<Scan> {
    let files = super::digest::dataset_files(path)?;
    let mut scanner = None;
    let mut first = None;
    for (rel, file) in &files {
        if let Some(h) = hasher.as_deref_mut() {
            let len = std::fs::metadata(file)
                .map_err(|source| ReadError::Io {
                    path: file.clone(),
                    source,
                })?
                .len();
            super::digest::file_prefix(h, rel, len);
        }
        let parquet = file.extension().and_then(|e| e.to_str()) == Some("parquet");
        let h = hasher.as_deref_mut();
        if parquet {
            columnar::scan_parquet(file, h, &mut scanner, sample_size, seed, &mut first)?;
        } else {
            scan_csv(file, h, &mut scanner, sample_size, seed, &mut first)?;
        }
    }
    scanner
        .map(Scanner::finish)
        .ok_or_else(|| anyhow::anyhow!("dataset {} has no data files", path.display()))
}

#[cfg(test)]
mod tests;
