//! Parquet datasets, read batch by batch as typed Arrow arrays.
//!
//! Integer, float and boolean columns feed the statistics their values directly; text columns
//! go through the same inference as CSV fields (they are text). The figures are those a
//! scan of each value's Arrow text would give (what this reader did before): floats count as
//! `float`, a NaN is missing, an infinity makes the column categorical as the text `inf`
//! would, and category keys are the values as Arrow prints them. Only the few sampled rows,
//! the category keys while a column has at most `MAX_CATEGORIES` distinct values, and the
//! columns of other types (dates, decimals...) are turned into text. The file is hashed for
//! the dataset digest on another thread while it is decoded.

use std::io::Read;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{self as types, DataType};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::{ColumnScan, ReadError, SampleRow, Scanner};
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
    let mut buf = vec![0u8; 1 << 20];
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
    let mut key = String::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let columns: Vec<Column> = batch
            .columns()
            .iter()
            .map(|c| Column::new(c, &options))
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        for (scan, col) in scanner.columns.iter_mut().zip(&columns) {
            col.scan(scan, &mut key);
        }
        for row in 0..batch.num_rows() {
            scanner.rows += 1;
            if let Some(slot) = scanner.reservoir.slot() {
                let cells: Vec<Option<String>> = columns.iter().map(|c| c.text(row)).collect();
                scanner
                    .reservoir
                    .place(slot, SampleRow::new(cells.iter().map(|c| c.as_deref())));
            }
        }
    }
    Ok(())
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
            _ => Column::Other(
                array,
                ArrayFormatter::try_new(array.as_ref(), options).map_err(|e| e.to_string())?,
            ),
        })
    }

    /// Every value of the column into its statistics.
    fn scan(&self, scan: &mut ColumnScan, key: &mut String) {
        match self {
            Column::Int(a) => {
                for v in a.iter() {
                    match v {
                        Some(i) => scan.push_int(i, key),
                        None => scan.nulls += 1,
                    }
                }
            }
            Column::UInt64(a) => {
                for v in a.iter() {
                    match v {
                        Some(u) => match i64::try_from(u) {
                            Ok(i) => scan.push_int(i, key),
                            Err(_) => scan.push_float(u as f64, || u.to_string()),
                        },
                        None => scan.nulls += 1,
                    }
                }
            }
            Column::Float64(a) => {
                for v in a.iter() {
                    match v {
                        Some(x) if x.is_finite() => {
                            scan.push_float(x, || ryu::Buffer::new().format(x).to_string())
                        }
                        Some(x) if !x.is_nan() => scan.push(ryu::Buffer::new().format(x)),
                        _ => scan.nulls += 1,
                    }
                }
            }
            Column::Float32(a) => {
                // The value its shortest text names, as a scan of that text reads it.
                let mut buf = ryu::Buffer::new();
                for v in a.iter() {
                    match v {
                        Some(x) if x.is_finite() => {
                            let text = buf.format(x);
                            match text.parse::<f64>() {
                                Ok(y) => scan.push_float(y, || text.to_string()),
                                Err(_) => scan.push(text),
                            }
                        }
                        Some(x) if !x.is_nan() => scan.push(buf.format(x)),
                        _ => scan.nulls += 1,
                    }
                }
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

    /// One value as text, for the sample (None for nulls and null-like values).
    fn text(&self, row: usize) -> Option<String> {
        let text = match self {
            Column::Int(a) => (!a.is_null(row)).then(|| a.value(row).to_string()),
            Column::UInt64(a) => (!a.is_null(row)).then(|| a.value(row).to_string()),
            Column::Float64(a) => {
                (!a.is_null(row)).then(|| ryu::Buffer::new().format(a.value(row)).to_string())
            }
            Column::Float32(a) => {
                (!a.is_null(row)).then(|| ryu::Buffer::new().format(a.value(row)).to_string())
            }
            Column::Bool(a) => (!a.is_null(row)).then(|| a.value(row).to_string()),
            Column::Text(a) => text_value(a, row).map(str::to_string),
            Column::Other(a, f) => (!a.is_null(row)).then(|| f.value(row).to_string()),
        };
        text.filter(|t| !super::is_null(t))
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
