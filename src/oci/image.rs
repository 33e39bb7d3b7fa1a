//! `mlops package`: the serving image assembled without a Docker daemon (the `crane append`
//! pattern). The base image's manifest and config come from its registry; one layer with the
//! run's model directory is added at `package.model_path`; the config gets the command, the
//! exposed port, `MLOPS_MODEL_DIR` and labels; the manifest (always OCI) carries annotations
//! for provenance. Everything derives from the run, the base image and the commit, so the same
//! run packaged twice has the same digest.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::credentials::RegistrySettings;
use super::digest::Digest;
use super::layer;
use super::reference::{parse_image, parse_repository, ImageRef};
use super::registry::{self, Registry};
use crate::config::{Config, PackageConfig, RepositoryTarget, ServingBase};
use crate::runs::{RunDir, Side};

/// What `package.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Packaged {
    /// `registry/repository@sha256:…`, or `oci:PATH@sha256:…` for a layout.
    pub reference: String,
    pub digest: String,
    /// The run id, as a tag (registry) or ref name (layout).
    pub tag: String,
    /// Manifest + config + layers.
    pub size: u64,
    pub base_image: String,
    pub base_digest: String,
    pub model_layer: LayerRecord,
    /// Bytes sent to the registry this time (0 when everything was already there).
    pub uploaded_bytes: u64,
    pub annotations: IndexMap<String, String>,
    /// sha256 over everything the image derives from (model files' names, sizes and mtimes,
    /// package settings, base digest, provenance); an unchanged fingerprint with the image still
    /// in place skips the rebuild.
    #[serde(default)]
    pub fingerprint: String,
}

/// The fingerprint of a packaging: see `Packaged::fingerprint`.
fn fingerprint(
    model_dir: &Path,
    pkg: &PackageConfig,
    base_digest: &str,
    annotations: &IndexMap<String, String>,
) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(pkg)?);
    h.update(base_digest.as_bytes());
    h.update(serde_json::to_vec(annotations)?);
    let mut stack = vec![model_dir.to_path_buf()];
    let mut entries = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let m = e.metadata()?;
            if m.is_dir() {
                stack.push(e.path());
            }
            entries.push(format!(
                "{}\0{}\0{}\0{}\0{:o}",
                e.path().strip_prefix(model_dir).unwrap().display(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                m.mode()
            ));
        }
    }
    entries.sort();
    for e in entries {
        h.update(e.as_bytes());
        h.update([0u8]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// The earlier packaging of this run, when nothing it derives from changed and the image is
/// still where it was put.
async fn unchanged(
    run: &RunDir,
    print: &str,
    pkg: &PackageConfig,
    settings: &RegistrySettings,
) -> Result<Option<Packaged>> {
    let Ok(prev) = load(run) else { return Ok(None) };
    if prev.fingerprint != print {
        return Ok(None);
    }
    let present = match &pkg.repository {
        RepositoryTarget::Registry(repo_text) => {
            let Ok(target) = parse_repository(repo_text) else {
                return Ok(None);
            };
            if !prev
                .reference
                .starts_with(&format!("{}/{}@", target.registry, target.repository))
            {
                return Ok(None);
            }
            let reg = Registry::new(&target.registry, settings)?;
            reg.manifest_digest(&target.repository, &prev.tag)
                .await?
                .as_deref()
                == Some(prev.digest.as_str())
        }
        RepositoryTarget::Layout(dir) => {
            prev.reference
                .starts_with(&format!("oci:{}@", dir.display()))
                && super::layout::blob_path(dir, &prev.digest).is_ok_and(|p| p.exists())
        }
    };
    Ok(present.then_some(Packaged {
        uploaded_bytes: 0,
        ..prev
    }))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    pub media_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    media_type: Option<String>,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<Value>,
}

/// An image manifest as `package` reads a base image's.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// Docker media types → their OCI equivalents (same bytes).
fn oci_layer_type(t: &str) -> String {
    match t {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip".into()
        }
        "application/vnd.docker.image.rootfs.diff.tar" => {
            "application/vnd.oci.image.layer.v1.tar".into()
        }
        other => other.into(),
    }
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The base image's single-platform manifest (resolving an index to linux/<host arch>).
async fn base_manifest(reg: &Registry, base: &ImageRef) -> Result<(registry::Fetched, Manifest)> {
    let reference = base
        .digest
        .clone()
        .or(base.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let mut fetched = reg.manifest(&base.repository, &reference).await?;
    if fetched.media_type == registry::OCI_INDEX || fetched.media_type == registry::DOCKER_LIST {
        let pick = platform_manifest(&fetched.bytes)?
            .with_context(|| format!("base image {base} has no linux/{} manifest", host_arch()))?;
        Digest::parse(&pick.digest)
            .map_err(|e| anyhow::anyhow!("base image {base}: its index lists {e}"))?;
        fetched = reg.manifest(&base.repository, &pick.digest).await?;
    }
    let manifest = parse_manifest(&fetched.bytes)
        .with_context(|| format!("base image {base}: unreadable manifest"))?;
    check_descriptors(base, &manifest)?;
    Ok((fetched, manifest))
}

/// Every digest of a base manifest is well-formed before it names a URL or a file.
fn check_descriptors(base: &ImageRef, manifest: &Manifest) -> Result<()> {
    let named = std::iter::once(("its config".to_string(), &manifest.config)).chain(
        manifest
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("layer {}", i + 1), l)),
    );
    for (what, d) in named {
        Digest::parse(&d.digest).map_err(|e| {
            anyhow::anyhow!("base image {base}: the manifest gives {what} a bad digest: {e}")
        })?;
    }
    Ok(())
}

/// The linux/<host arch> entry of an image index (or a Docker manifest list).
pub fn platform_manifest(index: &[u8]) -> Result<Option<Descriptor>> {
    let index: Value = serde_json::from_slice(index)?;
    Ok(index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| serde_json::from_value::<Descriptor>(m.clone()).ok())
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p["os"] == "linux" && p["architecture"] == host_arch())
        }))
}

/// An image manifest's config and layer descriptors.
pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Annotations (and labels) describing where the image comes from.
fn provenance(config: &Config, run: &RunDir) -> Result<IndexMap<String, String>> {
    let record = run.read_record()?;
    let mut a = IndexMap::new();
    let created = record
        .git
        .commit_time
        .clone()
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    a.insert("org.opencontainers.image.created".into(), created);
    if !record.git.commit.is_empty() {
        a.insert(
            "org.opencontainers.image.revision".into(),
            record.git.commit.clone(),
        );
    }
    if let Some(source) = source_url(&config.root) {
        a.insert("org.opencontainers.image.source".into(), source);
    }
    a.insert(
        "org.opencontainers.image.title".into(),
        config.model.clone(),
    );
    a.insert("dev.mlops.model".into(), config.model.clone());
    a.insert("dev.mlops.run-id".into(), run.id.clone());
    for (name, d) in &record.data {
        a.insert(format!("dev.mlops.data.{name}.digest"), d.digest.clone());
    }
    let metrics = run.metrics(Side::Challenger);
    // The evaluation step wrote it: read as a step output (no link followed, size-limited).
    let limit = crate::runner::outputs::METRICS_LIMIT;
    match crate::runner::outputs::read_limited(&metrics, limit, "metrics.json") {
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
        Ok(bytes) => {
            a.insert(
                "dev.mlops.metrics.digest".into(),
                registry::sha256_digest(&bytes),
            );
        }
    }
    Ok(a)
}

/// The repository's web address: GitHub Actions' variables, else the `origin` remote.
fn source_url(root: &Path) -> Option<String> {
    if let (Ok(server), Ok(repo)) = (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
    ) {
        return Some(format!("{server}/{repo}"));
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["remote", "get-url", "origin"])
        .output()
        .ok()?;
    let url = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !url.is_empty()).then_some(url)
}

/// The new image config: the base's, with our layer, command, port, environment and labels.
fn image_config(
    base: &[u8],
    pkg: &PackageConfig,
    diff_id: &str,
    annotations: &IndexMap<String, String>,
) -> Result<Vec<u8>> {
    let mut cfg: Value = serde_json::from_slice(base).context("unreadable base image config")?;
    let created = annotations["org.opencontainers.image.created"].clone();
    cfg["created"] = json!(created);
    let c = cfg
        .as_object_mut()
        .context("base image config is not an object")?
        .entry("config")
        .or_insert(json!({}));
    if !c.is_object() {
        *c = json!({});
    }
    let env_line = format!("MLOPS_MODEL_DIR={}", pkg.model_path);
    let mut env: Vec<Value> = c["Env"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|v| {
            !v.as_str()
                .is_some_and(|s| s.starts_with("MLOPS_MODEL_DIR="))
        })
        .collect();
    env.push(json!(env_line));
    c["Env"] = json!(env);
    if !pkg.command.is_empty() {
        c["Entrypoint"] = Value::Null;
        c["Cmd"] = json!(pkg.command);
    }
    if let Some(port) = pkg.port {
        // The port for serving runtimes that read $PORT (the Cloud Run convention).
        if let Some(env) = c["Env"].as_array_mut() {
            env.retain(|v| !v.as_str().is_some_and(|s| s.starts_with("PORT=")));
            env.push(json!(format!("PORT={port}")));
        }
        let mut ports = c["ExposedPorts"].as_object().cloned().unwrap_or_default();
        ports.insert(format!("{port}/tcp"), json!({}));
        c["ExposedPorts"] = Value::Object(ports);
    }
    let mut labels = c["Labels"].as_object().cloned().unwrap_or_default();
    for (k, v) in annotations {
        labels.insert(k.clone(), json!(v));
    }
    c["Labels"] = Value::Object(labels);
    let rootfs = cfg
        .as_object_mut()
        .unwrap()
        .entry("rootfs")
        .or_insert(json!({"type": "layers", "diff_ids": []}));
    match rootfs["diff_ids"].as_array_mut() {
        Some(ids) => ids.push(json!(diff_id)),
        None => bail!("base image config has no rootfs.diff_ids"),
    }
    let history = cfg
        .as_object_mut()
        .unwrap()
        .entry("history")
        .or_insert(json!([]));
    if let Some(h) = history.as_array_mut() {
        h.push(json!({
            "created": created,
            "created_by": format!("mlops package (model at {})", pkg.model_path),
            "comment": "model layer",
        }));
    }
    Ok(serde_json::to_vec(&cfg)?)
}

/// Packages the run's model: pushes to the registry, or writes the OCI layout.
pub async fn package(
    config: &Config,
    run: &RunDir,
    settings: &RegistrySettings,
) -> Result<Packaged> {
    let pkg = config.package.as_ref().with_context(|| {
        format!(
            "{} has no package: section (repository, base_image, model_path, command, port)",
            config.file.display()
        )
    })?;
    let model_dir = run.model_dir();
    if !model_dir.is_dir() || std::fs::read_dir(&model_dir)?.next().is_none() {
        bail!(
            "run {} has no model in {}: train first (`mlops train`)",
            run.id,
            model_dir.display()
        );
    }
    let base_text = match &pkg.base {
        ServingBase::Image(img) => img.clone(),
        ServingBase::Dockerfile(df) => {
            super::build::build_and_push_base(config, pkg, df, run).await?
        }
    };
    let base = parse_image(&base_text)
        .map_err(|e| anyhow::anyhow!("package.base_image {base_text:?}: {e}"))?;
    let base_reg = Registry::new(&base.registry, settings)?;
    let (base_fetched, base_manifest) = base_manifest(&base_reg, &base).await?;
    let base_config = base_reg
        .blob(
            &base.repository,
            &base_manifest.config.digest,
            base_manifest.config.size,
        )
        .await?;

    let annotations = provenance(config, run)?;
    let print = fingerprint(&model_dir, pkg, &base_fetched.digest, &annotations)?;
    if let Some(prev) = unchanged(run, &print, pkg, settings).await? {
        tracing::info!(
            "model, base and settings unchanged since the last packaging: {}",
            prev.reference
        );
        crate::fsutil::write_json_atomic(&run.package_json(), &prev)?;
        return Ok(prev);
    }
    let work = tempfile::Builder::new()
        .prefix(".package-")
        .tempdir_in(&run.path)?;
    let layer = layer::build(&model_dir, &pkg.model_path, pkg.compression, work.path())?;
    let config_bytes = image_config(&base_config, pkg, &layer.diff_id, &annotations)?;
    let config_digest = registry::sha256_digest(&config_bytes);

    let mut layers: Vec<Value> = base_manifest
        .layers
        .iter()
        .map(|l| {
            json!({
                "mediaType": oci_layer_type(l.media_type.as_deref().unwrap_or("application/vnd.oci.image.layer.v1.tar+gzip")),
                "digest": l.digest,
                "size": l.size,
            })
        })
        .collect();
    layers.push(json!({"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": registry::OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_bytes.len(),
        },
        "layers": layers,
        "annotations": annotations,
    });
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    let digest = registry::sha256_digest(&manifest_bytes);
    let size = manifest_bytes.len() as u64
        + config_bytes.len() as u64
        + base_manifest.layers.iter().map(|l| l.size).sum::<u64>()
        + layer.size;

    let mut uploaded = 0u64;
    let reference = match &pkg.repository {
        RepositoryTarget::Registry(repo_text) => {
            let target = parse_repository(repo_text)
                .map_err(|e| anyhow::anyhow!("package.repository {repo_text:?}: {e}"))?;
            let target_reg;
            let reg = if target.registry == base.registry {
                &base_reg
            } else {
                target_reg = Registry::new(&target.registry, settings)?;
                &target_reg
            };
            let repo = &target.repository;
            let same_registry = target.registry == base.registry;
            for l in &base_manifest.layers {
                if reg.blob_exists(repo, &l.digest).await? {
                    continue;
                }
                if same_registry && reg.mount(repo, &l.digest, &base.repository).await? {
                    continue;
                }
                // Another registry (or no mount): stream it through a temporary file.
                let tmp = work.path().join("base-layer.blob");
                base_reg
                    .blob_to_file(&base.repository, &l.digest, l.size, &tmp)
                    .await?;
                if reg.push_file(repo, &l.digest, &tmp).await? {
                    uploaded += l.size;
                }
                std::fs::remove_file(&tmp)?;
            }
            if reg.push_file(repo, &layer.digest, &layer.path).await? {
                uploaded += layer.size;
            }
            if reg.push_bytes(repo, &config_digest, &config_bytes).await? {
                uploaded += config_bytes.len() as u64;
            }
            if reg.manifest_digest(repo, &digest).await?.is_none() {
                uploaded += manifest_bytes.len() as u64;
            }
            reg.put_manifest(repo, &run.id, &manifest_bytes, registry::OCI_MANIFEST)
                .await?;
            format!("{}/{}@{digest}", target.registry, repo)
        }
        RepositoryTarget::Layout(dir) => {
            let base_layers = base_manifest
                .layers
                .iter()
                .map(|l| (l.digest.clone(), l.size))
                .collect::<Vec<_>>();
            uploaded = super::layout::write(
                dir,
                &base_reg,
                &base.repository,
                &base_layers,
                &layer,
                &config_bytes,
                &manifest_bytes,
                &run.id,
            )
            .await?;
            format!("oci:{}@{digest}", dir.display())
        }
    };
    let packaged = Packaged {
        reference,
        digest,
        tag: run.id.clone(),
        size,
        base_image: base_text,
        base_digest: base_fetched.digest,
        model_layer: LayerRecord {
            digest: layer.digest.clone(),
            diff_id: layer.diff_id.clone(),
            size: layer.size,
            media_type: layer.media_type.to_string(),
        },
        uploaded_bytes: uploaded,
        annotations,
        fingerprint: print,
    };
    crate::fsutil::write_json_atomic(&run.package_json(), &packaged)?;
    Ok(packaged)
}

/// Reads a run's package.json.
pub fn load(run: &RunDir) -> Result<Packaged> {
    let path: PathBuf = run.package_json();
    if !path.exists() {
        bail!(
            "run {} is not packaged yet: run `mlops package --run {}`",
            run.id,
            run.id
        );
    }
    crate::fsutil::read_json(&path)
}
