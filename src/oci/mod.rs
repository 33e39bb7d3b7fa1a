//! OCI images: references, digests, image assembly, registry client and its credentials,
//! on-disk image layouts.

pub(crate) mod auth;
mod blob;
pub mod credentials;
pub mod digest;
pub mod image;
pub mod layer;
pub mod layout;
mod model_layer;
mod progress;
pub mod reference;
pub mod registry;
mod stream;
pub mod tree;
mod upload;
