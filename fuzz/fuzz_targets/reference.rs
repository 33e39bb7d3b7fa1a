//! Image references and digests: never a panic; a parsed reference prints as text that parses
//! back to the same reference (environment files and logs carry the printed form).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlops::oci::reference::{parse_image, parse_repository, valid_digest};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = valid_digest(text);
    let _ = parse_repository(text);
    if let Ok(r) = parse_image(text) {
        let printed = r.to_string();
        assert_eq!(
            parse_image(&printed).as_ref(),
            Ok(&r),
            "{text:?} printed as {printed:?}"
        );
        if let Some(d) = &r.digest {
            assert!(valid_digest(d.as_str()), "{text:?}: digest {d:?} accepted");
        }
    }
});
