//! The CSV scan on every core, in one read of the file.
//!
//! A reader thread reads the file in fixed-size blocks, feeds each block to the dataset
//! digest as it arrives, and cuts the stream at record boundaries into chunks: at the last
//! newline of a block while no quote has been seen since the last cut, otherwise where
//! csv-core (the state machine behind the csv crate) says the last complete record ends, so a
//! quoted field holding newlines is never cut. Parser threads scan the chunks into per-chunk
//! column statistics and note where each row starts. The calling thread merges the chunk
//! results in file order: statistics (see [`ColumnScan::merge`]), then the reservoir sample,
//! which keeps its chosen rows as their records' bytes (most are replaced later; the ones left
//! at the end are split into fields then). A chunk with no quote and no carriage return is
//! split at newlines and commas directly ([`scan_plain`], the same reading as csv-core's).
//! The queues hold a few chunks, so memory stays flat whatever the file size; results depend
//! on the data and [`BLOCK`] only, never on the number of threads or their timing.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver};
use std::sync::Mutex;

use super::{utf8_fields, ColumnScan, Kept, ReadError, SampleRow, Scanner};
use crate::oci::digest::Hasher;

/// Bytes read at a time.
pub(crate) const BLOCK: usize = 4 << 20;

/// Bytes read by one call while a block is read (sized to stay in a core's cache).
const HASHED_READ: usize = 256 << 10;

/// Cuts a byte stream into chunks of whole records, hashing the bytes as they are read.
struct Blocks<'h, R> {
    input: R,
    hasher: Option<&'h mut Hasher>,
    buf: Vec<u8>,
    eof: bool,
    splitter: Splitter,
    /// Buffers of merged chunks, handed back to be filled again: the scan allocates a few
    /// buffers whatever the file's size (fresh memory is expensive: every new page is zeroed
    /// by the kernel, and on a VM often backed by the host on its first touch).
    spare: Option<Receiver<Vec<u8>>>,
}

impl<'h, R: Read> Blocks<'h, R> {
    fn new(input: R, hasher: Option<&'h mut Hasher>) -> Self {
        Blocks {
            input,
            hasher,
            buf: Vec::new(),
            eof: false,
            splitter: Splitter::new(),
            spare: None,
        }
    }

    /// An empty buffer: a spare one if the merger handed one back.
    fn fresh(&self) -> Vec<u8> {
        match self.spare.as_ref().and_then(|rx| rx.try_recv().ok()) {
            Some(mut buf) => {
                buf.clear();
                buf
            }
            None => Vec::with_capacity(BLOCK + BLOCK / 8),
        }
    }

    /// The next chunk: whole records (the last chunk may end in an unterminated one).
    fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if self.eof {
                return Ok((!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf)));
            }
            let from = self.buf.len();
            self.buf.reserve(BLOCK);
            // In small reads, each hashed and checked for a quote (unless one was already
            // seen) while it is still in the cache the kernel copied it into.
            let (mut n, mut quoted) = (0, self.splitter.slow);
            while n < BLOCK {
                let at = self.buf.len();
                let got = (&mut self.input)
                    .take(HASHED_READ.min(BLOCK - n) as u64)
                    .read_to_end(&mut self.buf)?;
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&self.buf[at..]);
                }
                quoted = quoted || memchr::memchr(b'"', &self.buf[at..]).is_some();
                n += got;
                if got == 0 {
                    break;
                }
            }
            if n < BLOCK {
                self.eof = true;
                continue;
            }
            if let Some(cut) = self.splitter.last_boundary(&self.buf, from, quoted) {
                let mut rest = self.fresh();
                rest.extend_from_slice(&self.buf[cut..]);
                self.buf.truncate(cut);
                self.splitter.cut(cut);
                return Ok(Some(std::mem::replace(&mut self.buf, rest)));
            }
        }
    }
}

/// Finds record boundaries; the buffer it looks at always starts at one.
struct Splitter {
    /// A quote was seen since the last cut: csv-core decides, over `fed` bytes so far.
    slow: bool,
    fed: usize,
    core: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl Splitter {
    fn new() -> Splitter {
        Splitter {
            slow: false,
            fed: 0,
            core: csv_core::Reader::new(),
            out: vec![0; 1 << 16],
            ends: vec![0; 1 << 10],
        }
    }

    /// The end of the last complete record in `buf`; bytes before `new_from` were looked at
    /// by an earlier call, and `quoted` says whether a quote was seen in those after it.
    fn last_boundary(&mut self, buf: &[u8], new_from: usize, quoted: bool) -> Option<usize> {
        use csv_core::ReadRecordResult as R;
        if !self.slow {
            if !quoted {
                return memchr::memrchr(b'\n', &buf[new_from..]).map(|i| new_from + i + 1);
            }
            self.slow = true;
            self.fed = 0;
            self.core.reset();
        }
        let mut last = None;
        while self.fed < buf.len() {
            // The field bytes are not needed here: the output buffers are overwritten.
            let (res, nin, _, _) =
                self.core
                    .read_record(&buf[self.fed..], &mut self.out, &mut self.ends);
            self.fed += nin;
            match res {
                R::Record => last = Some(self.fed),
                R::InputEmpty | R::End => break,
                R::OutputFull | R::OutputEndsFull => {}
            }
        }
        last.filter(|&at| at > 0)
    }

    /// The buffer was cut at `at`, a boundary `last_boundary` returned.
    fn cut(&mut self, at: usize) {
        if self.slow {
            self.fed -= at;
            // Nothing pending after the cut: back to the newline search.
            self.slow = self.fed > 0;
        }
    }
}

/// One chunk to scan: its records start at `start`.
struct Work {
    seq: usize,
    bytes: Vec<u8>,
    start: usize,
}

/// A scanned chunk.
struct Done {
    seq: usize,
    bytes: Vec<u8>,
    start: usize,
    columns: Vec<ColumnScan>,
    /// Where each row starts, from `start`.
    rows: Vec<usize>,
    newlines: u64,
    /// The line (chunk-relative) of the chunk's last record when that record is a quoted
    /// field left open (see [`open_quote`]); None when the chunk has no record.
    last_open: Option<Option<u64>>,
    /// The first error, its line chunk-relative.
    error: Option<ReadError>,
}

/// The records of `reader` into `columns`; `row` gets each row's byte offset. Returns the
/// line and byte offset of the last record (None when there is none). Lines in errors count
/// from the reader's start.
pub(super) fn scan_records<R: Read>(
    path: &Path,
    reader: &mut csv::Reader<R>,
    header: &[String],
    columns: &mut [ColumnScan],
    mut row: impl FnMut(u64),
) -> Result<Option<(u64, u64)>, ReadError> {
    let mut record = csv::ByteRecord::new();
    let width = header.len();
    let mut last = None;
    while read_record(path, reader, &mut record)? {
        let line = record.position().map_or(0, |p| p.line());
        let offset = record.position().map_or(0, |p| p.byte());
        last = Some((line, offset));
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
        for ((i, f), col) in record.iter().enumerate().zip(columns.iter_mut()) {
            match std::str::from_utf8(f) {
                Ok(text) => col.push(text),
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
        row(offset);
    }
    Ok(last)
}

/// [`scan_records`] of text with no quote and no carriage return (most chunks of most
/// files), read as csv-core reads it: records end at newlines, fields at commas, empty lines
/// are skipped. One pass over the bytes, the fields pushed as slices of the text; `rows` gets
/// each row's byte offset. Positions are the csv crate's: a record after empty lines starts
/// (for its line in errors, and its offset) where the first of them does.
pub(super) fn scan_plain(
    path: &Path,
    text: &str,
    header: &[String],
    columns: &mut [ColumnScan],
    rows: &mut Vec<usize>,
) -> Result<Option<(u64, u64)>, ReadError> {
    let bytes = text.as_bytes();
    let width = header.len();
    let mut last = None;
    let mut line = 1u64;
    let mut start = 0;
    let mut blank = None;
    while start < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        if end == start {
            blank.get_or_insert((line, start));
        } else {
            let (line, at) = blank.take().unwrap_or((line, start));
            last = Some((line, at as u64));
            let mut from = start;
            let mut ends = memchr::memchr_iter(b',', &bytes[start..end])
                .map(|i| start + i)
                .chain(std::iter::once(end));
            let mut found = 0;
            for (col, to) in columns.iter_mut().zip(&mut ends) {
                col.push(&text[from..to]);
                from = to + 1;
                found += 1;
            }
            let extra = ends.count();
            if found + extra != width {
                return Err(ReadError::Ragged {
                    path: path.into(),
                    line,
                    expected: width,
                    found: found + extra,
                    hint: if found + extra < width {
                        " (an unbalanced quote or a missing separator?)"
                    } else {
                        ""
                    },
                });
            }
            rows.push(at);
        }
        line += 1;
        start = end + 1;
    }
    Ok(last)
}

pub(super) fn read_record<R: Read>(
    path: &Path,
    reader: &mut csv::Reader<R>,
    record: &mut csv::ByteRecord,
) -> Result<bool, ReadError> {
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
}

fn csv_reader<R: Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(input)
}

fn scan_chunk(path: &Path, header: &[String], counted: &[AtomicBool], work: Work) -> Done {
    let body = &work.bytes[work.start..];
    let mut columns: Vec<ColumnScan> = header
        .iter()
        .zip(counted)
        .map(|(h, c)| ColumnScan::for_chunk(h, c.load(Ordering::Relaxed)))
        .collect();
    let mut rows = Vec::new();
    let plain = memchr::memchr2(b'"', b'\r', body)
        .is_none()
        .then(|| std::str::from_utf8(body).ok())
        .flatten();
    let result = match plain {
        Some(text) => scan_plain(path, text, header, &mut columns, &mut rows),
        None => {
            let mut reader = csv_reader(body);
            scan_records(path, &mut reader, header, &mut columns, |offset| {
                rows.push(offset as usize)
            })
        }
    };
    for (c, flag) in columns.iter().zip(counted) {
        if c.counts.is_none() {
            flag.store(false, Ordering::Relaxed);
        }
    }
    let (last_open, error) = match result {
        Ok(last) => (last.map(|(line, at)| open_quote(body, at, line)), None),
        Err(e) => (None, Some(e)),
    };
    Done {
        seq: work.seq,
        newlines: memchr::memchr_iter(b'\n', body).count() as u64,
        bytes: work.bytes,
        start: work.start,
        columns,
        rows,
        last_open,
        error,
    }
}

/// `line` when the record at `at`, the last of `body`, leaves a quote open: the csv parser
/// then took the rest of the input as one field, newlines included. Quotes pair up in a
/// closed quoted field (`""` inside one is two), so an odd count is an open one.
fn open_quote(body: &[u8], at: u64, line: u64) -> Option<u64> {
    let rest = body.get(at as usize..).unwrap_or_default();
    if memchr::memchr_iter(b'"', rest).count().is_multiple_of(2) {
        return None;
    }
    let row = RowParser::new().fields(rest);
    (0..row.len())
        .any(|i| row.get(i).is_some_and(|f| f.contains('\n')))
        .then_some(line)
}

/// An error's line, from chunk-relative to file-relative.
fn shift_line(e: ReadError, base: u64) -> ReadError {
    match e {
        ReadError::Ragged {
            path,
            line,
            expected,
            found,
            hint,
        } => ReadError::Ragged {
            path,
            line: line + base,
            expected,
            found,
            hint,
        },
        ReadError::NotUtf8 {
            path,
            line,
            column,
            byte,
        } => ReadError::NotUtf8 {
            path,
            line: line + base,
            column,
            byte,
        },
        ReadError::Csv {
            path,
            line,
            message,
        } => ReadError::Csv {
            path,
            line: line + base,
            message,
        },
        other => other,
    }
}

/// Parses one record again (for the sample), with csv-core as the csv crate does.
pub(super) struct RowParser {
    core: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl RowParser {
    pub(super) fn new() -> RowParser {
        RowParser {
            core: csv_core::Reader::new(),
            out: vec![0; 1 << 12],
            ends: vec![0; 64],
        }
    }

    pub(super) fn fields(&mut self, input: &[u8]) -> SampleRow {
        use csv_core::ReadRecordResult as R;
        self.core.reset();
        let (mut pos, mut outlen, mut nends) = (0, 0, 0);
        loop {
            let (res, nin, nout, nend) = self.core.read_record(
                &input[pos..],
                &mut self.out[outlen..],
                &mut self.ends[nends..],
            );
            pos += nin;
            outlen += nout;
            nends += nend;
            match res {
                R::InputEmpty => {} // the next call sees the end of the input
                R::OutputFull => self.out.resize(self.out.len() * 2, 0),
                R::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                R::Record | R::End => break,
            }
        }
        let mut start = 0;
        SampleRow::new(self.ends[..nends].iter().map(|&end| {
            let f = std::str::from_utf8(&self.out[start..end]).ok();
            start = end;
            f
        }))
    }
}

/// Folds scanned chunks into the scanner, in order.
struct Merger<'a> {
    scanner: &'a mut Scanner,
    counted: &'a [AtomicBool],
    /// Newlines before the next chunk.
    line_base: u64,
    last_open: Option<u64>,
}

impl Merger<'_> {
    /// Merges `done`, returning its buffer for the next chunk.
    fn merge(&mut self, done: Done) -> Result<Vec<u8>, ReadError> {
        if let Some(e) = done.error {
            return Err(shift_line(e, self.line_base));
        }
        for ((g, c), flag) in self
            .scanner
            .columns
            .iter_mut()
            .zip(done.columns)
            .zip(self.counted)
        {
            g.merge(c);
            if g.counts.is_none() {
                flag.store(false, Ordering::Relaxed);
            }
        }
        let body = &done.bytes[done.start..];
        for (i, &offset) in done.rows.iter().enumerate() {
            self.scanner.rows += 1;
            if let Some(slot) = self.scanner.reservoir.slot() {
                // The record runs at most to where the next one starts.
                let end = done.rows.get(i + 1).copied().unwrap_or(body.len());
                let record = body[offset..end].into();
                self.scanner.reservoir.place(slot, Kept::Record(record));
            }
        }
        if let Some(open) = done.last_open {
            self.last_open = open.map(|line| line + self.line_base);
        }
        self.line_base += done.newlines;
        Ok(done.bytes)
    }
}

/// The header: the first record of the first chunk, and where the next record starts.
fn read_header(path: &Path, chunk: &[u8]) -> Result<(Vec<String>, usize), ReadError> {
    let mut reader = csv_reader(chunk);
    let mut record = csv::ByteRecord::new();
    if !read_record(path, &mut reader, &mut record)? {
        return Err(ReadError::Empty { path: path.into() });
    }
    let header = utf8_fields(path, &record, None, 1)?;
    let mut seen = std::collections::HashSet::new();
    for h in &header {
        if !seen.insert(h.as_str()) {
            return Err(ReadError::DuplicateColumn {
                path: path.into(),
                name: h.clone(),
            });
        }
    }
    Ok((header, reader.position().byte() as usize))
}

/// Every file of a dataset has the columns of the first one (`first` remembers them).
pub(super) fn same_columns(
    path: &Path,
    header: &[String],
    first: &mut Option<(PathBuf, Vec<String>)>,
) -> Result<(), ReadError> {
    match first {
        Some((first_file, first_header)) if first_header != header => Err(ReadError::Mismatch {
            path: path.into(),
            found: header.to_vec(),
            first: first_header.clone(),
            first_file: first_file.clone(),
        }),
        Some(_) => Ok(()),
        None => {
            *first = Some((path.to_path_buf(), header.to_vec()));
            Ok(())
        }
    }
}

/// Scans one CSV stream into the scanner (creating it from the header of the first file),
/// feeding every byte read to `hasher`.
pub(super) fn scan_csv_stream<R: Read + Send>(
    path: &Path,
    input: R,
    hasher: Option<&mut Hasher>,
    scanner: &mut Option<Scanner>,
    sample_size: usize,
    seed: u64,
    first: &mut Option<(PathBuf, Vec<String>)>,
) -> Result<(), ReadError> {
    let io = |source| ReadError::Io {
        path: path.into(),
        source,
    };
    let mut blocks = Blocks::new(input, hasher);
    let (spare_tx, spare_rx) = channel();
    blocks.spare = Some(spare_rx);
    let Some(chunk0) = blocks.next_chunk().map_err(io)? else {
        return Err(ReadError::Empty { path: path.into() });
    };
    let (header, start) = read_header(path, &chunk0)?;
    same_columns(path, &header, first)?;
    let scanner = scanner.get_or_insert_with(|| Scanner::new(header.clone(), sample_size, seed));
    let counted: Vec<AtomicBool> = scanner
        .columns
        .iter()
        .map(|c| AtomicBool::new(c.counts.is_some()))
        .collect();
    let line_base = memchr::memchr_iter(b'\n', &chunk0[..start]).count() as u64;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 8));
    let stop = AtomicBool::new(false);
    let mut merger = Merger {
        scanner,
        counted: &counted,
        line_base,
        last_open: None,
    };
    let (work_tx, work_rx) = sync_channel::<Work>(workers);
    let (done_tx, done_rx) = sync_channel::<Done>(workers);
    let work_rx = Mutex::new(work_rx);
    let (merged, read) = std::thread::scope(|s| {
        let stop = &stop;
        let reader = s.spawn(move || -> std::io::Result<()> {
            let mut next = Some(Work {
                seq: 0,
                bytes: chunk0,
                start,
            });
            let mut seq = 1;
            while let Some(work) = next {
                if stop.load(Ordering::Relaxed) || work_tx.send(work).is_err() {
                    break;
                }
                next = blocks.next_chunk()?.map(|bytes| Work {
                    seq,
                    bytes,
                    start: 0,
                });
                seq += 1;
            }
            Ok(())
        });
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            let (work_rx, header, counted) = (&work_rx, &header, &counted);
            s.spawn(move || loop {
                let work = match work_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => break,
                };
                let Ok(work) = work else { break };
                if done_tx
                    .send(scan_chunk(path, header, counted, work))
                    .is_err()
                {
                    break;
                }
            });
        }
        drop(done_tx);
        let mut pending = BTreeMap::new();
        let mut next = 0;
        let mut merged = Ok(());
        for done in done_rx.iter() {
            if merged.is_err() {
                continue; // drain, so that every thread finishes
            }
            pending.insert(done.seq, done);
            while let Some(d) = pending.remove(&next) {
                next += 1;
                match merger.merge(d) {
                    // The reader may have finished: then the buffer is simply freed.
                    Ok(buf) => drop(spare_tx.send(buf)),
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        merged = Err(e);
                        break;
                    }
                }
            }
        }
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the reader thread panicked")));
        (merged, read)
    });
    merged?;
    read.map_err(io)?;
    if let Some(line) = merger.last_open {
        return Err(ReadError::Csv {
            path: path.into(),
            line,
            message: "a quoted field is never closed (unbalanced \")".into(),
        });
    }
    Ok(())
}
