//! OCI images: references, image assembly, registry client, on-disk image layouts.

pub mod reference;
