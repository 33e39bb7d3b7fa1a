//! A capture line, written by the serving container (untrusted): the monitor's fast path
//! either declines it or reads exactly what serde_json reads; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mlops::monitor::fastline::agree(data);
});
