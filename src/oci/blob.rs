//! Reading a blob against its descriptor: never a byte past its size, then its length and
//! digest checked, whatever the registry announced or sent.

use anyhow::{bail, Result};

use super::digest::{Digest, Hasher};
use super::registry::Registry;

/// A blob body read against its descriptor: never more than `size` bytes, then checked for
/// length and digest by [`BlobReader::finish`].
pub(super) struct BlobReader<'a> {
    registry: &'a Registry,
    resp: reqwest::Response,
    hasher: Hasher,
    digest: Digest,
    name: String,
    size: u64,
    received: u64,
}

impl<'a> BlobReader<'a> {
    pub(super) fn new(
        registry: &'a Registry,
        resp: reqwest::Response,
        digest: &Digest,
        name: String,
        size: u64,
    ) -> BlobReader<'a> {
        BlobReader {
            registry,
            resp,
            hasher: digest.hasher(),
            digest: digest.clone(),
            name,
            size,
            received: 0,
        }
    }

    pub(super) async fn next(&mut self) -> Result<Option<bytes::Bytes>> {
        let Some(chunk) = self.registry.chunk(&mut self.resp, &self.name).await? else {
            return Ok(None);
        };
        self.received += chunk.len() as u64;
        if self.received > self.size {
            bail!(
                "registry {} sent more than the {} bytes its descriptor gives {}: refusing it",
                self.registry.host,
                self.size,
                self.name
            );
        }
        self.hasher.update(&chunk);
        Ok(Some(chunk))
    }

    pub(super) fn finish(self) -> Result<()> {
        if self.received != self.size {
            bail!(
                "registry {} ended {} after {} of its {} bytes: refusing it",
                self.registry.host,
                self.name,
                self.received,
                self.size
            );
        }
        let got = self.hasher.finish();
        if got != self.digest {
            bail!(
                "registry {} returned {} with digest {got}: refusing it",
                self.registry.host,
                self.name
            );
        }
        Ok(())
    }
}
