//! OCI images: references, image assembly, registry client, on-disk image layouts.

pub mod build;
pub mod image;
pub mod layer;
pub mod layout;
pub mod reference;
pub mod registry;
