//! Per-column drift: which test a column gets, and the two distance measures that have no
//! p-value (PSI and normalised Wasserstein). The hypothesis tests (KS, chi-squared) are in
//! `stats`.

use std::collections::HashMap;

use serde::Serialize;

use super::profile::{quantile_sorted, ColumnSample};
use super::stats;
use crate::config::DriftTest;

/// The test a column was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Test {
    Ks,
    Chi2,
    Psi,
    Wasserstein,
}

/// Floor for bin shares in PSI, so an empty bin counts as rare rather than infinitely surprising.
pub const PSI_EPSILON: f64 = 1e-4;
/// Numeric columns with at most this many distinct values are treated as categories by `auto`.
pub const AUTO_MAX_DISTINCT_FOR_CATEGORIES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub test: Test,
    pub statistic: f64,
    pub p_value: Option<f64>,
}

/// Runs the configured test on one column's reference and current samples. Numeric tests
/// (ks, wasserstein) need numbers on both sides; a categorical column gets chi2 instead.
pub fn column(configured: DriftTest, reference: &ColumnSample, current: &ColumnSample) -> Outcome {
    let numeric = match (&reference.numbers, &current.numbers) {
        (Some(r), Some(c)) => Some((r.as_slice(), c.as_slice())),
        _ => None,
    };
    let test = match (configured, numeric) {
        (DriftTest::Auto, Some((r, _)))
            if distinct_sorted(r) > AUTO_MAX_DISTINCT_FOR_CATEGORIES =>
        {
            Test::Ks
        }
        (DriftTest::Auto, _) => Test::Chi2,
        (DriftTest::Ks, Some(_)) => Test::Ks,
        (DriftTest::Wasserstein, Some(_)) => Test::Wasserstein,
        (DriftTest::Ks | DriftTest::Wasserstein | DriftTest::Chi2, _) => Test::Chi2,
        (DriftTest::Psi, _) => Test::Psi,
    };
    let (statistic, p_value) = match (test, numeric) {
        (Test::Ks, Some((r, c))) => {
            let o = stats::ks_2samp_sorted(r, c);
            (o.statistic, o.p_value)
        }
        (Test::Wasserstein, Some((r, c))) => (wasserstein_normalised(r, c), None),
        (Test::Psi, Some((r, c))) => (psi_numeric(r, c), None),
        (Test::Psi, None) => {
            let (r, c) = category_counts(reference, current);
            (psi_counts(&r, &c), None)
        }
        _ => {
            let (r, c) = category_counts(reference, current);
            let o = stats::chi2_homogeneity(&r, &c);
            (o.statistic, o.p_value)
        }
    };
    Outcome {
        test,
        statistic,
        p_value,
    }
}

/// [`column`] over many columns at once, on every core (a column at a time per thread, the
/// next free one first); outcomes in the order of `pairs`. Works on in-memory samples, so
/// the same tests serve data checks and monitoring.
pub fn columns(configured: DriftTest, pairs: &[(&ColumnSample, &ColumnSample)]) -> Vec<Outcome> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(pairs.len());
    if threads <= 1 {
        return pairs
            .iter()
            .map(|(r, c)| column(configured, r, c))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<Outcome>> = vec![None; pairs.len()];
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((r, c)) = pairs.get(i) else { break };
                        done.push((i, column(configured, r, c)));
                    }
                    done
                })
            })
            .collect();
        for h in handles {
            if let Ok(done) = h.join() {
                for (i, o) in done {
                    out[i] = Some(o);
                }
            }
        }
    });
    // A thread that panicked left its columns out: compute them here (and panic here too).
    out.into_iter()
        .zip(pairs)
        .map(|(o, (r, c))| o.unwrap_or_else(|| column(configured, r, c)))
        .collect()
}

fn distinct_sorted(v: &[f64]) -> usize {
    let mut n = 0;
    let mut last = None;
    for &x in v {
        if last != Some(x) {
            n += 1;
            last = Some(x);
        }
    }
    n
}

/// Counts per category over the union of both samples (first-seen order: reference, then
/// categories only the current data has — those count 0 on the reference side).
pub fn category_counts(reference: &ColumnSample, current: &ColumnSample) -> (Vec<u64>, Vec<u64>) {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut r = Vec::new();
    let mut c = Vec::new();
    for (side, values) in [(0, reference.as_texts()), (1, current.as_texts())] {
        for v in values {
            let next = index.len();
            let i = *index.entry(v).or_insert(next);
            if i == r.len() {
                r.push(0);
                c.push(0);
            }
            if side == 0 {
                r[i] += 1;
            } else {
                c[i] += 1;
            }
        }
    }
    (r, c)
}

/// Population stability index over the reference's deciles: bins are cut at the reference
/// sample's 10%..90% quantiles (repeated edges merged), shares floored at `PSI_EPSILON`.
/// Both inputs sorted.
pub fn psi_numeric(reference: &[f64], current: &[f64]) -> f64 {
    if reference.is_empty() || current.is_empty() {
        return 0.0;
    }
    let mut edges: Vec<f64> = (1..10)
        .map(|k| quantile_sorted(reference, k as f64 / 10.0))
        .collect();
    edges.dedup();
    let bin_counts = |v: &[f64]| -> Vec<u64> {
        // Bins are (-inf, e1], (e1, e2], ..., (e_last, inf): count with a partition point per edge.
        let mut counts = Vec::with_capacity(edges.len() + 1);
        let mut start = 0;
        for e in &edges {
            let end = v.partition_point(|x| x <= e);
            counts.push((end - start) as u64);
            start = end;
        }
        counts.push((v.len() - start) as u64);
        counts
    };
    psi_counts(&bin_counts(reference), &bin_counts(current))
}

/// PSI = Σ (c − r) · ln(c / r) over bins, with shares r, c floored at `PSI_EPSILON`.
pub fn psi_counts(reference: &[u64], current: &[u64]) -> f64 {
    let rt: u64 = reference.iter().sum();
    let ct: u64 = current.iter().sum();
    if rt == 0 || ct == 0 {
        return 0.0;
    }
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let r = (r as f64 / rt as f64).max(PSI_EPSILON);
            let c = (c as f64 / ct as f64).max(PSI_EPSILON);
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// First Wasserstein distance between the two empirical distributions (as
/// scipy.stats.wasserstein_distance), divided by the reference's standard deviation (ddof 0)
/// so one threshold fits every column; by 1 when the reference is constant. Inputs sorted.
pub fn wasserstein_normalised(reference: &[f64], current: &[f64]) -> f64 {
    if reference.is_empty() || current.is_empty() {
        return 0.0;
    }
    let w = wasserstein_sorted(reference, current);
    let n = reference.len() as f64;
    let mean = reference.iter().sum::<f64>() / n;
    let var = reference.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let sd = var.sqrt();
    if sd > 0.0 {
        w / sd
    } else {
        w
    }
}

/// ∫ |F_a(x) − F_b(x)| dx, walking the merged sorted values.
pub fn wasserstein_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut total = 0.0;
    let mut x = a[0].min(b[0]);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => unreachable!(),
        };
        total += (i as f64 / na - j as f64 / nb).abs() * (next - x);
        x = next;
        while i < a.len() && a[i] == next {
            i += 1;
        }
        while j < b.len() && b[j] == next {
            j += 1;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(v: &[f64]) -> ColumnSample {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        ColumnSample {
            numbers: Some(v),
            texts: None,
        }
    }

    #[test]
    fn wasserstein_matches_scipy() {
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) == 5.0
        assert!((wasserstein_sorted(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]) - 5.0).abs() < 1e-12);
        // scipy.stats.wasserstein_distance([3.4, 3.9, 7.5, 7.8], [4.5, 1.4]) == 2.7
        let w = wasserstein_sorted(&[3.4, 3.9, 7.5, 7.8], &[1.4, 4.5]);
        assert!((w - 2.7).abs() < 1e-12, "{w}");
        assert_eq!(wasserstein_sorted(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn psi_is_zero_for_identical_and_grows_with_shift() {
        let a: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        let b: Vec<f64> = (0..1000).map(|i| i as f64 + 300.0).collect();
        assert!(psi_numeric(&a, &a).abs() < 1e-12);
        let p = psi_numeric(&a, &b);
        assert!(p > 0.2, "{p}");
        // Hand-computed: reference shares (0.5, 0.5), current (0.9, 0.1).
        let p = psi_counts(&[50, 50], &[90, 10]);
        let want = (0.9 - 0.5) * (0.9f64 / 0.5).ln() + (0.1 - 0.5) * (0.1f64 / 0.5).ln();
        assert!((p - want).abs() < 1e-12);
    }

    #[test]
    fn auto_picks_ks_for_continuous_and_chi2_for_few_values() {
        let cont = numbers(&(0..50).map(|i| i as f64).collect::<Vec<_>>());
        assert_eq!(column(DriftTest::Auto, &cont, &cont).test, Test::Ks);
        let few = numbers(&[0.0, 1.0, 1.0, 0.0, 2.0]);
        let o = column(DriftTest::Auto, &few, &few);
        assert_eq!(o.test, Test::Chi2);
        assert_eq!(o.p_value, Some(1.0));
        let cats = ColumnSample {
            numbers: None,
            texts: Some(vec!["a".into(), "b".into()]),
        };
        assert_eq!(column(DriftTest::Ks, &cats, &cats).test, Test::Chi2);
        assert_eq!(column(DriftTest::Psi, &cats, &cats).test, Test::Psi);
    }

    #[test]
    fn unseen_categories_count_zero_on_the_other_side() {
        let r = ColumnSample {
            numbers: None,
            texts: Some(vec!["a".into(), "b".into(), "a".into()]),
        };
        let c = ColumnSample {
            numbers: None,
            texts: Some(vec!["c".into(), "a".into()]),
        };
        assert_eq!(category_counts(&r, &c), (vec![2, 1, 0], vec![1, 0, 1]));
    }
}
