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

/// `f` over contiguous ranges of `0..n` (columns, usually), one range a core (at most 8),
/// the results in order. A thread that panicked has a bug to report, not an input to
/// describe: its panic goes on.
pub(crate) fn per_core<R: Send>(
    n: usize,
    f: impl Fn(std::ops::Range<usize>) -> Vec<R> + Sync,
) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |w| w.get().clamp(1, 8))
        .min(n.max(1));
    let per = n.div_ceil(workers).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|from| s.spawn(move || f(from..(from + per).min(n))))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}
