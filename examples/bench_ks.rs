//! Times the two-sample KS test for `scripts/bench` on two raw little-endian float64 files
//! (as numpy's `tofile` writes them). Prints one JSON line with the statistic, p-value and the
//! seconds spent in the test (sorting included, reading the files not).
//!
//!     cargo run --release --example bench_ks -- a.f64 b.f64

use std::time::Instant;

use mlops::data::stats::ks_2samp;

fn read(path: &str) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (a, b) = (read(&args[1]), read(&args[2]));
    let t = Instant::now();
    let out = ks_2samp(&a, &b);
    let seconds = t.elapsed().as_secs_f64();
    println!(
        "{{\"n1\":{},\"n2\":{},\"statistic\":{},\"p_value\":{},\"seconds\":{seconds}}}",
        a.len(),
        b.len(),
        out.statistic,
        out.p_value.unwrap_or(f64::NAN)
    );
}
