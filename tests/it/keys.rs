//! `mlops sign --generate-key PREFIX`: the private key is private from its first byte and no
//! existing file (or link) named PREFIX.key / PREFIX.pub is ever replaced.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::{mlops, stderr};

fn generate(dir: &Path, prefix: &str) -> std::process::Output {
    mlops(dir)
        .args(["sign", "--generate-key", prefix])
        .env("MLOPS_SIGNING_PASSWORD", "pw")
        .output()
        .unwrap()
}

#[test]
fn a_new_key_is_0600_and_its_public_half_0644() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(dir.path(), "cosign");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("cosign.key"), 0o600);
    assert_eq!(mode("cosign.pub"), 0o644);
    let key = std::fs::read_to_string(dir.path().join("cosign.key")).unwrap();
    assert!(key.contains("ENCRYPTED SIGSTORE PRIVATE KEY"), "{key}");
    // Nothing else is left in the directory (no temporary files).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn an_existing_key_or_public_key_is_kept_byte_identical() {
    for existing in ["cosign.key", "cosign.pub"] {
        let dir = tempfile::tempdir().unwrap();
        let old = b"-----BEGIN OLD KEY-----\nkeep me\n-----END OLD KEY-----\n";
        std::fs::write(dir.path().join(existing), old).unwrap();
        let out = generate(dir.path(), "cosign");
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(existing), "{}", stderr(&out));
        assert_eq!(std::fs::read(dir.path().join(existing)).unwrap(), old);
        // The other half was not written either.
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "{existing}"
        );
    }
}

#[test]
fn a_dangling_link_named_like_the_key_is_not_replaced() {
    // `exists()` says false for a link to nowhere; a rename over it would replace the link
    // (and a writer that followed it would create the file where it points).
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere/secret.key");
    std::os::unix::fs::symlink(&target, dir.path().join("cosign.key")).unwrap();
    let out = generate(dir.path(), "cosign");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cosign.key"), "{}", stderr(&out));
    let link = std::fs::symlink_metadata(dir.path().join("cosign.key")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(dir.path().join("cosign.key")).unwrap(),
        target
    );
    assert!(!target.exists());
    assert!(!dir.path().join("cosign.pub").exists());
}
