//! OCI image references as the distribution spec and Docker write them:
//! `[host[:port]/]path[:tag][@algorithm:hex]`, and where an image is: a registry reference or
//! an OCI image layout on disk (`oci:PATH`). Every image reference of the toolkit is parsed
//! here, once, into these types.

use std::fmt;
use std::path::PathBuf;

use super::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host with optional port; `docker.io` when the reference names none.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Where an image lives: in a registry, or in an OCI image layout on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLocation {
    Registry(ImageRef),
    /// The layout's directory (`oci:PATH`; the digest, if one was written, is left out).
    Layout(PathBuf),
}

/// The prefix that names an OCI image layout instead of a registry.
pub const LAYOUT_PREFIX: &str = "oci:";

impl ImageLocation {
    /// `oci:PATH[@digest]` is a layout; anything else must be an image reference.
    pub fn parse(text: &str) -> Result<ImageLocation, String> {
        let Some(rest) = text.strip_prefix(LAYOUT_PREFIX) else {
            return parse_image(text).map(ImageLocation::Registry);
        };
        let path = match rest.rsplit_once('@') {
            Some((path, digest)) if valid_digest(digest) => path,
            _ => rest,
        };
        if path.is_empty() {
            return Err("oci: needs a directory path, such as oci:build/images".into());
        }
        Ok(ImageLocation::Layout(PathBuf::from(path)))
    }

    /// Whether `text` means a layout (`oci:…`), well-formed or not.
    pub fn names_layout(text: &str) -> bool {
        text.starts_with(LAYOUT_PREFIX)
    }
}

impl fmt::Display for ImageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageLocation::Registry(r) => write!(f, "{r}"),
            ImageLocation::Layout(p) => write!(f, "{LAYOUT_PREFIX}{}", p.display()),
        }
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl serde::Serialize for ImageLocation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
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
    pub fn with_digest(&self, digest: &Digest) -> ImageRef {
        ImageRef {
            tag: None,
            digest: Some(digest.clone()),
            ..self.clone()
        }
    }

    /// `registry/repository`: the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
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
    s.contains('.') || s.contains(':') || s.starts_with('[') || s == "localhost"
}

/// `host[:port]` split in two; a bracketed IPv6 literal keeps its brackets (`[::1]`, `5000`).
pub(crate) fn split_host_port(h: &str) -> (&str, Option<&str>) {
    if h.starts_with('[') {
        return match h.find(']') {
            Some(end) => match h[end + 1..].strip_prefix(':') {
                Some(port) => (&h[..=end], Some(port)),
                None => (h, None),
            },
            None => (h, None),
        };
    }
    match h.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    }
}

fn valid_host(h: &str) -> bool {
    let (host, port) = split_host_port(h);
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return false;
        }
    }
    if let Some(inner) = host.strip_prefix('[') {
        return inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
    }
    !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// Whether a registry `host[:port]` is this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
/// Those are spoken to over plain HTTP; everything else over HTTPS.
pub(crate) fn is_loopback_host(h: &str) -> bool {
    let (host, _) = split_host_port(h);
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A registry host as `MLOPS_REGISTRY` and `MLOPS_REGISTRY_TOKEN_HOSTS` name it:
/// `host[:port]`, no scheme and no path (`ghcr.io`, `127.0.0.1:5000`, `[::1]:5000`).
pub fn parse_host(text: &str) -> Result<String, String> {
    let t = text.trim();
    if !valid_host(t) {
        return Err(format!(
            "{t:?} is not a registry host: write host[:port] without a scheme or path (ghcr.io, 127.0.0.1:5000)"
        ));
    }
    Ok(canonical_registry(&t.to_ascii_lowercase()))
}

/// Docker Hub answers to several names; references and credentials all say `docker.io`.
fn canonical_registry(host: &str) -> String {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        other => other.to_string(),
    }
}

pub(crate) fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

pub fn valid_digest(d: &str) -> bool {
    Digest::parse(d).is_ok()
}

/// Parses an image reference; a tag and a digest are both optional.
pub fn parse_image(text: &str) -> Result<ImageRef, String> {
    let bad = |why: &str| format!("\"{text}\" is not a valid image reference: {why}");
    let (rest, digest) = match text.split_once('@') {
        Some((r, d)) => match Digest::parse(d) {
            Ok(d) => (r, Some(d)),
            Err(_) => {
                return Err(bad(
                    "the digest must be sha256: followed by 64 lowercase hex digits",
                ))
            }
        },
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
            (
                canonical_registry(&first.to_ascii_lowercase()),
                path.to_string(),
            )
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    // Docker Hub's official images live under `library/`: `python` is `library/python`.
    let path = if registry == "docker.io" && !path.is_empty() && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
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

/// An image named by digest (`IMAGE@sha256:<hex>`): the only form signing, verification and
/// deploys accept.
pub fn parse_pinned(text: &str) -> Result<(ImageRef, Digest), String> {
    let image = parse_image(text).map_err(|e| format!("{text:?}: {e}"))?;
    match image.digest.clone() {
        Some(digest) => Ok((image, digest)),
        None => Err(format!(
            "{text} names no digest: sign and verify need IMAGE@sha256:<hex>, never a tag"
        )),
    }
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
        let d = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let r = parse_image(&format!("localhost/x@{d}")).unwrap();
        assert_eq!(r.digest.as_ref(), Some(&d));
        assert_eq!(
            parse_image("mlops-test/python-sklearn").unwrap().registry,
            "docker.io"
        );
        assert_eq!(r.with_digest(&d).to_string(), format!("localhost/x@{d}"));
    }

    #[test]
    fn docker_hub_names_resolve_as_docker_does() {
        let r = parse_image("python:3.12").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/python:3.12");
        let r = parse_image("user/img").unwrap();
        assert_eq!(r.to_string(), "docker.io/user/img");
        let r = parse_image("index.docker.io/library/python").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/python");
        let r = parse_image("docker.io/python").unwrap();
        assert_eq!(r.repository, "library/python");
        // Not Docker Hub: no library/ prefix.
        let r = parse_image("ghcr.io/x:1").unwrap();
        assert_eq!(r.to_string(), "ghcr.io/x:1");
    }

    #[test]
    fn ipv6_hosts_parse() {
        let r = parse_image("[::1]:5000/x").unwrap();
        assert_eq!(r.registry, "[::1]:5000");
        assert_eq!(r.repository, "x");
        assert_eq!(r.tag, None);
        let r = parse_image("[::1]:5000/acme/x:2").unwrap();
        assert_eq!(r.registry, "[::1]:5000");
        assert_eq!(r.tag.as_deref(), Some("2"));
        assert_eq!(parse_image("[::1]/x").unwrap().registry, "[::1]");
        for bad in ["[::1:5000/x", "[zz]:5000/x", "[::1]:/x", "[::1]:99999/x"] {
            assert!(parse_image(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn loopback_hosts_are_this_machine_only() {
        for h in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:5000",
            "localhost",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "ghcr.io",
            "registry.example.com:5000",
            "127.evil.example",
            "localhost.example",
            "[::2]:5000",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn registry_hosts_for_the_environment() {
        assert_eq!(parse_host("ghcr.io").unwrap(), "ghcr.io");
        assert_eq!(parse_host(" 127.0.0.1:5000 ").unwrap(), "127.0.0.1:5000");
        assert_eq!(parse_host("[::1]:5000").unwrap(), "[::1]:5000");
        assert_eq!(parse_host("index.docker.io").unwrap(), "docker.io");
        for bad in ["https://ghcr.io", "ghcr.io/acme", "", "host:port"] {
            assert!(parse_host(bad).is_err(), "{bad:?}");
        }
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
            "a/b@sha256:../../x",
            "a/b@sha512:abc",
        ] {
            assert!(parse_image(bad).is_err(), "{bad:?} should fail");
        }
        assert!(parse_repository("127.0.0.1:5000/acme/churn:1").is_err());
        assert!(parse_repository("127.0.0.1:5000/acme/churn").is_ok());
    }

    #[test]
    fn pinned_references_need_a_digest() {
        let d = format!("sha256:{}", "c".repeat(64));
        let (image, digest) = parse_pinned(&format!("127.0.0.1:5000/acme/churn@{d}")).unwrap();
        assert_eq!(image.name(), "127.0.0.1:5000/acme/churn");
        assert_eq!(digest, d.as_str());
        let e = parse_pinned("127.0.0.1:5000/acme/churn:1").unwrap_err();
        assert!(e.contains("names no digest"), "{e}");
    }

    #[test]
    fn locations_are_a_registry_or_a_layout() {
        let d = format!("sha256:{}", "c".repeat(64));
        assert_eq!(
            ImageLocation::parse(&format!("oci:/tmp/images@{d}")).unwrap(),
            ImageLocation::Layout(PathBuf::from("/tmp/images"))
        );
        assert_eq!(
            ImageLocation::parse("oci:build/a@b").unwrap(),
            ImageLocation::Layout(PathBuf::from("build/a@b"))
        );
        assert!(ImageLocation::parse("oci:").is_err());
        let at = ImageLocation::parse("127.0.0.1:5000/acme/churn").unwrap();
        assert!(matches!(&at, ImageLocation::Registry(r) if r.repository == "acme/churn"));
        assert_eq!(at.to_string(), "127.0.0.1:5000/acme/churn");
        assert_eq!(
            ImageLocation::Layout(PathBuf::from("x")).to_string(),
            "oci:x"
        );
        assert!(ImageLocation::parse("UPPER/case").is_err());
    }
}
