//! OCI image layouts on disk (`package.repository: oci:PATH`): `oci-layout`, `index.json` and
//! `blobs/sha256/<hex>`, as the image-spec describes and `oras`, `skopeo` and `crane` read them.
//! Blobs already present are not written again; `index.json` is replaced atomically, with one
//! entry per ref name (the run id).

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::digest::Digest;
use super::layer::Layer;
use super::registry::{Registry, OCI_MANIFEST};

/// `blobs/<algorithm>/<hex>`; the digest is parsed first, so it names no other path.
pub(crate) fn blob_path(dir: &Path, digest: &str) -> Result<std::path::PathBuf> {
    let d =
        Digest::parse(digest).map_err(|e| anyhow::anyhow!("OCI layout {}: {e}", dir.display()))?;
    Ok(dir.join("blobs").join(d.algorithm().name()).join(d.hex()))
}

/// Writes the image into the layout; returns the bytes written.
#[allow(clippy::too_many_arguments)]
pub async fn write(
    dir: &Path,
    base_registry: &Registry,
    base_repository: &str,
    base_layers: &[(String, u64)],
    layer: &Layer,
    config: &[u8],
    manifest: &[u8],
    ref_name: &str,
) -> Result<u64> {
    std::fs::create_dir_all(dir.join("blobs").join("sha256"))
        .with_context(|| format!("cannot create the OCI layout {}", dir.display()))?;
    crate::fsutil::write_atomic(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let mut written = 0u64;
    for (digest, size) in base_layers {
        let target = blob_path(dir, digest)?;
        if target.exists() {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = target.with_extension("partial");
        if let Err(e) = base_registry
            .blob_to_file(base_repository, digest, *size, &tmp)
            .await
        {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &target)?;
        written += size;
    }
    let target = blob_path(dir, layer.digest.as_str())?;
    if !target.exists() {
        // The layer was built in a scratch directory: moved in when it is on the same file
        // system, else copied.
        let partial = target.with_extension("partial");
        if std::fs::rename(&layer.path, &partial).is_err() {
            std::fs::copy(&layer.path, &partial).with_context(|| {
                format!("cannot copy the model layer into {}", partial.display())
            })?;
        }
        std::fs::rename(&partial, &target)?;
        written += layer.size;
    }
    for bytes in [config, manifest] {
        let target = blob_path(dir, Digest::of(bytes).as_str())?;
        if !target.exists() {
            crate::fsutil::write_atomic(&target, bytes)?;
            written += bytes.len() as u64;
        }
    }
    let index_path = dir.join("index.json");
    let mut index: Value = match std::fs::read(&index_path) {
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("{} is not valid JSON", index_path.display()))?,
        Err(_) => {
            json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []})
        }
    };
    let key = "org.opencontainers.image.ref.name";
    let mut manifests: Vec<Value> = index["manifests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["annotations"][key] != ref_name)
        .collect();
    manifests.push(json!({
        "mediaType": OCI_MANIFEST,
        "digest": Digest::of(manifest),
        "size": manifest.len(),
        "annotations": {key: ref_name},
    }));
    index["manifests"] = Value::Array(manifests);
    crate::fsutil::write_json_atomic(&index_path, &index)?;
    Ok(written)
}
