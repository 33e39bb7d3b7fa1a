//! The KS statistic counted in buckets (the path of large samples) against the walk over both
//! samples sorted: bit-for-bit equal on any data, ties, signed zeros, infinities and NaN
//! included. Each byte is one value: its low 3 bits pick NaN, ±0, ±inf or one of 32 values at
//! a tiny, a unit or a huge scale, so runs of ties and values far apart are common; the first
//! byte says where the first sample ends.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn value(b: u8) -> f64 {
    let v = f64::from(b >> 3);
    match b & 7 {
        0 => f64::NAN,
        1 => -0.0,
        2 => 0.0,
        3 => f64::INFINITY,
        4 => -v * 1e-300,
        5 => v - 16.0,
        6 => v * 1e300,
        _ => f64::NEG_INFINITY,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let values: Vec<f64> = rest.iter().map(|&b| value(b)).collect();
    let at = values.len() * usize::from(cut) / 255;
    let (a, b) = values.split_at(at);
    if let Some((bucketed, sorted)) = mlops::data::stats::ks_statistic_both_ways(a, b) {
        assert_eq!(bucketed.to_bits(), sorted.to_bits(), "{a:?} {b:?}");
    }
});
