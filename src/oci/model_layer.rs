//! The model layer of a packaging into a registry: produced only when the registry lacks it.
//!
//! Each run keeps `model-layer.json`: the key of the model tree it was made from (see `tree`:
//! the files' stamps, size, inode and times, never mtime alone) and the layer's digest, diff_id
//! and size. Packaging again:
//! - same key, and the registry has the blob (HEAD): nothing is read or sent;
//! - a different key (files touched, rewritten, or stamps too recent to trust) after an
//!   earlier layer: the tar is hashed (a read, nothing written) and sent only when the registry
//!   lacks that digest, so touched but identical files move nothing and changed ones never
//!   reuse a stale digest;
//! - no earlier layer: the uncompressed tar is streamed straight into the upload (`stream`),
//!   hashed in the same pass; a compressed one is built into a file in `work`, then pushed.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::auth::Scope;
use super::digest::Digest;
use super::image::LayerRecord;
use super::layer::{self, Compression};
use super::registry::Registry;
use super::tree::ModelTree;

#[derive(Serialize, Deserialize)]
struct CachedLayer {
    /// The tree's key when the layer was made (None: its stamps were too recent to trust).
    key: Option<String>,
    layer: LayerRecord,
}

fn record(tree: &ModelTree, digest: Digest, diff_id: Digest, size: u64) -> LayerRecord {
    LayerRecord {
        digest,
        diff_id,
        size,
        media_type: layer::media_type(tree.compression).to_string(),
    }
}

/// The model layer in `repo`: returns its record and the bytes sent for it.
pub(super) async fn push(
    reg: &Registry,
    repo: &str,
    tree: &Arc<ModelTree>,
    cache: &Path,
    work: &Path,
) -> Result<(LayerRecord, u64)> {
    let scope = Scope::push(repo);
    let cached: Option<CachedLayer> = crate::fsutil::read_json(cache).ok();
    let media_type = layer::media_type(tree.compression);
    let cached = cached.filter(|c| c.layer.media_type == media_type);
    let same = cached
        .as_ref()
        .filter(|c| c.key.is_some() && c.key.as_deref() == tree.key());
    if let Some(c) = same {
        if reg.blob_exists_for(&scope, c.layer.digest.as_str()).await? {
            tracing::info!(
                "model layer {} unchanged and in the registry: not sent",
                c.layer.digest.short()
            );
            return Ok((c.layer.clone(), 0));
        }
    }
    let (layer, sent) = match tree.compression {
        Compression::None => {
            let earlier = cached.is_some() && same.is_none();
            let known = if earlier {
                let t = tree.clone();
                let (digest, size) = tokio::task::spawn_blocking(move || layer::hash_tar(&t))
                    .await
                    .context("the model layer hash stopped")??;
                reg.blob_exists_for(&scope, digest.as_str())
                    .await?
                    .then(|| record(tree, digest.clone(), digest, size))
            } else {
                None
            };
            match known {
                Some(layer) => (layer, 0),
                None => {
                    let (digest, sent) = reg.push_model_layer(repo, tree.clone()).await?;
                    let size = tree.tar_size();
                    let record = record(tree, digest.clone(), digest, size);
                    (record, if sent { size } else { 0 })
                }
            }
        }
        Compression::Gzip | Compression::Zstd => {
            let (t, w) = (tree.clone(), work.to_path_buf());
            let built = tokio::task::spawn_blocking(move || layer::build(&t, &w))
                .await
                .context("the model layer build stopped")??;
            let sent = reg
                .push_file(repo, built.digest.as_str(), &built.path)
                .await?;
            std::fs::remove_file(&built.path)
                .with_context(|| format!("cannot remove {}", built.path.display()))?;
            let size = built.size;
            (
                record(tree, built.digest, built.diff_id, size),
                if sent { size } else { 0 },
            )
        }
    };
    let entry = CachedLayer {
        key: tree.key().map(str::to_string),
        layer: layer.clone(),
    };
    crate::fsutil::write_json_atomic(cache, &entry)?;
    Ok((layer, sent))
}
