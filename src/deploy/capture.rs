//! What every deploy target gives the serving runtime: `MLOPS_DIGEST`, `MLOPS_MODEL` and
//! `MLOPS_ENVIRONMENT` to stamp its records with, and, with `deploy.capture`, the directory it
//! appends captured predictions to (`MLOPS_CAPTURE_DIR`; see the capture contract in the README).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::environment::EnvironmentState;

/// Where the docker target mounts `deploy.capture` inside the serving container.
pub const CONTAINER_CAPTURE_DIR: &str = "/mlops/capture";

/// The serving runtime's variables; `capture_dir` is the directory as the runtime sees it.
pub fn serving_env(state: &EnvironmentState, capture_dir: Option<&str>) -> Vec<(String, String)> {
    let mut vars = vec![
        ("MLOPS_DIGEST".to_string(), state.digest.to_string()),
        ("MLOPS_MODEL".to_string(), state.model.clone()),
        ("MLOPS_ENVIRONMENT".to_string(), state.environment.clone()),
    ];
    if let Some(dir) = capture_dir {
        vars.push(("MLOPS_CAPTURE_DIR".to_string(), dir.to_string()));
    }
    vars
}

/// The numeric user and group of an image's `User` (`uid`, `uid:gid`); None for root, an empty
/// user, or a user name (which only the image's /etc/passwd resolves).
pub fn numeric_user(user: &str) -> Option<(u32, Option<u32>)> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid: u32 = u.parse().ok()?;
    if uid == 0 {
        return None;
    }
    Some((uid, g.and_then(|g| g.parse().ok())))
}

/// Creates the host capture directory when it is missing and makes it writable by the
/// container's user: the serving image runs unprivileged (65534 for ours), and a directory the
/// engine creates for a bind mount belongs to root. When the directory is not that user's and
/// this process may not give it away, the error says what to run.
pub fn prepare(dir: &Path, image_user: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create deploy.capture {}: create it, writable by the serving container's user",
            dir.display()
        )
    })?;
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot read deploy.capture {}", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!("deploy.capture {} is not a directory", dir.display());
    }
    let Some((uid, gid)) = numeric_user(image_user) else {
        if !image_user.is_empty() && !image_user.starts_with("0") && image_user != "root" {
            tracing::warn!(
                "the serving image runs as {image_user:?}, a name: make sure it can write to deploy.capture {}",
                dir.display()
            );
        }
        return Ok(());
    };
    if meta.uid() == uid {
        return Ok(());
    }
    std::os::unix::fs::chown(dir, Some(uid), gid).map_err(|e| {
        anyhow::anyhow!(
            "deploy.capture {} belongs to uid {}, but the serving container runs as {uid} and must write there ({e}): run `chown {uid} {}` (or deploy as root)",
            dir.display(),
            meta.uid(),
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_users() {
        assert_eq!(numeric_user("65534:65534"), Some((65534, Some(65534))));
        assert_eq!(numeric_user("1000"), Some((1000, None)));
        assert_eq!(numeric_user("0"), None);
        assert_eq!(numeric_user(""), None);
        assert_eq!(numeric_user("nobody"), None);
    }

    #[test]
    fn a_directory_already_owned_by_the_user_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("capture/staging");
        let me = std::fs::metadata(tmp.path()).unwrap().uid();
        prepare(&dir, &me.to_string()).unwrap();
        assert!(dir.is_dir());
        assert_eq!(std::fs::metadata(&dir).unwrap().uid(), me);
    }
}
