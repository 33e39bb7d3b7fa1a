//! Reads the rows of a monitoring window: capture files (JSON Lines) or an export (JSON Lines,
//! CSV or Parquet; a file or a directory), keeping only the rows of the pinned digest inside the
//! window. Memory is bounded by the sample, not by the traffic: every row updates counters and
//! the column types, and a row joins the sample when its seeded hash of the row's id is among
//! the `sample_size` smallest (a bottom-k sample: uniform, the same whatever the order of the
//! files or the number of threads). A line that does not parse (a writer that crashed
//! mid-line) is counted and named in the report, never fatal.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::fastline;
use super::record::{from_fields, Record, Scalar};

/// A capture line longer than this is counted as corrupt.
pub const MAX_LINE_BYTES: u64 = 1 << 20;
/// Corrupt lines named in the report (all are counted).
const CORRUPT_EXAMPLES: usize = 5;

/// What selects a row, and which columns are kept.
pub struct Filter<'a> {
    pub digest: &'a str,
    pub since: DateTime<Utc>,
    /// The reference's columns (inputs whose values are sampled).
    pub columns: &'a [String],
    pub sample_size: usize,
    pub seed: u64,
    /// Keep id → (prediction, score) of every row, for joining labels.
    pub keep_predictions: bool,
}

/// Column types as the data readers infer them, widened over every row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    pub int: bool,
    pub float: bool,
    pub bool: bool,
    pub text: bool,
}

impl Seen {
    fn add(&mut self, v: &Scalar) {
        match v {
            Scalar::Null => {}
            Scalar::Int(_) => self.int = true,
            Scalar::Float(_) => self.float = true,
            Scalar::Bool(_) => self.bool = true,
            Scalar::Text(_) | Scalar::Nested => self.text = true,
        }
    }

    fn merge(&mut self, o: Seen) {
        self.int |= o.int;
        self.float |= o.float;
        self.bool |= o.bool;
        self.text |= o.text;
    }

    /// None when the column had only nulls.
    pub fn kind(self) -> Option<crate::data::read::Kind> {
        use crate::data::read::Kind;
        let numeric = self.int || self.float;
        Some(match (numeric, self.bool, self.text) {
            (false, false, false) => return None,
            (_, _, true) | (true, true, _) => Kind::Categorical,
            (false, true, false) => Kind::Boolean,
            (true, false, false) if self.float => Kind::Float,
            _ => Kind::Integer,
        })
    }
}

/// A sampled value, owned.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Number(f64),
    Text(String),
}

impl Value {
    /// Overwrites with `s`, reusing the text buffer when both are text (the sample's slots
    /// are reused: categories need no allocation per row).
    fn assign(&mut self, s: &Scalar) {
        match (&mut *self, s) {
            (Value::Text(buf), Scalar::Text(t)) => {
                buf.clear();
                buf.push_str(t);
            }
            _ => *self = Value::of(s),
        }
    }

    fn of(s: &Scalar) -> Value {
        match s {
            Scalar::Null => Value::Null,
            Scalar::Int(i) => Value::Number(*i as f64),
            Scalar::Float(f) if f.is_nan() => Value::Null,
            Scalar::Float(f) => Value::Number(*f),
            other => other.as_text().map_or(Value::Null, Value::Text),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SampledRow {
    pub values: Vec<Value>,
    pub prediction: Value,
    pub score: Option<f64>,
}

/// Everything one pass over the window learns.
#[derive(Debug, Default)]
pub struct Window {
    pub files: usize,
    /// Rows of the pinned digest inside the window.
    pub rows: u64,
    pub errors: u64,
    pub outside_window: u64,
    pub other_digest: u64,
    pub corrupt: u64,
    pub corrupt_examples: Vec<String>,
    /// Per reference column (same order as `Filter::columns`).
    pub seen: Vec<Seen>,
    /// Input columns the reference does not have, with the rows that had them.
    pub new_columns: BTreeMap<String, u64>,
    pub latencies: Vec<f64>,
    /// Bottom-k sample: (priority, row) while reading.
    bottom: BottomK,
    /// Which columns the row being sampled has written (the others become null).
    written: Vec<bool>,
    pub sample: Vec<SampledRow>,
    /// id → (prediction, score) when labels are joined.
    pub predictions: HashMap<String, (f64, Option<f64>)>,
}

/// The `k` rows of smallest priority seen so far. Rows below the bound gather in slots, with
/// (priority, slot) pairs beside them; once k + k/4 have gathered, a selection over the pairs
/// keeps the k smallest, the bound falls to the largest of those, and the other slots are
/// reused with their buffers. Amortised, a row costs a few 16-byte moves and no allocation for
/// numbers (a heap of whole rows, sifted 17 levels per replacement and allocating each row,
/// was 13% of a scan of 1M rows with k = 100,000).
#[derive(Debug, Default)]
struct BottomK {
    k: usize,
    /// Only a priority below this can still be among the k smallest.
    bound: u64,
    order: Vec<(u64, u32)>,
    slots: Vec<SampledRow>,
    free: Vec<u32>,
}

impl BottomK {
    fn new(k: usize) -> BottomK {
        BottomK {
            k: k.min(u32::MAX as usize / 2),
            bound: u64::MAX,
            ..Default::default()
        }
    }

    fn wants(&self, p: u64) -> bool {
        self.k > 0 && (self.bound == u64::MAX || p < self.bound)
    }

    /// A row of `width` values for priority `p`, or None when `p` is no longer wanted. A reused
    /// slot keeps its previous values (their text buffers are reused): the caller overwrites
    /// every column.
    fn take(&mut self, p: u64, width: usize) -> Option<&mut SampledRow> {
        if self.order.len() > self.k + self.k / 4 {
            self.shrink();
            if !self.wants(p) {
                return None;
            }
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                let row = &mut self.slots[slot as usize];
                row.values.resize(width, Value::Null);
                row.prediction = Value::Null;
                row.score = None;
                slot
            }
            None => {
                self.slots.push(SampledRow {
                    values: vec![Value::Null; width],
                    prediction: Value::Null,
                    score: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.order.push((p, slot));
        Some(&mut self.slots[slot as usize])
    }

    fn shrink(&mut self) {
        if self.order.len() > self.k {
            self.order.select_nth_unstable(self.k - 1);
            self.free
                .extend(self.order[self.k..].iter().map(|&(_, slot)| slot));
            self.order.truncate(self.k);
            self.bound = self.order[self.k - 1].0;
        }
    }

    fn merge(&mut self, mut o: BottomK) {
        o.shrink();
        for (p, slot) in std::mem::take(&mut o.order) {
            let row = &mut o.slots[slot as usize];
            if self.wants(p) {
                let width = row.values.len();
                if let Some(into) = self.take(p, width) {
                    *into = std::mem::take(row);
                }
            }
        }
    }

    /// The sample, smallest priority first.
    fn finish(mut self) -> Vec<SampledRow> {
        self.shrink();
        let mut order = std::mem::take(&mut self.order);
        order.sort_unstable();
        order
            .into_iter()
            .map(|(_, slot)| std::mem::take(&mut self.slots[slot as usize]))
            .collect()
    }
}

/// The row's place in the bottom-k order: a seeded hash of its id (of where it was read, for a
/// row without one). Integer ids hash as their decimal text, so 7 and "7" are the same row.
fn priority(seed: u64, id: Option<&Scalar>, file: usize, line: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    seed.hash(&mut h);
    match id {
        Some(Scalar::Text(t)) => t.as_ref().hash(&mut h),
        Some(Scalar::Int(i)) => i.to_string().hash(&mut h),
        Some(other @ (Scalar::Float(_) | Scalar::Bool(_))) => other.as_text().hash(&mut h),
        _ => (file, line).hash(&mut h),
    }
    h.finish()
}

/// Column index of each input, by name; inputs usually arrive in the same order on every line,
/// so the index of each position is remembered and only checked.
struct Columns<'a> {
    index: &'a HashMap<&'a str, usize>,
    names: &'a [String],
    by_position: Vec<Option<usize>>,
}

impl Columns<'_> {
    fn find(&mut self, position: usize, name: &str) -> Option<usize> {
        if let Some(Some(i)) = self.by_position.get(position) {
            if self.names[*i] == name {
                return Some(*i);
            }
        }
        let found = self.index.get(name).copied();
        if self.by_position.len() <= position {
            self.by_position.resize(position + 1, None);
        }
        self.by_position[position] = found;
        found
    }
}

impl Window {
    fn new(f: &Filter) -> Window {
        Window {
            seen: vec![Seen::default(); f.columns.len()],
            bottom: BottomK::new(f.sample_size),
            written: vec![false; f.columns.len()],
            ..Default::default()
        }
    }

    fn corrupt(&mut self, file: &Path, line: u64, why: &str) {
        self.corrupt += 1;
        if self.corrupt_examples.len() < CORRUPT_EXAMPLES {
            self.corrupt_examples
                .push(format!("{}:{line}: {why}", file.display()));
        }
    }

    /// Err: the record is unusable (said why); it counts as a corrupt line.
    fn push(
        &mut self,
        f: &Filter,
        cols: &mut Columns,
        r: &Record,
        at: (usize, u64),
    ) -> Result<(), String> {
        if let Some(t) = r.time.as_deref() {
            let t = DateTime::parse_from_rfc3339(t)
                .map_err(|e| format!("time {:?} is not RFC 3339: {e}", crate::text::clean(t)))?;
            if t < f.since {
                self.outside_window += 1;
                return Ok(());
            }
        }
        if r.digest.as_deref().is_some_and(|d| d != f.digest) {
            self.other_digest += 1;
            return Ok(());
        }
        self.rows += 1;
        if let Some(l) = r.latency_ms.filter(|l| l.is_finite()) {
            self.latencies.push(l);
        }
        if r.is_error() {
            self.errors += 1;
            return Ok(());
        }
        let p = priority(f.seed, r.id.as_ref(), at.0, at.1);
        let mut row = match self.bottom.wants(p) {
            true => self.bottom.take(p, f.columns.len()),
            false => None,
        };
        if row.is_some() {
            self.written.iter_mut().for_each(|w| *w = false);
        }
        for (position, (name, v)) in r.inputs.0.iter().enumerate() {
            match cols.find(position, name) {
                Some(i) => {
                    self.seen[i].add(v);
                    if let Some(row) = row.as_mut() {
                        row.values[i].assign(v);
                        self.written[i] = true;
                    }
                }
                None => match self.new_columns.get_mut(name.as_ref()) {
                    Some(n) => *n += 1,
                    None => {
                        self.new_columns.insert(name.to_string(), 1);
                    }
                },
            }
        }
        let prediction = r.prediction.as_ref().map_or(Value::Null, Value::of);
        if f.keep_predictions {
            if let (Some(id), Value::Number(p)) =
                (r.id.as_ref().and_then(Scalar::as_text), &prediction)
            {
                self.predictions.insert(id, (*p, r.score));
            }
        }
        if let Some(row) = row {
            for (v, written) in row.values.iter_mut().zip(&self.written) {
                if !written {
                    *v = Value::Null;
                }
            }
            row.prediction = prediction;
            row.score = r.score.filter(|s| s.is_finite());
        }
        Ok(())
    }

    fn merge(&mut self, o: Window) {
        self.files += o.files;
        self.rows += o.rows;
        self.errors += o.errors;
        self.outside_window += o.outside_window;
        self.other_digest += o.other_digest;
        self.corrupt += o.corrupt;
        for e in o.corrupt_examples {
            if self.corrupt_examples.len() < CORRUPT_EXAMPLES {
                self.corrupt_examples.push(e);
            }
        }
        for (s, x) in self.seen.iter_mut().zip(o.seen) {
            s.merge(x);
        }
        for (k, n) in o.new_columns {
            *self.new_columns.entry(k).or_default() += n;
        }
        self.latencies.extend(o.latencies);
        self.bottom.merge(o.bottom);
        self.predictions.extend(o.predictions);
    }
}

/// The files to read: capture-*.jsonl under the capture directory (those last written before
/// the window are skipped unopened), or every .jsonl/.json/.csv/.parquet of an export.
pub fn files(path: &Path, capture: bool, since: DateTime<Utc>) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).with_context(|| {
        format!(
            "cannot read {} {}",
            if capture {
                "the capture directory (deploy.capture)"
            } else {
                "monitor.inputs"
            },
            path.display()
        )
    })?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let entry = entry?;
            let p = entry.path();
            let ft = entry.file_type()?;
            if ft.is_dir() && !capture {
                stack.push(p);
                continue;
            }
            if !ft.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let keep = if capture {
                name.starts_with("capture-") && name.ends_with(".jsonl")
            } else {
                [".jsonl", ".json", ".csv", ".parquet"]
                    .iter()
                    .any(|e| name.ends_with(e))
            };
            if !keep {
                continue;
            }
            if capture {
                let modified = entry.metadata()?.modified().ok().map(DateTime::<Utc>::from);
                if modified.is_some_and(|m| m < since) {
                    continue;
                }
            }
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Reads every file (split across the machine's cores) into one window.
pub fn read(files: &[PathBuf], f: &Filter) -> Result<Window> {
    let index: HashMap<&str, usize> = f
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let parts: Vec<Result<Window>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<Window> {
                    let mut w = Window::new(f);
                    let mut cols = Columns {
                        index: &index,
                        names: f.columns,
                        by_position: Vec::new(),
                    };
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(file) = files.get(i) else { break };
                        w.files += 1;
                        read_file(file, i, f, &mut cols, &mut w)?;
                    }
                    Ok(w)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a reader thread panicked")))
            })
            .collect()
    });
    let mut window = Window::new(f);
    for part in parts {
        window.merge(part?);
    }
    window.sample = std::mem::take(&mut window.bottom).finish();
    Ok(window)
}

fn read_file(path: &Path, i: usize, f: &Filter, cols: &mut Columns, w: &mut Window) -> Result<()> {
    let name = path.to_string_lossy();
    if name.ends_with(".csv") {
        return read_csv(path, i, f, cols, w);
    }
    if name.ends_with(".parquet") {
        return read_parquet(path, i, f, cols, w);
    }
    let file = open_nofollow(path)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(4096);
    let mut number = 0u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() != Some(&b'\n') && n as u64 > MAX_LINE_BYTES {
            w.corrupt(path, number, "line longer than 1 MiB");
            // Skip the rest of the long line.
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest)?;
            continue;
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let parsed = match fastline::parse(text) {
            Some(r) => Ok(r),
            None => serde_json::from_slice::<Record>(text),
        };
        match parsed {
            Ok(r) => {
                if let Err(why) = w.push(f, cols, &r, (i, number)) {
                    w.corrupt(path, number, &why);
                }
            }
            Err(e) => w.corrupt(path, number, &e.to_string()),
        }
    }
    Ok(())
}

fn open_nofollow(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .with_context(|| {
            format!(
                "cannot open {} (a symbolic link is not followed)",
                path.display()
            )
        })
}

fn read_csv(path: &Path, i: usize, f: &Filter, cols: &mut Columns, w: &mut Window) -> Result<()> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(open_nofollow(path)?);
    let header: Vec<String> = csv
        .headers()
        .with_context(|| format!("cannot read the header of {}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut record = csv::StringRecord::new();
    let mut number = 1u64;
    loop {
        number += 1;
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let fields: Vec<&str> = record.iter().collect();
                if let Err(why) = w.push(f, cols, &from_fields(&header, &fields), (i, number)) {
                    w.corrupt(path, number, &why);
                }
            }
            Err(e) => w.corrupt(path, number, &e.to_string()),
        }
    }
    Ok(())
}

fn read_parquet(
    path: &Path,
    i: usize,
    f: &Filter,
    cols: &mut Columns,
    w: &mut Window,
) -> Result<()> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bad = |e: String| anyhow::anyhow!("{}: not a readable Parquet file: {e}", path.display());
    let builder = ParquetRecordBatchReaderBuilder::try_new(open_nofollow(path)?)
        .map_err(|e| bad(e.to_string()))?;
    let header: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let options = FormatOptions::default().with_null("");
    let mut number = 0u64;
    let mut texts: Vec<String> = vec![String::new(); header.len()];
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        for row in 0..batch.num_rows() {
            number += 1;
            for (t, fm) in texts.iter_mut().zip(&formatters) {
                use std::fmt::Write;
                t.clear();
                let _ = write!(t, "{}", fm.value(row));
            }
            let fields: Vec<&str> = texts.iter().map(String::as_str).collect();
            if let Err(why) = w.push(f, cols, &from_fields(&header, &fields), (i, number)) {
                w.corrupt(path, number, &why);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod bottom_k_tests {
    use super::*;

    fn row(p: u64) -> SampledRow {
        SampledRow {
            values: vec![Value::Number(p as f64)],
            prediction: Value::Null,
            score: None,
        }
    }

    /// The k smallest of every priority pushed, smallest first, each with its own row, whatever
    /// the split into parts and however often the buffer was shrunk and its slots reused.
    #[test]
    fn keeps_exactly_the_k_smallest_across_shrinks_and_merges() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % 1_000_000
        };
        for (n, k, parts) in [
            (10_000usize, 100usize, 1usize),
            (10_000, 100, 3),
            (50, 100, 2),
            (5_000, 1, 2),
        ] {
            let all: Vec<u64> = (0..n).map(|_| next()).collect();
            let mut merged = BottomK::new(k);
            for part in all.chunks(n.div_ceil(parts)) {
                let mut b = BottomK::new(k);
                for &p in part {
                    if b.wants(p) {
                        if let Some(r) = b.take(p, 1) {
                            *r = row(p);
                        }
                    }
                }
                merged.merge(b);
            }
            let mut want = all.clone();
            want.sort_unstable();
            want.truncate(k);
            let got: Vec<u64> = merged
                .finish()
                .iter()
                .map(|r| match r.values[0] {
                    Value::Number(v) => v as u64,
                    _ => u64::MAX,
                })
                .collect();
            assert_eq!(got, want, "n={n} k={k} parts={parts}");
        }
        assert!(BottomK::new(0).finish().is_empty());
        assert!(!BottomK::new(0).wants(0));
    }
}
