use super::*;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn err(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "d.csv", bytes);
    scan(&p, 100, 1)
        .unwrap_err()
        .to_string()
        .replace(&dir.path().display().to_string(), "DIR")
}

#[test]
fn infers_types_and_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "d.csv",
        b"id,x,flag,plan,empty\n1,1.5,true,basic,\n2,2.5,false,plus,NA\n3,,true,basic,\n4,4.0,false,\"pl,us\",\n",
    );
    let s = scan(&p, 100, 1).unwrap();
    assert_eq!(s.rows, 4);
    let kinds: Vec<Kind> = s.columns.iter().map(ColumnScan::kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::Integer,
            Kind::Float,
            Kind::Boolean,
            Kind::Categorical,
            Kind::Categorical
        ]
    );
    let x = &s.columns[1];
    assert_eq!((x.count, x.nulls), (3, 1));
    assert_eq!((x.min, x.max), (1.5, 4.0));
    assert!((x.mean().unwrap() - 8.0 / 3.0).abs() < 1e-12);
    // pandas: pd.Series([1.5, 2.5, 4.0]).std() == 1.2583057392117916
    assert!((x.std().unwrap() - 1.2583057392117916).abs() < 1e-12);
    assert_eq!(s.columns[3].counts.as_ref().unwrap()["pl,us"], 1);
    assert_eq!(s.columns[4].nulls, 4);
    assert_eq!(s.sample.len(), 4);
}

#[test]
fn a_column_that_changes_type_widens() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "d.csv", b"a,b\n1,1\n2,2.5\nthree,3\n");
    let s = scan(&p, 100, 1).unwrap();
    assert_eq!(s.columns[0].kind(), Kind::Categorical);
    assert_eq!(s.columns[1].kind(), Kind::Float);
}

#[test]
fn malformed_inputs_name_the_file_and_line() {
    assert_eq!(
        err(b""),
        "DIR/d.csv: the file is empty (a CSV dataset needs a header row)"
    );
    assert_eq!(
        err(b"a,b\n1,2\n3\n"),
        "DIR/d.csv:3: expected 2 fields as in the header, found 1 (an unbalanced quote or a missing separator?)"
    );
    assert_eq!(
        err(b"a,b\n1,2,3\n"),
        "DIR/d.csv:2: expected 2 fields as in the header, found 3"
    );
    // An unbalanced quote swallows the rest of the file into one field.
    assert_eq!(
        err(b"a,b\n1,\"2\n3,4\n5,6\n"),
        "DIR/d.csv:2: a quoted field is never closed (unbalanced \")"
    );
    // A quoted field may hold a newline when it is closed.
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ok.csv", b"a,b\n1,\"two\nlines\"\n");
    assert_eq!(scan(&p, 10, 1).unwrap().rows, 1);
    // ... anywhere in the last record, not only in its last field.
    let p = write(dir.path(), "ok2.csv", b"a,b\n1,2\n\"two\nlines\",3\n");
    assert_eq!(scan(&p, 10, 1).unwrap().rows, 2);
    assert_eq!(
        err(b"a,b\n1,caf\xe9\n"),
        "DIR/d.csv:2: column \"b\" is not UTF-8 text (byte 3 of the field)"
    );
    assert_eq!(
        err(b"a,a\n1,2\n"),
        "DIR/d.csv: duplicate column name \"a\" in the header"
    );
}

#[test]
fn header_only_is_zero_rows() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "d.csv", b"a,b\n");
    let s = scan(&p, 100, 1).unwrap();
    assert_eq!(s.rows, 0);
    assert_eq!(s.columns.len(), 2);
}

#[test]
fn reservoir_is_uniform_and_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("i\n");
    for i in 0..20_000 {
        text.push_str(&format!("{i}\n"));
    }
    let p = write(dir.path(), "d.csv", text.as_bytes());
    let a = scan(&p, 1000, 7).unwrap();
    let b = scan(&p, 1000, 7).unwrap();
    assert_eq!(a.sample, b.sample);
    assert_eq!(a.sample.len(), 1000);
    let values: Vec<f64> = a
        .sample
        .iter()
        .map(|r| r.get(0).unwrap().parse().unwrap())
        .collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    // Uniform over 0..20000: mean 10000, sd of the sample mean ≈ 5774/√1000 ≈ 183.
    assert!((mean - 10_000.0).abs() < 800.0, "sample mean {mean}");
    let late = values.iter().filter(|v| **v >= 10_000.0).count();
    assert!(
        (400..600).contains(&late),
        "{late} of 1000 from the second half"
    );
    let c = scan(&p, 1000, 8).unwrap();
    assert_ne!(a.sample, c.sample);
}

#[test]
fn parquet_files_and_truncated_ones() {
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("plan", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Float64Array::from(vec![Some(1.0), None, Some(3.5)])),
            Arc::new(StringArray::from(vec!["a", "b", "a"])),
        ],
    )
    .unwrap();
    let p = dir.path().join("d.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&p).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let s = scan(&p, 100, 1).unwrap();
    assert_eq!(s.rows, 3);
    assert_eq!(s.columns[0].kind(), Kind::Float);
    assert_eq!(s.columns[0].nulls, 1);
    assert_eq!(s.columns[1].counts.as_ref().unwrap()["a"], 2);
    let bytes = std::fs::read(&p).unwrap();
    let t = write(dir.path(), "t.parquet", &bytes[..bytes.len() / 2]);
    let e = scan(&t, 100, 1).unwrap_err().to_string();
    assert!(e.contains("t.parquet: not a readable Parquet file"), "{e}");
}

#[test]
fn directories_must_agree_on_columns() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.csv", b"x,y\n1,2\n");
    write(dir.path(), "b.csv", b"x,z\n1,2\n");
    let e = scan(dir.path(), 100, 1).unwrap_err().to_string();
    assert!(
        e.contains("b.csv: columns [\"x\", \"z\"] differ from [\"x\", \"y\"]"),
        "{e}"
    );
    write(dir.path(), "b.csv", b"x,y\n3,4\n");
    assert_eq!(scan(dir.path(), 100, 1).unwrap().rows, 2);
}

#[test]
fn bytes_scan_like_files() {
    let dir = tempfile::tempdir().unwrap();
    for bytes in [
        &b"id,x,plan\n1,1.5,basic\n2,,\"pl,us\"\n"[..],
        b"a,b\n1,\"open\n2,3\n",
        b"a,b\n1\n",
        b"",
    ] {
        let p = write(dir.path(), "d.csv", bytes);
        let from_file = scan(&p, 10, 1).map_err(|e| e.to_string());
        let from_bytes = scan_csv_bytes(&p, bytes, 10, 1).map_err(|e| e.to_string());
        match (from_file, from_bytes) {
            (Ok(f), Ok(b)) => {
                assert_eq!((f.rows, &f.sample), (b.rows, &b.sample));
                let kinds = |s: &Scan| s.columns.iter().map(ColumnScan::kind).collect::<Vec<_>>();
                assert_eq!(kinds(&f), kinds(&b));
            }
            (Err(f), Err(b)) => assert_eq!(f, b),
            (f, b) => panic!("{bytes:?}: file {f:?}, bytes {b:?}"),
        }
    }
}

#[test]
fn the_fast_float_path_agrees_with_the_full_parser() {
    let mut cases: Vec<String> = [
        "0",
        "-0",
        "-0.0",
        "0.1",
        "5.",
        ".5",
        "-.5",
        "1.",
        "123456789012345",
        "1234567890123456",
        "0.000000000000001",
        "9007199254740993",
        "1e5",
        "+1.5",
        "-",
        ".",
        "",
        "1.2.3",
        "12a",
        "inf",
        "NaN",
        "0.30000000000000004",
        "-999999999999999",
        "00000000000000001.5",
        // Around the eight-byte words and next to the digits' byte range ('/' and ':').
        "1/2",
        "1:2",
        "/1",
        ":1",
        "1.5/",
        "1.5:",
        "1.:5",
        "12\u{e9}",
        "1.2\u{663}",
        "12345678.5",
        "1234567.12345678",
        "1234567.123456789",
        "0.12345678",
        "0.123456789",
        "99999999",
        "9999999",
        "9999999.99999999",
        "-9999999.99999999",
        "1.0000000",
        "0.00000001",
        "7.",
        "-7",
        "1 ",
        " 1",
        "1.5 ",
        "12345678.",
        "1234567.8",
        "-12345678.",
        "1.2345678",
        "12.345678",
        "123456789",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Random plain decimals of every length.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..100_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let digits = format!("{}", state % 10u64.pow((state % 17) as u32 + 1));
        let point = (state >> 40) as usize % (digits.len() + 1);
        let sign = if state >> 63 == 1 { "-" } else { "" };
        cases.push(format!("{sign}{}.{}", &digits[..point], &digits[point..]));
        cases.push(format!("{sign}{digits}"));
        // Short strings over digits, the bytes next to them and the other number characters.
        let alphabet = b"0123456789012345678901234567890123456789.-/:e+ \x7f";
        let len = (state >> 20) as usize % 19;
        cases.push(
            (0..len)
                .map(|i| alphabet[(state >> (i * 3 % 60)) as usize % alphabet.len()] as char)
                .collect(),
        );
    }
    for c in &cases {
        let full = c.parse::<f64>().ok();
        let fast = parse_float(c);
        assert_eq!(
            full.map(f64::to_bits),
            fast.map(f64::to_bits),
            "{c:?}: full {full:?}, fast {fast:?}"
        );
    }
}

#[test]
fn chunks_of_a_large_file_are_cut_at_record_boundaries() {
    // Over two 4 MiB blocks: a quote-free stretch (cut at newlines), then quoted fields
    // holding newlines and commas (cut where csv-core says a record ends), then plain again.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,note,x\n");
    let mut lines = 1u64;
    let rows = 450_000u64;
    let quoted = 100_000..310_000u64;
    let mut plain1 = 0;
    for i in 0..rows {
        if quoted.contains(&i) {
            text.push_str(&format!(
                "{i},\"n{}\nsecond, line \"\"q\"\"\",{}.5\n",
                i % 7,
                i % 100
            ));
            lines += 2;
        } else {
            text.push_str(&format!("{i},plain{},{}.25\n", i % 3, i % 100));
            lines += 1;
            plain1 += u64::from(i % 3 == 1);
        }
    }
    assert!(text.len() > 2 * parallel::BLOCK, "{}", text.len());
    let p = write(dir.path(), "big.csv", text.as_bytes());
    let s = scan(&p, 5_000, 3).unwrap();
    assert_eq!(s.rows, rows);
    assert_eq!(s.columns[0].kind(), Kind::Integer);
    assert_eq!(s.columns[2].kind(), Kind::Float);
    let notes = s.columns[1].counts.as_ref().unwrap();
    assert_eq!(notes.len(), 3 + 7);
    assert_eq!(notes["n3\nsecond, line \"q\""], 30_000);
    assert_eq!(notes["plain1"], plain1);
    assert_eq!(
        (s.columns[0].min, s.columns[0].max),
        (0.0, (rows - 1) as f64)
    );
    let mean = s.columns[0].mean().unwrap();
    assert!((mean - (rows - 1) as f64 / 2.0).abs() < 1e-6, "{mean}");
    // Every sampled row is one of the rows written, whole.
    assert_eq!(s.sample.len(), 5_000);
    for row in &s.sample {
        let id: u64 = row.get(0).unwrap().parse().unwrap();
        let note = row.get(1).unwrap();
        if quoted.contains(&id) {
            assert_eq!(note, format!("n{}\nsecond, line \"q\"", id % 7));
        } else {
            assert_eq!(note, format!("plain{}", id % 3));
        }
    }
    // The same data scans the same from memory, and a ragged row near the end is reported on
    // its own line of the file.
    let b = scan_csv_bytes(&p, text.as_bytes(), 5_000, 3).unwrap();
    assert_eq!((b.rows, &b.sample), (s.rows, &s.sample));
    text.push_str("1,2\n");
    let p = write(dir.path(), "ragged.csv", text.as_bytes());
    let e = scan(&p, 10, 1).unwrap_err().to_string();
    assert!(
        e.ends_with(&format!(
            "ragged.csv:{}: expected 3 fields as in the header, found 2 (an unbalanced quote or a missing separator?)",
            lines + 1
        )),
        "{e}"
    );
}

#[test]
fn merging_chunk_statistics_equals_one_pass() {
    // The statistics of a column scanned in two halves and merged are those of one pass:
    // exactly for counts, types and extremes, to rounding for the moments.
    let values: Vec<String> = (0..1000).map(|i| format!("{}.5", (i * 37) % 101)).collect();
    let mut one = ColumnScan::new("x".into());
    values.iter().for_each(|v| one.push(v));
    let (mut a, mut b) = (ColumnScan::new("x".into()), ColumnScan::new("x".into()));
    values[..300].iter().for_each(|v| a.push(v));
    values[300..].iter().for_each(|v| b.push(v));
    a.merge(b);
    assert_eq!(
        (a.kind(), a.count, a.nulls),
        (one.kind(), one.count, one.nulls)
    );
    assert_eq!((a.min, a.max), (one.min, one.max));
    assert!((a.mean().unwrap() - one.mean().unwrap()).abs() < 1e-12);
    assert!((a.std().unwrap() - one.std().unwrap()).abs() < 1e-12);
    assert_eq!(a.counts, one.counts);
    // Types widen as one pass would: integer then float is float; boolean then integer is
    // categorical; an empty side changes nothing.
    let scan_of = |vals: &[&str]| {
        let mut c = ColumnScan::new("c".into());
        vals.iter().for_each(|v| c.push(v));
        c
    };
    for (first, second, kind) in [
        (&["1", "2"][..], &["2.5"][..], Kind::Float),
        (&["true"][..], &["1"][..], Kind::Categorical),
        (&["1"][..], &["true"][..], Kind::Categorical),
        (&[""][..], &["false"][..], Kind::Boolean),
        (&["3"][..], &[][..], Kind::Integer),
    ] {
        let mut m = scan_of(first);
        m.merge(scan_of(second));
        let all: Vec<&str> = first.iter().chain(second).copied().collect();
        assert_eq!(m.kind(), kind, "{first:?} then {second:?}");
        assert_eq!(scan_of(&all).kind(), kind, "{all:?} in one pass");
    }
}

/// The figures of one column, comparable.
fn figures(c: &ColumnScan) -> (Kind, u64, u64, u64, u64, u64, Option<Counts>) {
    (
        c.kind(),
        c.count,
        c.nulls,
        c.min.to_bits(),
        c.max.to_bits(),
        c.mean.to_bits(),
        c.counts.clone(),
    )
}

#[test]
fn the_plain_chunk_path_reads_as_csv_core_does() {
    // Random quote-free texts (numbers, words, nulls, empty lines, ragged rows, a missing
    // last newline): the fast path and the csv crate agree on every figure, every row
    // offset and every error.
    use rand::rngs::ChaCha8Rng;
    use rand::{RngExt, SeedableRng};
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let pieces = [
        "1", "-2", "3.5", "1e3", "", "NA", "true", "x", "é", "-0", "0.1", "inf", " 4",
    ];
    let path = Path::new("t.csv");
    for width in 1..4usize {
        let header: Vec<String> = (0..width).map(|i| format!("c{i}")).collect();
        for _ in 0..400 {
            let mut text = String::new();
            for _ in 0..rng.random_range(0..8) {
                if rng.random_range(0..6) == 0 {
                    text.push('\n'); // an empty line
                    continue;
                }
                let n = if rng.random_range(0..12) == 0 {
                    rng.random_range(1..5)
                } else {
                    width
                };
                let fields: Vec<&str> = (0..n)
                    .map(|_| pieces[rng.random_range(0..pieces.len())])
                    .collect();
                text.push_str(&fields.join(","));
                text.push('\n');
            }
            if rng.random_range(0..3) == 0 {
                text.pop();
            }
            let fresh = || -> Vec<ColumnScan> {
                header.iter().map(|h| ColumnScan::new(h.clone())).collect()
            };
            let (mut a, mut b) = (fresh(), fresh());
            let (mut rows_a, mut rows_b) = (Vec::new(), Vec::new());
            let fast = parallel::scan_plain(path, &text, &header, &mut a, &mut rows_a);
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(text.as_bytes());
            let full = parallel::scan_records(path, &mut reader, &header, &mut b, |o| {
                rows_b.push(o as usize)
            });
            match (fast, full) {
                (Ok(x), Ok(y)) => {
                    assert_eq!(x, y, "{text:?}");
                    assert_eq!(rows_a, rows_b, "{text:?}");
                    for (ca, cb) in a.iter().zip(&b) {
                        assert_eq!(figures(ca), figures(cb), "{text:?}");
                    }
                }
                (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string(), "{text:?}"),
                (x, y) => panic!("{text:?}: fast {x:?}, full {y:?}"),
            }
        }
    }
}

#[test]
fn parquet_row_groups_scan_as_one_and_as_their_text() {
    // The same rows in one row group, in 37 row groups and as CSV text (values printed as
    // Arrow prints them) give the same rows, types, counts, extremes, categories and
    // sample; the moments agree to rounding.
    use arrow::array::{ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array};
    use arrow::array::{StringArray, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;
    let n = 30_000usize;
    let id: Vec<Option<i64>> = (0..n as i64)
        .map(|i| (i % 97 != 0).then_some(i * 7 - 1000))
        .collect();
    let x: Vec<Option<f64>> = (0..n)
        .map(|i| match i % 211 {
            0 => None,
            1 => Some(f64::NAN),
            _ => Some((i as f64 * 0.37).sin() * 100.0),
        })
        .collect();
    let k: Vec<i32> = (0..n as i32).map(|i| i % 13 - 6).collect();
    let y: Vec<f32> = (0..n).map(|i| (i % 50) as f32 / 8.0).collect();
    let big: Vec<u64> = (0..n as u64).map(|i| u64::MAX - i % 3).collect();
    let plan: Vec<Option<&str>> = (0..n)
        .map(|i| ["basic", "plus", "", "NA", "prémium"].get(i % 6).copied())
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("x", DataType::Float64, true),
        Field::new("k", DataType::Int32, false),
        Field::new("y", DataType::Float32, false),
        Field::new("big", DataType::UInt64, false),
        Field::new("plan", DataType::Utf8, true),
    ]));
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(id.clone())),
        Arc::new(Float64Array::from(x.clone())),
        Arc::new(Int32Array::from(k.clone())),
        Arc::new(Float32Array::from(y.clone())),
        Arc::new(UInt64Array::from(big.clone())),
        Arc::new(StringArray::from(plan.clone())),
    ];
    let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write_groups = |name: &str, group: usize| {
        let props = WriterProperties::builder().set_max_row_group_row_count(Some(group));
        write_parquet(&dir.path().join(name), &batch, props.build())
    };
    let one = scan(&write_groups("one.parquet", n), 2_000, 5).unwrap();
    let many = scan(&write_groups("many.parquet", 811), 2_000, 5).unwrap();
    let mut text = String::from("id,x,k,y,big,plan\n");
    let mut ryu = ryu::Buffer::new();
    for i in 0..n {
        let idt = id[i].map(|v| v.to_string()).unwrap_or_default();
        let xt = x[i].map(|v| ryu.format(v).to_string()).unwrap_or_default();
        let yt = ryu.format(y[i]).to_string();
        let pt = plan[i].unwrap_or("");
        text.push_str(&format!("{idt},{xt},{},{yt},{},{pt}\n", k[i], big[i]));
    }
    let csv = scan_csv_bytes(Path::new("t.csv"), text.as_bytes(), 2_000, 5).unwrap();
    for other in [&many, &csv] {
        assert_same_scan(&one, other);
        for (a, b) in one.columns.iter().zip(&other.columns) {
            if let (Some(ma), Some(mb)) = (a.mean(), b.mean()) {
                assert!(
                    (ma - mb).abs() <= 1e-9 * ma.abs().max(1.0),
                    "{}: {ma} {mb}",
                    a.name
                );
                let (sa, sb) = (a.std().unwrap(), b.std().unwrap());
                assert!(
                    (sa - sb).abs() <= 1e-9 * sa.max(1.0),
                    "{}: {sa} {sb}",
                    a.name
                );
            }
        }
    }
    let kinds: Vec<Kind> = one.columns.iter().map(ColumnScan::kind).collect();
    use Kind::*;
    assert_eq!(kinds, [Integer, Float, Integer, Float, Float, Categorical]);
    assert_eq!(one.columns[2].counts.as_ref().unwrap().len(), 13);
    assert_eq!(
        one.columns[4].counts.as_ref().unwrap()["18446744073709551615"],
        10_000
    );
    assert!(
        one.columns[0].counts.is_none(),
        "more than MAX_CATEGORIES ids"
    );
    assert_eq!(one.sample.len(), 2_000);
}

#[test]
fn parquet_text_columns_scan_as_their_text_with_and_without_dictionaries() {
    // Text columns are read as dictionaries and each distinct value scanned once per batch
    // once the column is categorical: numbers in text, a column that turns categorical in
    // the middle of a batch, nulls and null-like text, more than MAX_CATEGORIES values, a
    // LargeUtf8 column, dictionary-encoded or plain, all scan as the CSV of the same text.
    use arrow::array::{ArrayRef, LargeStringArray, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;
    let n = 40_000usize;
    let num: Vec<String> = (0..n).map(|i| format!("{}", i % 50)).collect();
    let mixed: Vec<String> = (0..n)
        .map(|i| match i {
            0..5000 => format!("{}.5", i % 7),
            _ => ["a", "b", "NA", "7"][i % 4].to_string(),
        })
        .collect();
    let many: Vec<Option<String>> = (0..n)
        .map(|i| (i % 9 != 0).then(|| format!("v{}", i % 15_000)))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("num", DataType::Utf8, false),
        Field::new("mixed", DataType::LargeUtf8, false),
        Field::new("many", DataType::Utf8, true),
    ]));
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(&num)),
        Arc::new(LargeStringArray::from_iter_values(&mixed)),
        Arc::new(StringArray::from(many.clone())),
    ];
    let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, dictionary: bool| {
        let props = WriterProperties::builder()
            .set_dictionary_enabled(dictionary)
            .set_max_row_group_row_count(Some(9_000));
        write_parquet(&dir.path().join(name), &batch, props.build())
    };
    let mut text = String::from("num,mixed,many\n");
    for i in 0..n {
        let m = many[i].as_deref().unwrap_or("");
        text.push_str(&format!("{},{},{m}\n", num[i], mixed[i]));
    }
    let csv = scan_csv_bytes(Path::new("t.csv"), text.as_bytes(), 1_000, 3).unwrap();
    for dictionary in [true, false] {
        let pq = scan(
            &write(&format!("d{dictionary}.parquet"), dictionary),
            1_000,
            3,
        )
        .unwrap();
        assert_same_scan(&pq, &csv);
        let kinds: Vec<Kind> = pq.columns.iter().map(ColumnScan::kind).collect();
        assert_eq!(kinds, [Kind::Integer, Kind::Categorical, Kind::Categorical]);
        assert_eq!(pq.columns[1].counts.as_ref().unwrap()["a"], 8_750);
        assert_eq!(pq.columns[1].nulls, 8_750, "NA is null");
        assert!(pq.columns[2].counts.is_none(), "more than MAX_CATEGORIES");
        assert_eq!(pq.columns[2].nulls, (n as u64).div_ceil(9));
    }
}

/// Writes `batch` as the Parquet file `path`.
fn write_parquet(
    path: &Path,
    batch: &arrow::record_batch::RecordBatch,
    props: parquet::file::properties::WriterProperties,
) -> std::path::PathBuf {
    let f = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), Some(props)).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    path.to_path_buf()
}

/// The same rows, sample, and per column the same type, counts, extremes and categories.
fn assert_same_scan(a: &Scan, b: &Scan) {
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.sample, b.sample);
    for (ca, cb) in a.columns.iter().zip(&b.columns) {
        let (fa, fb) = (figures(ca), figures(cb));
        let name = &ca.name;
        assert_eq!(
            (fa.0, fa.1, fa.2, fa.3, fa.4),
            (fb.0, fb.1, fb.2, fb.3, fb.4),
            "{name}"
        );
        assert_eq!(fa.6, fb.6, "{name}");
    }
}

/// An I/O error names the file and its cause once (the cause is the error's source, which
/// `{:#}` prints after the message).
#[test]
fn io_errors_print_their_cause_once() {
    let e = anyhow::Error::from(ReadError::Io {
        path: "data/d.csv".into(),
        source: std::io::Error::other("the disk went away"),
    });
    assert_eq!(
        format!("{e:#}"),
        "cannot read data/d.csv: the disk went away"
    );
}
