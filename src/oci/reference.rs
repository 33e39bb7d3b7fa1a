//! OCI image references as the distribution spec and Docker write them:
//! `[host[:port]/]path[:tag][@algorithm:hex]`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host with optional port; `docker.io` when the reference names none.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl ImageRef {
    /// `registry/repository@digest`, the only form deploys accept.
    pub fn with_digest(&self, digest: &str) -> ImageRef {
        ImageRef {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ separated by ".", "_", "__" or one or more "-".
    if c.is_empty() || !c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit()) {
        return false;
    }
    let bytes = c.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let ch = bytes[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !(bytes[i].is_ascii_lowercase() || bytes[i].is_ascii_digit()) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|x| x == '-');
        if !ok || i == bytes.len() {
            return false;
        }
    }
    true
}

fn looks_like_host(s: &str) -> bool {
    s.contains('.') || s.contains(':') || s == "localhost"
}

fn valid_host(h: &str) -> bool {
    let (host, port) = match h.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return false;
        }
    }
    !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

pub fn valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some(("sha256", hex)) => {
            hex.len() == 64
                && hex
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        }
        Some(("sha512", hex)) => {
            hex.len() == 128
                && hex
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        }
        _ => false,
    }
}

/// Parses an image reference; a tag and a digest are both optional.
pub fn parse_image(text: &str) -> Result<ImageRef, String> {
    let bad = |why: &str| format!("\"{text}\" is not a valid image reference: {why}");
    let (rest, digest) = match text.split_once('@') {
        Some((r, d)) => {
            if !valid_digest(d) {
                return Err(bad(
                    "the digest must be sha256: followed by 64 lowercase hex digits",
                ));
            }
            (r, Some(d.to_string()))
        }
        None => (text, None),
    };
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
        _ => (rest, None),
    };
    if let Some(t) = &tag {
        if !valid_tag(t) {
            return Err(bad("invalid tag"));
        }
    }
    let (registry, path) = match name.split_once('/') {
        Some((first, path)) if looks_like_host(first) => {
            if !valid_host(first) {
                return Err(bad("invalid registry host"));
            }
            (first.to_string(), path.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    if path.is_empty() || !path.split('/').all(valid_component) {
        return Err(bad(
            "repository path components are lowercase letters and digits, separated by . _ __ or -",
        ));
    }
    Ok(ImageRef {
        registry,
        repository: path,
        tag,
        digest,
    })
}

/// Parses a repository to push to: a registry host and a path, no tag and no digest.
pub fn parse_repository(text: &str) -> Result<ImageRef, String> {
    let r = parse_image(text)?;
    if r.tag.is_some() || r.digest.is_some() {
        return Err(format!(
            "\"{text}\" names a tag or digest; package.repository is where images go, without one"
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = parse_image("127.0.0.1:5000/acme/serve-sklearn:1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "acme/serve-sklearn");
        assert_eq!(r.tag.as_deref(), Some("1"));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse_image(&format!("localhost/x@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(
            parse_image("mlops-test/python-sklearn").unwrap().registry,
            "docker.io"
        );
        assert_eq!(r.with_digest(&d).to_string(), format!("localhost/x@{d}"));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "UPPER/case",
            "a//b",
            "host:port/x",
            "a/b:",
            "a/b@sha256:xyz",
            "a-/b",
        ] {
            assert!(parse_image(bad).is_err(), "{bad:?} should fail");
        }
        assert!(parse_repository("127.0.0.1:5000/acme/churn:1").is_err());
        assert!(parse_repository("127.0.0.1:5000/acme/churn").is_ok());
    }
}
