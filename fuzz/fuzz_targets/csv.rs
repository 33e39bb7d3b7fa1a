//! A CSV dataset chunk through the streaming scanner (types, statistics, reservoir sample):
//! never a panic; what scans has one statistics entry per header column and sample rows of
//! that width.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = std::path::Path::new("fuzz.csv");
    if let Ok(scan) = mlops::data::read::scan_csv_bytes(name, data, 16, 1) {
        let width = scan.columns.len();
        assert!(scan.sample.iter().all(|row| row.len() == width));
        assert!(scan.sample.len() as u64 <= scan.rows.min(16));
        for c in &scan.columns {
            let _ = (c.kind(), c.mean(), c.std());
        }
    }
});
