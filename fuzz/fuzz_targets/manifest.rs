//! A registry's manifest bytes (an image index or an image manifest) as `mlops package` reads
//! a base image's: never a panic, whatever the registry sends.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mlops::oci::image::platform_manifest(data);
    let _ = mlops::oci::image::parse_manifest(data);
});
