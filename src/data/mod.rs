//! Datasets: digests, readers, profiles, accepted references and the checks against them.

pub mod check;
pub mod digest;
pub mod drift;
pub mod profile;
pub mod read;
pub mod reference;
pub mod stats;

use anyhow::Result;
use indexmap::IndexMap;

use crate::config::Config;
use crate::runs::DatasetDigest;

/// The digest of every configured dataset, for run records and provenance.
pub fn dataset_digests(config: &Config) -> Result<IndexMap<String, DatasetDigest>> {
    let mut out = IndexMap::new();
    for (name, ds) in &config.data.datasets {
        out.insert(
            name.clone(),
            DatasetDigest {
                path: ds.path.clone(),
                digest: digest::digest_path(&ds.abs_path)?.to_string(),
            },
        );
    }
    Ok(out)
}
