//! Cosign-compatible signing and verification, and in-toto attestations of the evidence.
//!
//! - Keys: cosign's format — an ECDSA P-256 private key, PKCS#8, encrypted with scrypt +
//!   NaCl secretbox in an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM block (password from
//!   `MLOPS_SIGNING_PASSWORD`); the public key as a PKIX `PUBLIC KEY` PEM. `cosign sign --key`
//!   and `cosign verify --key` accept both.
//! - Signatures: a simple-signing payload naming the repository and the exact manifest digest,
//!   signed (ECDSA P-256, SHA-256, ASN.1), stored as a layer of the `sha256-<hex>.sig` manifest
//!   in the image's repository with the signature in the `dev.cosignproject.cosign/signature`
//!   annotation — where `cosign verify` looks.
//! - Attestations: in-toto statements in DSSE envelopes, layers of `sha256-<hex>.att`.
//!
//! Keyless signing (Fulcio certificate from the GitHub Actions OIDC token, Rekor entry) needs
//! the public Sigstore services; it is configured with `sign.keyless: true` and reported as
//! unavailable by this build (see `Signer::from_config`). Nothing is sent to a transparency
//! log unless configured.

pub mod attest;
pub mod cosign;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sigstore::crypto::signing_key::ecdsa::{ECDSAKeys, EllipticCurve};
use sigstore::crypto::signing_key::{SigStoreKeyPair, SigStoreSigner};
use sigstore::crypto::{CosignVerificationKey, SigningScheme};

use crate::config::{Config, KeySource};

pub const PASSWORD_VAR: &str = "MLOPS_SIGNING_PASSWORD";

/// Why there is no key to sign with. Callers branch on the kind: `mlops run` skips signing
/// when the key's variable is unset, where `mlops sign` fails.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("no signing key: pass --key FILE (or env:VAR)")]
    NoKeyGiven,
    #[error("no signing key: set sign.key in {} or pass --key", .config.display())]
    NoKeyConfigured { config: PathBuf },
    #[error("sign.keyless is set, but keyless signing needs Fulcio and Rekor (the public Sigstore services), which this build does not reach; use a key (`mlops sign --generate-key`) or sign with `cosign sign` in the workflow")]
    KeylessUnavailable,
    #[error("the signing key variable {var} is not set (sign.key: env:{var}); in GitHub Actions pass it from a secret")]
    KeyVariableUnset { var: String },
    #[error("cannot read the signing key {}", .path.display())]
    KeyUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot decrypt the signing key from {origin}: {reason} (is {PASSWORD_VAR} the key's password? is it cosign's ENCRYPTED SIGSTORE PRIVATE KEY format?)")]
    Undecryptable { origin: String, reason: String },
    #[error("the key from {origin} is not an ECDSA P-256 key: {reason}")]
    NotP256 { origin: String, reason: String },
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A private key ready to sign, and its public half.
pub struct Signer {
    signer: SigStoreSigner,
    pub public_pem: String,
}

impl Signer {
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        self.signer
            .sign(message)
            .map_err(|e| SigningError::Sign(e.to_string()))
    }

    /// From cosign's encrypted PEM text.
    pub fn from_encrypted_pem(pem: &[u8], origin: &str) -> Result<Signer, SigningError> {
        let password = std::env::var(PASSWORD_VAR).unwrap_or_default();
        let pair = SigStoreKeyPair::from_encrypted_pem(pem, password.as_bytes()).map_err(|e| {
            SigningError::Undecryptable {
                origin: origin.to_string(),
                reason: e.to_string(),
            }
        })?;
        let not_p256 = |e: sigstore::errors::SigstoreError| SigningError::NotP256 {
            origin: origin.to_string(),
            reason: e.to_string(),
        };
        let signer = pair
            .to_sigstore_signer(&SigningScheme::ECDSA_P256_SHA256_ASN1)
            .map_err(not_p256)?;
        let public_pem = pair.public_key_to_pem().map_err(not_p256)?;
        Ok(Signer { signer, public_pem })
    }

    /// The key `--key` names (a file, or env:VAR), else `sign.key` from mlops.yaml.
    pub fn resolve(config: Option<&Config>, key: Option<&str>) -> Result<Signer, SigningError> {
        let source = match key {
            Some(k) => match k.strip_prefix("env:") {
                Some(var) => KeySource::Env(var.to_string()),
                None => KeySource::File(PathBuf::from(k)),
            },
            None => {
                let Some(config) = config else {
                    return Err(SigningError::NoKeyGiven);
                };
                if config.sign.keyless {
                    return Err(SigningError::KeylessUnavailable);
                }
                config
                    .sign
                    .key
                    .clone()
                    .ok_or_else(|| SigningError::NoKeyConfigured {
                        config: config.file.clone(),
                    })?
            }
        };
        match source {
            KeySource::File(path) => {
                let pem = std::fs::read(&path).map_err(|source| SigningError::KeyUnreadable {
                    path: path.clone(),
                    source,
                })?;
                Signer::from_encrypted_pem(&pem, &path.display().to_string())
            }
            KeySource::Env(var) => {
                let Ok(pem) = std::env::var(&var) else {
                    return Err(SigningError::KeyVariableUnset { var });
                };
                Signer::from_encrypted_pem(pem.as_bytes(), &format!("${var}"))
            }
        }
    }
}

/// A public key for verification, from a PEM file.
pub fn verification_key(path: &Path) -> Result<CosignVerificationKey> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read the public key {}", path.display()))?;
    CosignVerificationKey::from_pem(&pem, &SigningScheme::ECDSA_P256_SHA256_ASN1).map_err(|e| {
        anyhow::anyhow!(
            "{} is not an ECDSA P-256 public key in PEM: {e}",
            path.display()
        )
    })
}

/// Writes a new key pair as cosign does: `<prefix>.key` (encrypted with MLOPS_SIGNING_PASSWORD)
/// and `<prefix>.pub`. Never replaces anything already named so (a file, a directory, a link
/// even when it leads nowhere): each file is written to a temporary file in the same directory
/// and moved into place with a rename that fails when the name exists. The private key's
/// temporary file is created 0600, so the key is never readable by others, not even briefly.
pub fn generate_key_pair(prefix: &Path) -> Result<(PathBuf, PathBuf)> {
    let key_path = prefix.with_extension("key");
    let pub_path = prefix.with_extension("pub");
    for p in [&key_path, &pub_path] {
        refuse_existing(p)?;
    }
    let password = std::env::var(PASSWORD_VAR).map_err(|_| {
        anyhow::anyhow!("set {PASSWORD_VAR} to the password that will protect the new key")
    })?;
    let keys = ECDSAKeys::new(EllipticCurve::P256).map_err(|e| anyhow::anyhow!("{e}"))?;
    let pair = SigStoreKeyPair::ECDSA(keys);
    let private = pair
        .private_key_to_encrypted_pem(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let public = pair
        .public_key_to_pem()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    write_new(&key_path, private.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&pub_path, public.as_bytes(), 0o644) {
        // The pair is useless without its public half: take back the private key we wrote.
        let _ = std::fs::remove_file(&key_path);
        return Err(e);
    }
    Ok((key_path, pub_path))
}

fn refuse_existing(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => bail!(
            "{} exists; refusing to overwrite a key: move it away or choose another PREFIX",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot check {}", path.display())),
    }
}

/// Creates `path` with `bytes` and permissions `mode`, or fails if anything has that name.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // tempfile creates its files 0600 (O_EXCL, not following links).
    let mut tmp = tempfile::Builder::new()
        .prefix(".mlops-key-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| {
            if mode == 0o600 {
                Ok(())
            } else {
                tmp.as_file()
                    .set_permissions(std::fs::Permissions::from_mode(mode))
            }
        })
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    // renameat2(RENAME_NOREPLACE), or link + unlink where the file system lacks it.
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} exists; refusing to overwrite a key: move it away or choose another PREFIX",
                path.display()
            )
        } else {
            anyhow::Error::new(e.error).context(format!("cannot create {}", path.display()))
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod key_file_tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_no_clobber_rename_keeps_a_file_that_appeared_after_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cosign.key");
        std::fs::write(&path, b"theirs").unwrap();
        let err = super::write_new(&path, b"ours", 0o600).unwrap_err();
        assert!(err.to_string().contains("cosign.key exists"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"theirs");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_new_private_file_is_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        super::write_new(&path, b"secret", 0o600).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
    }
}
