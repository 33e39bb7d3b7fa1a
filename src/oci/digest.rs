//! Content digests as the OCI image-spec writes them: `sha256:` + 64 or `sha512:` + 128
//! lowercase hex digits. A digest read from a manifest, an index or a file is parsed here
//! before it names a URL path or a file, so `sha256:../../x` never reaches either. The one
//! digest type of the toolkit: images, blobs, datasets, keys; read from JSON or YAML it is
//! checked the same way.

use std::fmt;

use sha2::{Digest as _, Sha256, Sha512};

/// A well-formed digest (algorithm and hex checked).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest(String);

/// The hash algorithms the image-spec registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl Digest {
    /// Parses `algorithm:hex`; the error says what a digest must look like.
    pub fn parse(text: &str) -> Result<Digest, String> {
        let bad = || {
            format!(
                "{:?} is not a digest: expected sha256: followed by 64 lowercase hex digits (or sha512: and 128)",
                shorten(text)
            )
        };
        let (algorithm, hex) = text.split_once(':').ok_or_else(bad)?;
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(bad()),
        };
        let lower_hex = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex.len() != algorithm.hex_len() || !lower_hex {
            return Err(bad());
        }
        Ok(Digest(text.to_string()))
    }

    /// The sha256 digest of `bytes`, the algorithm everything we write uses.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn algorithm(&self) -> Algorithm {
        if self.0.starts_with("sha512:") {
            Algorithm::Sha512
        } else {
            Algorithm::Sha256
        }
    }

    /// The hex part: a file name in an OCI layout (`blobs/<algorithm>/<hex>`).
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, h)| h)
    }

    /// A hasher of this digest's algorithm, to check content against it.
    /// `sha256:` and the first 12 hex digits, for progress lines.
    pub fn short(&self) -> String {
        let hex = self.hex();
        format!("{}:{}", self.algorithm().name(), &hex[..hex.len().min(12)])
    }

    pub fn hasher(&self) -> Hasher {
        match self.algorithm() {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Box::default()),
        }
    }

    /// Whether `bytes` hash to this digest.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        let mut h = self.hasher();
        h.update(bytes);
        h.finish() == *self
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Digest {
    type Err = String;

    fn from_str(text: &str) -> Result<Digest, String> {
        Digest::parse(text)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Incremental hashing in the algorithm of the digest it was made for.
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Box<Sha512>),
}

impl Hasher {
    /// A sha256 hasher, for content we digest ourselves.
    pub fn sha256() -> Hasher {
        Hasher::Sha256(Sha256::new())
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest(format!("sha256:{}", hex::encode(h.finalize()))),
            Hasher::Sha512(h) => Digest(format!("sha512:{}", hex::encode(h.finalize()))),
        }
    }
}

/// Hostile text quoted in an error stays short.
fn shorten(text: &str) -> String {
    const MAX: usize = 140;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sha256_and_sha512() {
        let d = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.hex(), "a".repeat(64));
        let d = Digest::parse(&format!("sha512:{}", "0".repeat(128))).unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha512);
    }

    #[test]
    fn refuses_anything_that_could_name_another_path() {
        for bad in [
            "sha256:../../x".to_string(),
            format!("sha256:{}/..", "a".repeat(61)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}", "a".repeat(128)),
            format!("sha512:{}", "a".repeat(64)),
            format!("md5:{}", "a".repeat(32)),
            format!("sha256:{}\n", "a".repeat(64)),
            "sha256".to_string(),
            String::new(),
        ] {
            let e = Digest::parse(&bad).unwrap_err();
            assert!(e.contains("is not a digest"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn verifies_content_in_the_digests_algorithm() {
        let bytes = b"hello";
        let sha256 = Digest::of(bytes);
        assert!(sha256.matches(bytes));
        assert!(!sha256.matches(b"hellO"));
        let sha512 = Digest::parse(&format!(
            "sha512:{}",
            hex::encode(<Sha512 as sha2::Digest>::digest(bytes))
        ))
        .unwrap();
        assert!(sha512.matches(bytes));
        assert!(!sha512.matches(b"hellO"));
        let mut h = sha512.hasher();
        h.update(b"hel");
        h.update(b"lo");
        assert_eq!(h.finish(), sha512);
        let mut h = Hasher::sha256();
        h.update(bytes);
        assert_eq!(h.finish(), sha256);
    }

    #[test]
    fn serde_reads_only_well_formed_digests() {
        let good = format!("\"sha256:{}\"", "b".repeat(64));
        let d: Digest = serde_json::from_str(&good).unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), good);
        let bad = serde_json::from_str::<Digest>("\"sha256:../../etc\"").unwrap_err();
        assert!(bad.to_string().contains("is not a digest"), "{bad}");
    }
}
