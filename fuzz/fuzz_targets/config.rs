//! mlops.yaml text → diagnostics (or a resolved config): never a panic, and every diagnostic
//! points at a line and column inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let checked = mlops::config::check_text("mlops.yaml", std::path::Path::new("mlops.yaml"), text);
    assert!(
        checked.config.is_some() || !checked.diagnostics.is_empty(),
        "neither a config nor a diagnostic"
    );
});
