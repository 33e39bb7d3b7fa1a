//! Times the paired bootstrap for `scripts/bench`: N predictions, R resamples, deterministic data.
//! Prints one JSON line: {"n":..,"resamples":..,"metrics":[..],"seconds":..}.
//!
//!     cargo run --release --example bench_bootstrap -- 100000 10000 accuracy,f1,precision,recall

use std::time::Instant;

use mlops::compare::significance::{bootstrap, Predictions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let r: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let metrics: Vec<String> = args
        .get(3)
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_else(|| {
            vec![
                "accuracy".into(),
                "f1".into(),
                "precision".into(),
                "recall".into(),
            ]
        });
    // A linear congruential stream: reproducible data without extra crates.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let y: Vec<f64> = (0..n).map(|_| (next() < 0.4) as u8 as f64).collect();
    let s1: Vec<f64> = y
        .iter()
        .map(|t| (t * 0.3 + next() * 0.7).min(1.0))
        .collect();
    let s2: Vec<f64> = y
        .iter()
        .map(|t| (t * 0.2 + next() * 0.8).min(1.0))
        .collect();
    let pred = |s: &Vec<f64>| {
        s.iter()
            .map(|x| (*x >= 0.5) as u8 as f64)
            .collect::<Vec<_>>()
    };
    let a = Predictions {
        y_true: y.clone(),
        y_pred: pred(&s1),
        score: Some(s1.clone()),
    };
    let b = Predictions {
        y_true: y,
        y_pred: pred(&s2),
        score: Some(s2.clone()),
    };
    let start = Instant::now();
    let out = bootstrap(&a, &b, &metrics, 0.95, r, 1).expect("bootstrap");
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(out.len(), metrics.len());
    println!(
        "{{\"n\":{n},\"resamples\":{r},\"metrics\":{:?},\"seconds\":{seconds:.4}}}",
        metrics
    );
}
