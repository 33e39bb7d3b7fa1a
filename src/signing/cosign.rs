//! Cosign's storage conventions in a registry: `sha256-<hex>.sig` (simple-signing payloads,
//! signature in a layer annotation) and `sha256-<hex>.att` (DSSE envelopes), both OCI
//! manifests in the image's repository, appended to and never duplicated.

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};
use sigstore::crypto::{CosignVerificationKey, Signature};

use super::Signer;
use crate::oci::credentials::RegistrySettings;
use crate::oci::digest::Digest;
use crate::oci::reference::ImageRef;
use crate::oci::registry::{Registry, MAX_BLOB_IN_MEMORY, OCI_MANIFEST};
use crate::outcome::Outcome;

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The most layers a `.sig` or `.att` manifest may have (cosign adds one per signature).
pub const MAX_ARTIFACT_LAYERS: usize = 1000;

/// An image named by digest (the only form signing and verification accept).
pub fn parse_pinned(text: &str) -> Result<(ImageRef, Digest)> {
    crate::oci::reference::parse_pinned(text).map_err(anyhow::Error::msg)
}

/// `sha256-<hex>.<suffix>`: cosign's tag for an artifact about `digest`.
pub fn artifact_tag(digest: &Digest, suffix: &str) -> String {
    format!("{}-{}.{suffix}", digest.algorithm().name(), digest.hex())
}

/// The simple-signing payload cosign signs: the repository and the exact manifest digest.
pub fn payload(image: &ImageRef, digest: &Digest) -> Vec<u8> {
    let v = json!({
        "critical": {
            "identity": {"docker-reference": image.name()},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    });
    // A JSON value of strings and a null always serialises.
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The layers of an artifact manifest (empty when there is none yet), each checked: at most
/// [`MAX_ARTIFACT_LAYERS`], each with a well-formed digest and a size of at most 16 MiB.
async fn existing_layers(reg: &Registry, repo: &str, tag: &str) -> Result<Vec<Value>> {
    if reg.manifest_digest(repo, tag).await?.is_none() {
        return Ok(Vec::new());
    }
    let m = reg.manifest(repo, tag).await?;
    let name = format!("{}/{repo}:{tag}", reg.host());
    let v: Value = serde_json::from_slice(&m.bytes)
        .with_context(|| format!("{name} is not a JSON manifest"))?;
    let layers = v["layers"].as_array().cloned().unwrap_or_default();
    if layers.len() > MAX_ARTIFACT_LAYERS {
        bail!(
            "{name} has {} layers, more than the {MAX_ARTIFACT_LAYERS} a signature or attestation manifest may have: refusing it",
            layers.len()
        );
    }
    for (i, l) in layers.iter().enumerate() {
        let digest = l["digest"].as_str().unwrap_or("");
        Digest::parse(digest).map_err(|e| anyhow::anyhow!("{name}, layer {}: {e}", i + 1))?;
        match l["size"].as_u64() {
            Some(size) if size <= MAX_BLOB_IN_MEMORY => {}
            Some(size) => bail!(
                "{name}, layer {}: {size} bytes, more than the 16 MiB a signature payload or attestation may have: refusing it",
                i + 1
            ),
            None => bail!("{name}, layer {}: the descriptor has no size", i + 1),
        }
    }
    Ok(layers)
}

/// A checked layer's blob (see [`existing_layers`]).
async fn layer_blob(reg: &Registry, repo: &str, layer: &Value) -> Result<Vec<u8>> {
    let digest = layer["digest"].as_str().unwrap_or("");
    let size = layer["size"].as_u64().unwrap_or(0);
    reg.blob(repo, digest, size).await
}

/// Pushes an artifact manifest (`.sig` or `.att`) with these layers; blobs must be pushed.
async fn put_artifact(reg: &Registry, repo: &str, tag: &str, layers: Vec<Value>) -> Result<()> {
    let diff_ids: Vec<Value> = layers.iter().map(|l| l["digest"].clone()).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))?;
    let config_digest = Digest::of(&config);
    reg.push_bytes(repo, config_digest.as_str(), &config)
        .await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config.len(),
            "digest": config_digest,
        },
        "layers": layers,
    }))?;
    reg.put_manifest(repo, tag, &manifest, OCI_MANIFEST).await?;
    Ok(())
}

pub struct SignOutcome {
    pub signature_tag: String,
    /// False when an equivalent signature by the same key was already there.
    pub added: bool,
    pub signatures: usize,
}

/// Signs `image@digest`: appends a layer to its `.sig` manifest unless the same key already
/// signed the same payload.
pub async fn sign(
    signer: &Signer,
    image: &ImageRef,
    digest: &Digest,
    settings: &RegistrySettings,
) -> Result<SignOutcome> {
    let reg = Registry::new(&image.registry, settings)?;
    let repo = &image.repository;
    // The image must exist: never sign a digest the registry does not hold.
    if reg.manifest_digest(repo, digest.as_str()).await?.is_none() {
        bail!(
            "{}/{repo}@{digest} is not in the registry: push it (mlops package) before signing",
            image.registry
        );
    }
    let body = payload(image, digest);
    let payload_digest = Digest::of(&body);
    let tag = artifact_tag(digest, "sig");
    let mut layers = existing_layers(&reg, repo, &tag).await?;
    let own_key = CosignVerificationKey::from_pem(
        signer.public_pem.as_bytes(),
        &sigstore::crypto::SigningScheme::ECDSA_P256_SHA256_ASN1,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let already = layers.iter().any(|l| {
        l["digest"] == payload_digest.as_str()
            && l["annotations"][SIGNATURE_ANNOTATION]
                .as_str()
                .and_then(|s| B64.decode(s).ok())
                .is_some_and(|sig| {
                    own_key
                        .verify_signature(Signature::Raw(&sig), &body)
                        .is_ok()
                })
    });
    if already {
        return Ok(SignOutcome {
            signature_tag: tag,
            added: false,
            signatures: layers.len(),
        });
    }
    let sig = signer.sign(&body)?;
    reg.push_bytes(repo, payload_digest.as_str(), &body).await?;
    layers.push(json!({
        "mediaType": SIMPLE_SIGNING,
        "size": body.len(),
        "digest": payload_digest,
        "annotations": {SIGNATURE_ANNOTATION: B64.encode(&sig)},
    }));
    let n = layers.len();
    put_artifact(&reg, repo, &tag, layers).await?;
    Ok(SignOutcome {
        signature_tag: tag,
        added: true,
        signatures: n,
    })
}

/// DSSE pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// Attaches in-toto statements (one DSSE envelope each) to `image@digest`'s `.att` manifest,
/// replacing an earlier envelope of the same predicate type signed by the same key.
pub async fn attest(
    signer: &Signer,
    image: &ImageRef,
    digest: &Digest,
    statements: &[Value],
    settings: &RegistrySettings,
) -> Result<usize> {
    let reg = Registry::new(&image.registry, settings)?;
    let repo = &image.repository;
    let tag = artifact_tag(digest, "att");
    let own_key = CosignVerificationKey::from_pem(
        signer.public_pem.as_bytes(),
        &sigstore::crypto::SigningScheme::ECDSA_P256_SHA256_ASN1,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut layers = existing_layers(&reg, repo, &tag).await?;
    for statement in statements {
        let predicate_type = statement["predicateType"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let body = serde_json::to_vec(statement)?;
        let sig = signer.sign(&pae(IN_TOTO, &body))?;
        let envelope = serde_json::to_vec(&json!({
            "payloadType": IN_TOTO,
            "payload": B64.encode(&body),
            "signatures": [{"keyid": "", "sig": B64.encode(&sig)}],
        }))?;
        let envelope_digest = Digest::of(&envelope);
        // Drop what this key attested before for the same predicate type.
        let mut kept = Vec::new();
        for l in layers {
            let same_type = l["annotations"]["predicateType"] == predicate_type.as_str();
            let ours = same_type && {
                match layer_blob(&reg, repo, &l).await {
                    Ok(bytes) => open_envelope(&bytes, &own_key).is_ok(),
                    Err(_) => false,
                }
            };
            if !ours {
                kept.push(l);
            }
        }
        layers = kept;
        reg.push_bytes(repo, envelope_digest.as_str(), &envelope)
            .await?;
        layers.push(json!({
            "mediaType": DSSE,
            "size": envelope.len(),
            "digest": envelope_digest,
            "annotations": {SIGNATURE_ANNOTATION: "", "predicateType": predicate_type},
        }));
    }
    let n = layers.len();
    put_artifact(&reg, repo, &tag, layers).await?;
    Ok(n)
}

/// Verifies a DSSE envelope with the key; returns the statement.
pub fn open_envelope(bytes: &[u8], key: &CosignVerificationKey) -> Result<Value> {
    let env: Value = serde_json::from_slice(bytes).context("not a DSSE envelope")?;
    let payload_type = env["payloadType"].as_str().unwrap_or("");
    let payload = B64
        .decode(env["payload"].as_str().unwrap_or(""))
        .context("DSSE payload is not base64")?;
    let signed = pae(payload_type, &payload);
    let ok = env["signatures"].as_array().into_iter().flatten().any(|s| {
        s["sig"]
            .as_str()
            .and_then(|t| B64.decode(t).ok())
            .is_some_and(|sig| key.verify_signature(Signature::Raw(&sig), &signed).is_ok())
    });
    if !ok {
        bail!("the attestation's DSSE signature does not verify with this key");
    }
    if payload_type != IN_TOTO {
        bail!("the attestation carries {payload_type:?}, not an in-toto statement");
    }
    Ok(serde_json::from_slice(&payload)?)
}

/// What `mlops verify` found.
#[derive(Debug, serde::Serialize)]
pub struct Verified {
    pub image: String,
    pub digest: Digest,
    pub signatures: usize,
    pub identity: String,
    pub attestations: Vec<Value>,
}

/// Fails closed: a verified signature by `key` over exactly `digest` must exist; with
/// `require_attestation`, a verified attestation whose subject is `digest` too.
pub async fn verify(
    key: &CosignVerificationKey,
    image: &ImageRef,
    digest: &Digest,
    require_attestation: bool,
    settings: &RegistrySettings,
) -> Result<Outcome<Verified>> {
    let reg = Registry::new(&image.registry, settings)?;
    let repo = &image.repository;
    let name = format!("{}/{repo}@{digest}", image.registry);
    let tag = artifact_tag(digest, "sig");
    let layers = existing_layers(&reg, repo, &tag).await?;
    if layers.is_empty() {
        return Ok(Outcome::refused(format!(
            "{name} has no signature ({tag} is missing): sign it with `mlops sign {name}`"
        )));
    }
    let mut reasons = Vec::new();
    let mut identity = None;
    let mut good = 0;
    for l in &layers {
        if l["mediaType"] != SIMPLE_SIGNING {
            continue;
        }
        let layer_digest = l["digest"].as_str().unwrap_or("");
        let body = match layer_blob(&reg, repo, l).await {
            Ok(b) => b,
            Err(e) => {
                reasons.push(format!("payload {layer_digest}: {e:#}"));
                continue;
            }
        };
        let Some(sig) = l["annotations"][SIGNATURE_ANNOTATION]
            .as_str()
            .and_then(|s| B64.decode(s).ok())
        else {
            reasons.push(format!("payload {layer_digest}: no signature annotation"));
            continue;
        };
        if key.verify_signature(Signature::Raw(&sig), &body).is_err() {
            reasons.push(format!(
                "payload {layer_digest}: the signature does not verify with this key (signed by another key, or the payload was altered)"
            ));
            continue;
        }
        let v: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                reasons.push(format!("payload {layer_digest}: not JSON: {e}"));
                continue;
            }
        };
        let signed_digest = v["critical"]["image"]["docker-manifest-digest"]
            .as_str()
            .unwrap_or("");
        if *digest != signed_digest {
            reasons.push(format!(
                "payload {layer_digest}: a valid signature, but over {signed_digest}, not {digest} (a signature copied from another image)"
            ));
            continue;
        }
        good += 1;
        identity = v["critical"]["identity"]["docker-reference"]
            .as_str()
            .map(str::to_string);
    }
    if good == 0 {
        return Ok(Outcome::refused(format!(
            "{name}: no valid signature by this key:\n  - {}",
            reasons.join("\n  - ")
        )));
    }
    let mut attestations = Vec::new();
    let att_layers = existing_layers(&reg, repo, &artifact_tag(digest, "att")).await?;
    let mut att_reasons = Vec::new();
    for l in &att_layers {
        let d = l["digest"].as_str().unwrap_or("");
        let statement = match layer_blob(&reg, repo, l)
            .await
            .and_then(|b| open_envelope(&b, key))
        {
            Ok(s) => s,
            Err(e) => {
                att_reasons.push(format!("attestation {d}: {e:#}"));
                continue;
            }
        };
        let (algorithm, hex) = (digest.algorithm().name(), digest.hex());
        let about_us = statement["subject"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["digest"][algorithm] == hex);
        if !about_us {
            att_reasons.push(format!("attestation {d}: its subject is another image"));
            continue;
        }
        attestations.push(json!({
            "predicateType": statement["predicateType"],
            "predicate": statement["predicate"],
        }));
    }
    if require_attestation && attestations.is_empty() {
        let why = if att_layers.is_empty() {
            "there is none".to_string()
        } else {
            att_reasons.join("; ")
        };
        return Ok(Outcome::refused(format!(
            "{name}: signed, but no verified attestation ({why}); attest it with `mlops sign --attest`"
        )));
    }
    Ok(Outcome::Done(Verified {
        image: name,
        digest: digest.clone(),
        signatures: good,
        identity: identity.unwrap_or_default(),
        attestations,
    }))
}
