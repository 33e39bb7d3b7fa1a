//! metrics.json, written by the step's (untrusted) code: never a panic; what parses is a
//! non-empty map of finite numbers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(metrics) = mlops::compare::metrics::parse_metrics(text) {
        assert!(!metrics.is_empty());
        assert!(metrics.values().all(|v| v.is_finite()), "{metrics:?}");
    }
});
