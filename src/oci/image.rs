//! `mlops package`: the serving image assembled without a Docker daemon (the `crane append`
//! pattern). The base image's manifest and config come from its registry; one layer with the
//! run's model directory is added at `package.model_path`; the config gets the command, the
//! exposed port, `MLOPS_MODEL_DIR` and labels; the manifest (always OCI) carries annotations
//! for provenance. Everything derives from the run, the base image and the commit, so the same
//! run packaged twice has the same digest.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use futures_util::{StreamExt, TryStreamExt};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::credentials::RegistrySettings;
use super::digest::{Digest, Hasher};
use super::layer::{self, Compression};
use super::reference::{parse_pinned, ImageLocation, ImageRef};
use super::registry::{self, Registry};
use super::tree::ModelTree;
use crate::runs::{RunDir, Side};

/// `package:` of mlops.yaml, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct PackageConfig {
    /// Where images go: a registry repository (no tag, no digest), or a layout directory.
    pub repository: ImageLocation,
    pub base: ServingBase,
    pub model_path: String,
    pub command: Vec<String>,
    pub port: Option<u16>,
    pub compression: Compression,
}

/// The serving image the model layer goes on.
#[derive(Debug, Clone, Serialize)]
pub enum ServingBase {
    Image(ImageRef),
    /// Built through the engine first (an absolute Dockerfile path).
    Dockerfile(PathBuf),
}

/// The project an image is packaged for: provenance comes from it.
pub struct Project<'a> {
    /// The repository root (mlops.yaml's directory).
    pub root: &'a Path,
    pub model: &'a str,
}

/// What `package.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Packaged {
    /// `registry/repository@sha256:…`, or `oci:PATH@sha256:…` for a layout.
    pub reference: String,
    pub digest: Digest,
    /// The run id, as a tag (registry) or ref name (layout).
    pub tag: String,
    /// Manifest + config + layers.
    pub size: u64,
    pub base_image: String,
    pub base_digest: Digest,
    pub model_layer: LayerRecord,
    /// Bytes sent to the registry this time (0 when everything was already there).
    pub uploaded_bytes: u64,
    pub annotations: IndexMap<String, String>,
    /// sha256 over everything the image derives from (the model tree's key: its files' names,
    /// sizes, modes, inodes, mtimes and ctimes, see `tree`; package settings, base digest,
    /// provenance); an unchanged fingerprint with the image still in place skips the rebuild.
    /// Empty when the model's stamps were too recent to trust.
    #[serde(default)]
    pub fingerprint: String,
}

impl Packaged {
    /// Where the image is: a registry reference or an OCI layout.
    pub fn location(&self) -> Result<ImageLocation> {
        ImageLocation::parse(&self.reference)
            .map_err(|e| anyhow::anyhow!("package.json names the image {e}"))
    }

    /// The image in its registry, by digest: what signing and promotion need. An image in an
    /// OCI layout has no registry to carry signatures: `what` says who needed one.
    pub fn pinned(&self, what: &str) -> Result<(ImageRef, Digest)> {
        if let ImageLocation::Layout(_) = self.location()? {
            bail!(
                "{} is an OCI layout on disk; {what}: set package.repository to a registry",
                self.reference
            );
        }
        parse_pinned(&self.reference).map_err(anyhow::Error::msg)
    }
}

/// The fingerprint of a packaging: see `Packaged::fingerprint`; None when the model tree has
/// no key (stamps too recent to trust).
fn fingerprint(
    tree: &ModelTree,
    pkg: &PackageConfig,
    base_digest: &Digest,
    annotations: &IndexMap<String, String>,
) -> Result<Option<String>> {
    let Some(key) = tree.key() else {
        return Ok(None);
    };
    let mut h = Hasher::sha256();
    h.update(&serde_json::to_vec(pkg)?);
    h.update(base_digest.as_str().as_bytes());
    h.update(&serde_json::to_vec(annotations)?);
    h.update(key.as_bytes());
    Ok(Some(h.finish().to_string()))
}

/// The earlier packaging of this run, when nothing it derives from changed and the image is
/// still where it was put.
async fn unchanged(
    run: &RunDir,
    print: Option<&str>,
    pkg: &PackageConfig,
    settings: &RegistrySettings,
) -> Result<Option<Packaged>> {
    let Some(print) = print else { return Ok(None) };
    let Ok(prev) = load(run) else { return Ok(None) };
    if prev.fingerprint != print {
        return Ok(None);
    }
    let present = match &pkg.repository {
        ImageLocation::Registry(target) => {
            if !prev.reference.starts_with(&format!("{}@", target.name())) {
                return Ok(None);
            }
            let reg = Registry::new(&target.registry, settings)?;
            reg.manifest_digest(&target.repository, &prev.tag)
                .await?
                .is_some_and(|d| prev.digest == d.as_str())
        }
        ImageLocation::Layout(dir) => {
            prev.location().ok() == Some(ImageLocation::Layout(dir.clone()))
                && super::layout::blob_path(dir, prev.digest.as_str()).is_ok_and(|p| p.exists())
        }
    };
    Ok(present.then_some(Packaged {
        uploaded_bytes: 0,
        ..prev
    }))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub digest: Digest,
    pub diff_id: Digest,
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
        .as_ref()
        .map(Digest::to_string)
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
fn provenance(project: &Project, run: &RunDir) -> Result<IndexMap<String, String>> {
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
    if let Some(source) = source_url(project.root) {
        a.insert("org.opencontainers.image.source".into(), source);
    }
    a.insert(
        "org.opencontainers.image.title".into(),
        project.model.to_string(),
    );
    a.insert("dev.mlops.model".into(), project.model.to_string());
    a.insert("dev.mlops.run-id".into(), run.id.clone());
    for (name, d) in &record.data {
        a.insert(format!("dev.mlops.data.{name}.digest"), d.digest.clone());
    }
    let metrics = run.metrics(Side::Challenger);
    // The evaluation step wrote it: read as a step output (no link followed, size-limited).
    let limit = crate::outputs::METRICS_LIMIT;
    match crate::outputs::read_limited(&metrics, limit, "metrics.json") {
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
        Ok(bytes) => {
            a.insert(
                "dev.mlops.metrics.digest".into(),
                Digest::of(&bytes).to_string(),
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
    diff_id: &Digest,
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

/// The run's model directory, when training left something in it.
pub fn model_dir(run: &RunDir) -> Result<PathBuf> {
    let model_dir = run.model_dir();
    if !model_dir.is_dir() || std::fs::read_dir(&model_dir)?.next().is_none() {
        bail!(
            "run {} has no model in {}: train first (`mlops train`)",
            run.id,
            model_dir.display()
        );
    }
    Ok(model_dir)
}

/// The new image, assembled: its config and manifest, the base's layers and the model layer.
struct Assembled {
    layer: LayerRecord,
    base_layers: Vec<Descriptor>,
    config: Vec<u8>,
    config_digest: Digest,
    manifest: Vec<u8>,
    digest: Digest,
}

impl Assembled {
    fn size(&self) -> u64 {
        self.manifest.len() as u64
            + self.config.len() as u64
            + self.base_layers.iter().map(|l| l.size).sum::<u64>()
            + self.layer.size
    }
}

/// Packages the run's model on `base`: pushes to the registry, or writes the OCI layout.
pub async fn package(
    pkg: &PackageConfig,
    base: &ImageRef,
    project: &Project<'_>,
    run: &RunDir,
    settings: &RegistrySettings,
) -> Result<Packaged> {
    let model_dir = model_dir(run)?;
    let base_reg = Registry::new(&base.registry, settings)?;
    let (base_fetched, base_manifest) = base_manifest(&base_reg, base).await?;
    let base_config = base_reg
        .blob(
            &base.repository,
            &base_manifest.config.digest,
            base_manifest.config.size,
        )
        .await?;
    let base_digest = Digest::parse(&base_fetched.digest)
        .map_err(|e| anyhow::anyhow!("base image {base}: {e}"))?;

    let annotations = provenance(project, run)?;
    let tree = std::sync::Arc::new(ModelTree::scan(
        &model_dir,
        &pkg.model_path,
        pkg.compression,
    )?);
    let print = fingerprint(&tree, pkg, &base_digest, &annotations)?;
    if let Some(prev) = unchanged(run, print.as_deref(), pkg, settings).await? {
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
    let model = Model {
        tree: &tree,
        cache: run.path.join("model-layer.json"),
        work: work.path(),
    };
    let (reference, image, uploaded) = match &pkg.repository {
        ImageLocation::Registry(target) => {
            let base_image = BaseImage {
                image: base,
                registry: &base_reg,
                manifest: base_manifest,
                config: &base_config,
            };
            let (image, uploaded) = push(
                target,
                base_image,
                &model,
                pkg,
                &annotations,
                &run.id,
                settings,
            )
            .await?;
            let reference = format!("{}@{}", target.name(), image.digest);
            (reference, image, uploaded)
        }
        ImageLocation::Layout(dir) => {
            let layer = layer::build(&tree, work.path())?;
            let record = LayerRecord {
                digest: layer.digest.clone(),
                diff_id: layer.diff_id.clone(),
                size: layer.size,
                media_type: layer.media_type.to_string(),
            };
            let image = assemble(pkg, record, base_manifest, &base_config, &annotations)?;
            let base_layers = image
                .base_layers
                .iter()
                .map(|l| (l.digest.clone(), l.size))
                .collect::<Vec<_>>();
            let uploaded = super::layout::write(
                dir,
                &base_reg,
                &base.repository,
                &base_layers,
                &layer,
                &image.config,
                &image.manifest,
                &run.id,
            )
            .await?;
            let at = ImageLocation::Layout(dir.clone());
            (format!("{at}@{}", image.digest), image, uploaded)
        }
    };
    let packaged = Packaged {
        reference,
        digest: image.digest.clone(),
        tag: run.id.clone(),
        size: image.size(),
        base_image: base.to_string(),
        base_digest,
        model_layer: image.layer.clone(),
        uploaded_bytes: uploaded,
        annotations,
        fingerprint: print.unwrap_or_default(),
    };
    crate::fsutil::write_json_atomic(&run.package_json(), &packaged)?;
    Ok(packaged)
}

/// The image config and manifest for the model layer on the base.
fn assemble(
    pkg: &PackageConfig,
    layer: LayerRecord,
    base_manifest: Manifest,
    base_config: &[u8],
    annotations: &IndexMap<String, String>,
) -> Result<Assembled> {
    let config = image_config(base_config, pkg, &layer.diff_id, annotations)?;
    let config_digest = Digest::of(&config);
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
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": registry::OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": layers,
        "annotations": annotations,
    }))?;
    let digest = Digest::of(&manifest);
    Ok(Assembled {
        layer,
        base_layers: base_manifest.layers,
        config,
        config_digest,
        manifest,
        digest,
    })
}

/// The base image an image is packaged on, read from its registry.
struct BaseImage<'a> {
    image: &'a ImageRef,
    registry: &'a Registry,
    manifest: Manifest,
    config: &'a [u8],
}

/// The model going into the image: its tree, the run's layer cache, a scratch directory.
struct Model<'a> {
    tree: &'a std::sync::Arc<ModelTree>,
    cache: PathBuf,
    work: &'a Path,
}

/// Pushes the image to `target` (tagged with the run id); returns it and the bytes sent. Base
/// layers are mounted from the base's repository on the same registry, else copied through
/// `work`, while the model layer goes up (see `model_layer`); the config, which names the
/// model layer's diff_id, and the manifest follow.
async fn push(
    target: &ImageRef,
    base: BaseImage<'_>,
    model: &Model<'_>,
    pkg: &PackageConfig,
    annotations: &IndexMap<String, String>,
    tag: &str,
    settings: &RegistrySettings,
) -> Result<(Assembled, u64)> {
    let same_registry = target.registry == base.image.registry;
    let target_reg;
    let reg = if same_registry {
        base.registry
    } else {
        target_reg = Registry::new(&target.registry, settings)?;
        &target_reg
    };
    let repo = &target.repository;
    // Up to 4 blobs in flight: the model layer and 3 base layers.
    let from = same_registry.then_some(base.image);
    let copies = base
        .manifest
        .layers
        .iter()
        .map(|l| copy_base_layer(reg, base.registry, from, base.image, repo, l, model.work));
    let base_sent = futures_util::stream::iter(copies)
        .buffer_unordered(3)
        .try_collect::<Vec<u64>>();
    let model_sent = super::model_layer::push(reg, repo, model.tree, &model.cache, model.work);
    let (base_sent, (layer, model_sent)) = futures_util::try_join!(base_sent, model_sent)?;
    let image = assemble(pkg, layer, base.manifest, base.config, annotations)?;
    let config_sent = reg
        .push_bytes(repo, image.config_digest.as_str(), &image.config)
        .await?;
    let mut uploaded = base_sent.iter().sum::<u64>() + model_sent;
    if config_sent {
        uploaded += image.config.len() as u64;
    }
    if reg
        .manifest_digest(repo, image.digest.as_str())
        .await?
        .is_none()
    {
        uploaded += image.manifest.len() as u64;
    }
    reg.put_manifest(repo, tag, &image.manifest, registry::OCI_MANIFEST)
        .await?;
    Ok((image, uploaded))
}

/// A base layer into the target repository: already there, mounted from the base's
/// repository (`mount_from`: same registry), or copied through a temporary file in `work`.
/// Returns the bytes uploaded.
async fn copy_base_layer(
    reg: &Registry,
    base_reg: &Registry,
    mount_from: Option<&ImageRef>,
    base: &ImageRef,
    repo: &str,
    l: &Descriptor,
    work: &Path,
) -> Result<u64> {
    if reg.blob_exists(repo, &l.digest).await? {
        return Ok(0);
    }
    if let Some(from) = mount_from {
        if reg.mount(repo, &l.digest, &from.repository).await? {
            return Ok(0);
        }
    }
    let digest = Digest::parse(&l.digest)
        .map_err(|e| anyhow::anyhow!("base image {base}: the manifest lists {e}"))?;
    let tmp = work.join(format!("base-{}.blob", digest.hex()));
    base_reg
        .blob_to_file(&base.repository, &l.digest, l.size, &tmp)
        .await?;
    let sent = reg.push_file(repo, &l.digest, &tmp).await?;
    std::fs::remove_file(&tmp)?;
    Ok(if sent { l.size } else { 0 })
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
