//! Parquet datasets, read as typed Arrow arrays, the row groups on every core: each worker
//! scans whole row groups into fresh column statistics, merged in file order as the CSV
//! chunks are. The reservoir's choices depend only on the row count, known from the footer,
//! so the rows the sample keeps are known before the read and only they are printed.
//!
//! Integer, float and boolean columns feed the statistics their values directly; text columns
//! go through the same inference as CSV fields (they are text), read as dictionaries: once a
//! column is categorical, each distinct value of a batch is scanned once with its count. The
//! figures are those a scan of each value's Arrow text would give (what this reader did
//! before): floats count as `float`, a NaN is missing, an infinity makes the column
//! categorical as the text `inf` would, and category keys are the values as Arrow prints
//! them. Typed values are counted by value within a row group and printed once per distinct
//! value at its end; only those keys (while a column has at most `MAX_CATEGORIES` distinct
//! values) and the columns of other types (dates, decimals...) are turned into text; the
//! kept sample rows hold integers and floats as numbers. The file is hashed for the dataset
//! digest on another thread while it is decoded.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;

use arrow::array::{AnyDictionaryArray, Array, ArrayRef, AsArray};
use arrow::datatypes::{self as types, DataType};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::{Cell, ColumnScan, Kept, ReadError, SampleRow, Scanner, State, MAX_CATEGORIES};
use crate::oci::digest::Hasher;

/// Reads one Parquet file batch by batch into the scanner, hashing its bytes into `hasher`.
pub(super) fn scan_parquet(
    path: &Path,
    hasher: Option<&mut Hasher>,
    scanner: &mut Option<Scanner>,
    sample_size: usize,
    seed: u64,
    first: &mut Option<(PathBuf, Vec<String>)>,
) -> Result<(), ReadError> {
    std::thread::scope(|s| {
        let hashing = hasher.map(|h| s.spawn(move || hash_file(path, h)));
        let decoded = decode(path, scanner, sample_size, seed, first);
        let hashed = hashing.map_or(Ok(()), |j| {
            j.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the hashing thread panicked")))
        });
        decoded?;
        hashed.map_err(|source| ReadError::Io {
            path: path.into(),
            source,
        })
    })
}

fn hash_file(path: &Path, hasher: &mut Hasher) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    // Small reads: each is hashed while it is still in the cache the kernel copied it into.
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

fn decode(
    path: &Path,
    scanner: &mut Option<Scanner>,
    sample_size: usize,
    seed: u64,
    first: &mut Option<(PathBuf, Vec<String>)>,
) -> Result<(), ReadError> {
    use parquet::arrow::arrow_reader::ArrowReaderMetadata;
    let file = open(path)?;
    let metadata =
        ArrowReaderMetadata::load(&file, Default::default()).map_err(|e| bad(path, e))?;
    // A schema the reader refuses as a hint is read as it is.
    let hinted = dictionary_hint(metadata.schema()).and_then(|schema| {
        let options = parquet::arrow::arrow_reader::ArrowReaderOptions::new().with_schema(schema);
        ArrowReaderMetadata::try_new(metadata.metadata().clone(), options).ok()
    });
    let metadata = hinted.unwrap_or(metadata);
    let header: Vec<String> = metadata
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    super::parallel::same_columns(path, &header, first)?;
    let scanner = scanner.get_or_insert_with(|| Scanner::new(header.clone(), sample_size, seed));
    // Where each row group starts, and which of the file's rows end up in the sample.
    let mut starts = Vec::new();
    let mut total = 0u64;
    for g in metadata.metadata().row_groups() {
        starts.push(total);
        total += u64::try_from(g.num_rows()).unwrap_or(0);
    }
    let plan = scanner.reservoir.plan(total);
    let counted: Vec<AtomicBool> = scanner
        .columns
        .iter()
        .map(|c| AtomicBool::new(c.counts.is_some()))
        .collect();
    let job = Job {
        path,
        metadata: &metadata,
        header: &header,
        counted: &counted,
        plan: &plan,
        starts: &starts,
    };
    let mut sampled = Vec::with_capacity(plan.len());
    let mut rows = 0u64;
    run_groups(&job, |done| {
        for ((g, c), flag) in scanner.columns.iter_mut().zip(done.columns).zip(&counted) {
            g.merge(c);
            if g.counts.is_none() {
                flag.store(false, Ordering::Relaxed);
            }
        }
        rows += done.rows;
        sampled.extend(done.sample);
    })?;
    scanner.rows += rows;
    sampled.sort_unstable_by_key(|(slot, _)| *slot);
    for (slot, row) in sampled {
        scanner.reservoir.place(slot, Kept::Row(row));
    }
    Ok(())
}

/// The file's schema with its text columns read as dictionaries (keys into the column
/// chunk's dictionary page, as Parquet stores them), or None when it has no text column.
/// Each distinct value is then scanned once per batch with its count instead of once a row.
fn dictionary_hint(schema: &types::SchemaRef) -> Option<types::SchemaRef> {
    let text = |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8);
    if !schema.fields().iter().any(|f| text(f.data_type())) {
        return None;
    }
    let fields: Vec<types::FieldRef> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            t if text(t) => {
                let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(t.clone()));
                std::sync::Arc::new(f.as_ref().clone().with_data_type(dict))
            }
            _ => f.clone(),
        })
        .collect();
    let hinted = types::Schema::new_with_metadata(fields, schema.metadata().clone());
    Some(std::sync::Arc::new(hinted))
}

fn open(path: &Path) -> Result<std::fs::File, ReadError> {
    std::fs::File::open(path).map_err(|source| ReadError::Io {
        path: path.into(),
        source,
    })
}

fn bad(path: &Path, e: impl std::fmt::Display) -> ReadError {
    ReadError::Parquet {
        path: path.into(),
        message: e.to_string(),
    }
}

/// What every row group of one file is scanned against.
struct Job<'a> {
    path: &'a Path,
    metadata: &'a parquet::arrow::arrow_reader::ArrowReaderMetadata,
    header: &'a [String],
    /// Per column: false once it is known to have more than MAX_CATEGORIES values.
    counted: &'a [AtomicBool],
    /// (row of the file, slot) of the rows the sample keeps, by row.
    plan: &'a [(u64, usize)],
    /// The first row of each row group.
    starts: &'a [u64],
}

/// A scanned row group.
struct Group {
    index: usize,
    rows: u64,
    columns: Vec<ColumnScan>,
    /// The sampled rows of the group and their slots.
    sample: Vec<(usize, SampleRow)>,
}

/// Scans the row groups on every core, handing each result to `merge` in file order.
fn run_groups(job: &Job<'_>, mut merge: impl FnMut(Group)) -> Result<(), ReadError> {
    let groups = job.starts.len();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get().clamp(1, 8))
        .min(groups.max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = sync_channel::<Result<Group, ReadError>>(workers);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            s.spawn(move || {
                let file = match open(job.path) {
                    Ok(f) => f,
                    Err(e) => return drop(tx.send(Err(e))),
                };
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= groups || stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let done = file
                        .try_clone()
                        .map_err(|source| ReadError::Io {
                            path: job.path.into(),
                            source,
                        })
                        .and_then(|f| scan_group(job, f, index));
                    if tx.send(done).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut want = 0;
        let mut failed = None;
        for done in rx.iter() {
            match done {
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failed.get_or_insert(e);
                }
                Ok(g) if failed.is_none() => {
                    pending.insert(g.index, g);
                    while let Some(g) = pending.remove(&want) {
                        want += 1;
                        merge(g);
                    }
                }
                Ok(_) => {} // drain, so that every thread finishes
            }
        }
        failed.map_or(Ok(()), Err)
    })
}

/// One row group, batch by batch, into fresh column statistics and its sampled rows.
fn scan_group(job: &Job<'_>, file: std::fs::File, index: usize) -> Result<Group, ReadError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, job.metadata.clone())
        .with_row_groups(vec![index])
        .with_batch_size(8192)
        .build()
        .map_err(|e| bad(job.path, e))?;
    let mut columns: Vec<ColumnScan> = job
        .header
        .iter()
        .zip(job.counted)
        .map(|(h, c)| ColumnScan::for_chunk(h, c.load(Ordering::Relaxed)))
        .collect();
    let mut tallies: Vec<Tally> = columns.iter().map(|_| Tally::default()).collect();
    let options = FormatOptions::default().with_null("");
    let start = job.starts[index];
    let mut planned = job.plan[job.plan.partition_point(|&(r, _)| r < start)..].iter();
    let mut planned_next = planned.next();
    let mut sample = Vec::new();
    let mut rows = 0u64;
    let mut buf = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(job.path, e))?;
        let cols: Vec<Column> = batch
            .columns()
            .iter()
            .map(|c| Column::new(c, &options))
            .collect::<Result<_, _>>()
            .map_err(|e| bad(job.path, e))?;
        for ((scan, col), tally) in columns.iter_mut().zip(&cols).zip(&mut tallies) {
            col.scan(scan, tally, &mut buf);
        }
        let first = start + rows;
        rows += batch.num_rows() as u64;
        while let Some(&(row, slot)) = planned_next.filter(|&&(r, _)| r < start + rows) {
            let at = (row - first) as usize;
            sample.push((slot, SampleRow::from_cells(cols.iter().map(|c| c.cell(at)))));
            planned_next = planned.next();
        }
        for ((c, t), flag) in columns.iter().zip(&tallies).zip(job.counted) {
            if c.counts.is_none() || t.over {
                flag.store(false, Ordering::Relaxed);
            }
        }
    }
    for (scan, tally) in columns.iter_mut().zip(tallies) {
        tally.into_counts(scan);
    }
    Ok(Group {
        index,
        rows,
        columns,
        sample,
    })
}

/// Category counts of a typed column in one row group, keyed by value; turned into the text
/// keys (as Arrow prints the values) at the end of the group.
#[derive(Default)]
struct Tally {
    keys: HashMap<Key, u64, foldhash::fast::RandomState>,
    /// Integers in SMALL_INTS, counted by index (codes, ages, counts: the common case); they
    /// are never in `keys`.
    small: Vec<u64>,
    small_distinct: usize,
    /// More than MAX_CATEGORIES distinct values: no counts.
    over: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Int(i64),
    /// A u64 above i64::MAX (its text is the integer's).
    UInt(u64),
    /// The bits of a finite f64 / f32: distinct bits print as distinct shortest text.
    F64(u64),
    F32(u32),
}

/// The integers counted without hashing.
const SMALL_INTS: std::ops::Range<i64> = -1024..1024;

impl Tally {
    fn add(&mut self, scan: &ColumnScan, key: Key) {
        if self.over || scan.counts.is_none() {
            return;
        }
        match key {
            Key::Int(i) if SMALL_INTS.contains(&i) => {
                if self.small.is_empty() {
                    self.small = vec![0; (SMALL_INTS.end - SMALL_INTS.start) as usize];
                }
                let c = &mut self.small[(i - SMALL_INTS.start) as usize];
                self.small_distinct += usize::from(*c == 0);
                *c += 1;
            }
            _ => *self.keys.entry(key).or_insert(0) += 1,
        }
        self.cap();
    }

    /// Over once it holds more than MAX_CATEGORIES distinct values (its counts forgotten).
    fn cap(&mut self) {
        if self.keys.len() + self.small_distinct > MAX_CATEGORIES {
            self.over = true;
            self.keys = HashMap::default();
            (self.small, self.small_distinct) = (Vec::new(), 0);
        }
    }

    /// `add` of each integer: when all are in SMALL_INTS (codes, ages, counts), one tight
    /// loop over the table, the cap checked at the end (once over, a tally stays over and
    /// forgets its counts: checking once gives the same end).
    fn add_ints(&mut self, scan: &ColumnScan, values: &[i64]) {
        if self.over || scan.counts.is_none() {
            return;
        }
        if !values.iter().all(|i| SMALL_INTS.contains(i)) {
            return count_all(scan, self, values.iter().map(|&i| Key::Int(i)));
        }
        if self.small.is_empty() {
            self.small = vec![0; (SMALL_INTS.end - SMALL_INTS.start) as usize];
        }
        for &i in values {
            let c = &mut self.small[(i - SMALL_INTS.start) as usize];
            self.small_distinct += usize::from(*c == 0);
            *c += 1;
        }
        self.cap();
    }

    fn into_counts(self, scan: &mut ColumnScan) {
        if self.over {
            scan.counts = None;
            return;
        }
        let small = self.small.iter().zip(SMALL_INTS);
        for (&n, i) in small.filter(|(&n, _)| n > 0) {
            scan.count_value_n(i.to_string(), n);
        }
        let mut buf = ryu::Buffer::new();
        for (key, n) in self.keys {
            let text = match key {
                Key::Int(i) => i.to_string(),
                Key::UInt(u) => u.to_string(),
                Key::F64(bits) => buf.format(f64::from_bits(bits)).to_string(),
                Key::F32(bits) => buf.format(f32::from_bits(bits)).to_string(),
            };
            scan.count_value_n(text, n);
        }
    }
}

/// One column of a batch, by how its values reach the statistics.
enum Column<'a> {
    /// Any integer width, widened to i64.
    Int(arrow::array::Int64Array),
    /// Unsigned 64-bit: values above i64::MAX read as floats, as their text would.
    UInt64(&'a arrow::array::UInt64Array),
    Float64(&'a arrow::array::Float64Array),
    Float32(&'a arrow::array::Float32Array),
    Bool(&'a arrow::array::BooleanArray),
    Text(&'a ArrayRef),
    /// Text read as a dictionary, with its keys as indexes into the values.
    Dict(&'a dyn AnyDictionaryArray, Vec<usize>),
    Other(&'a ArrayRef, ArrayFormatter<'a>),
}

impl<'a> Column<'a> {
    fn new(array: &'a ArrayRef, options: &FormatOptions<'a>) -> Result<Column<'a>, String> {
        Ok(match array.data_type() {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => Column::Int(int_values(array)?),
            DataType::UInt64 => Column::UInt64(array.as_primitive::<types::UInt64Type>()),
            DataType::Float64 => Column::Float64(array.as_primitive::<types::Float64Type>()),
            DataType::Float32 => Column::Float32(array.as_primitive::<types::Float32Type>()),
            DataType::Boolean => Column::Bool(array.as_boolean()),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Column::Text(array),
            DataType::Dictionary(_, v)
                if matches!(
                    **v,
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ) =>
            {
                let dict = array.as_any_dictionary();
                Column::Dict(dict, dict.normalized_keys())
            }
            _ => Column::Other(
                array,
                ArrayFormatter::try_new(array.as_ref(), options).map_err(|e| e.to_string())?,
            ),
        })
    }

    /// Every value of the column into its statistics; `buf` is scratch space.
    fn scan(&self, scan: &mut ColumnScan, tally: &mut Tally, buf: &mut Vec<f64>) {
        buf.clear();
        match self {
            Column::Int(a) => {
                let values = a.values();
                if a.null_count() == 0 {
                    buf.extend(values.iter().map(|&i| i as f64));
                    tally.add_ints(scan, values);
                } else {
                    for v in a.iter() {
                        match v {
                            Some(i) => {
                                buf.push(i as f64);
                                tally.add(scan, Key::Int(i));
                            }
                            None => scan.nulls += 1,
                        }
                    }
                }
                scan.push_numbers(buf, false);
            }
            Column::UInt64(a) => {
                let mut big = Vec::new();
                for v in a.iter() {
                    match v {
                        Some(u) => match i64::try_from(u) {
                            Ok(i) => {
                                buf.push(i as f64);
                                tally.add(scan, Key::Int(i));
                            }
                            Err(_) => {
                                big.push(u as f64);
                                tally.add(scan, Key::UInt(u));
                            }
                        },
                        None => scan.nulls += 1,
                    }
                }
                scan.push_numbers(buf, false);
                scan.push_numbers(&big, true);
            }
            Column::Float64(a) => {
                let values = a.values();
                // Without short-circuit: the check vectorises.
                let finite = values.iter().fold(true, |ok, x| ok & x.is_finite());
                if a.null_count() == 0 && finite {
                    count_all(scan, tally, values.iter().map(|x| Key::F64(x.to_bits())));
                    scan.push_numbers(values, true);
                    return;
                }
                for v in a.iter() {
                    match v {
                        Some(x) if x.is_finite() => {
                            buf.push(x);
                            tally.add(scan, Key::F64(x.to_bits()));
                        }
                        // An infinity reads as its text would: not a number.
                        Some(x) if !x.is_nan() => scan.push(ryu::Buffer::new().format(x)),
                        _ => scan.nulls += 1,
                    }
                }
                scan.push_numbers(buf, true);
            }
            Column::Float32(a) => {
                // The value its shortest text names, as a scan of that text reads it.
                let mut text = ryu::Buffer::new();
                for v in a.iter() {
                    match v {
                        Some(x) if x.is_finite() => match text.format(x).parse::<f64>() {
                            Ok(y) => {
                                buf.push(y);
                                tally.add(scan, Key::F32(x.to_bits()));
                            }
                            Err(_) => scan.push(text.format(x)),
                        },
                        Some(x) if !x.is_nan() => scan.push(text.format(x)),
                        _ => scan.nulls += 1,
                    }
                }
                scan.push_numbers(buf, true);
            }
            Column::Bool(a) => {
                for v in a.iter() {
                    match v {
                        Some(b) => scan.push(if b { "true" } else { "false" }),
                        None => scan.nulls += 1,
                    }
                }
            }
            Column::Text(a) => {
                for i in 0..a.len() {
                    match text_value(a, i) {
                        Some(t) => scan.push(t),
                        None => scan.nulls += 1,
                    }
                }
            }
            Column::Dict(a, keys) => scan_dictionary(scan, *a, keys),
            Column::Other(a, f) => {
                let mut text = String::new();
                for i in 0..a.len() {
                    if a.is_null(i) {
                        scan.nulls += 1;
                        continue;
                    }
                    text.clear();
                    use std::fmt::Write;
                    let _ = write!(text, "{}", f.value(i));
                    scan.push(&text);
                }
            }
        }
    }

    /// One value for the sample: integers and floats as numbers, the rest as text.
    fn cell(&self, row: usize) -> Cell<'_> {
        let text = |t: Option<&'a str>| t.map_or(Cell::Null, |t| Cell::Text(t.into()));
        match self {
            Column::Int(a) if !a.is_null(row) => Cell::Int(a.value(row)),
            Column::Float64(a) if !a.is_null(row) => Cell::Float(a.value(row)),
            Column::UInt64(a) if !a.is_null(row) => Cell::Text(a.value(row).to_string().into()),
            Column::Float32(a) if !a.is_null(row) => {
                Cell::Text(ryu::Buffer::new().format(a.value(row)).to_string().into())
            }
            Column::Bool(a) if !a.is_null(row) => Cell::Text(a.value(row).to_string().into()),
            Column::Other(a, f) if !a.is_null(row) => Cell::Text(f.value(row).to_string().into()),
            Column::Text(a) => text(text_value(a, row)),
            Column::Dict(a, keys) => text(
                (!a.keys().is_null(row))
                    .then(|| text_value(a.values(), keys[row]))
                    .flatten(),
            ),
            // The nulls of the typed columns.
            _ => Cell::Null,
        }
    }
}

/// A text column read as a dictionary: row by row (as `push` of each value) until the column
/// is categorical, and from then on each distinct value once with its count, which is what as
/// many `push` calls would do: a categorical column only counts values and nulls.
fn scan_dictionary(scan: &mut ColumnScan, a: &dyn AnyDictionaryArray, keys: &[usize]) {
    let (nulls, values) = (a.keys(), a.values());
    let mut row = 0;
    while row < keys.len() && scan.state != State::Categorical {
        match text_value(values, keys[row]).filter(|_| !nulls.is_null(row)) {
            Some(t) => scan.push(t),
            None => scan.nulls += 1,
        }
        row += 1;
    }
    if row == keys.len() {
        return;
    }
    if values.len() > keys.len() - row {
        // A dictionary larger than what is left of the batch (a high-cardinality column):
        // counting by key would cost the dictionary's size on every batch.
        for (i, &k) in keys.iter().enumerate().skip(row) {
            match text_value(values, k).filter(|t| !nulls.is_null(i) && !super::is_null(t)) {
                Some(t) => push_categorical(scan, t, 1),
                None => scan.nulls += 1,
            }
        }
        return;
    }
    let mut counts = vec![0u64; values.len()];
    for (i, &k) in keys.iter().enumerate().skip(row) {
        if nulls.is_null(i) {
            scan.nulls += 1;
        } else {
            counts[k] += 1;
        }
    }
    for (k, &n) in counts.iter().enumerate().filter(|(_, &n)| n > 0) {
        match text_value(values, k).filter(|t| !super::is_null(t)) {
            Some(t) => push_categorical(scan, t, n),
            None => scan.nulls += n,
        }
    }
}

/// `n` calls of `push(field)` on a categorical column, `field` not null-like.
fn push_categorical(scan: &mut ColumnScan, field: &str, n: u64) {
    scan.count += n;
    scan.count_value(field, n);
}

/// Every key into the tally, stopping as soon as it is over (or the column is not counted).
fn count_all(scan: &ColumnScan, tally: &mut Tally, keys: impl Iterator<Item = Key>) {
    for key in keys {
        if tally.over || scan.counts.is_none() {
            return;
        }
        tally.add(scan, key);
    }
}

/// The values of an integer column of any width, widened to i64.
fn int_values(a: &ArrayRef) -> Result<arrow::array::Int64Array, String> {
    // Int64 arrays are cloned cheaply (shared buffers); narrower ones are widened once.
    let wide = arrow::compute::cast(a, &DataType::Int64).map_err(|e| e.to_string())?;
    Ok(wide.as_primitive::<types::Int64Type>().clone())
}

fn text_value(a: &ArrayRef, i: usize) -> Option<&str> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::Utf8 => Some(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Some(a.as_string::<i64>().value(i)),
        DataType::Utf8View => Some(a.as_string_view().value(i)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch path of small integers ends where one `add` per value ends, also when the
    /// table crosses MAX_CATEGORIES part-way through a batch.
    #[test]
    fn small_integers_counted_in_a_batch_as_one_by_one() {
        let scan = ColumnScan::for_chunk("x", true);
        let batches: [Vec<i64>; 3] = [
            vec![3, 3, -1024, 1023, 0, 3],
            (0..900).map(|i| i % 7).collect(),
            (-1024..1024).rev().collect(),
        ];
        for extra in [0, MAX_CATEGORIES - 2048, MAX_CATEGORIES - 2047] {
            let (mut fast, mut slow) = (Tally::default(), Tally::default());
            for k in 0..extra as i64 {
                fast.add(&scan, Key::Int(5_000 + k));
                slow.add(&scan, Key::Int(5_000 + k));
            }
            for b in &batches {
                fast.add_ints(&scan, b);
                b.iter().for_each(|&i| slow.add(&scan, Key::Int(i)));
            }
            assert_eq!(fast.over, slow.over, "{extra}");
            assert_eq!(
                (fast.small, fast.small_distinct),
                (slow.small, slow.small_distinct)
            );
            assert_eq!(fast.keys, slow.keys);
        }
        // Out of the table's range: each value through `add`.
        let mut t = Tally::default();
        t.add_ints(&scan, &[1, 2_000, 1]);
        assert_eq!((t.small_distinct, t.keys.len()), (1, 1));
    }
}
