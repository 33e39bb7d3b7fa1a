//! Is the challenger's improvement more than noise? Paired on the same test rows:
//!
//! - a paired bootstrap: resample the rows with replacement (the same rows for both models),
//!   recompute each metric for both, and take percentile bounds of the difference
//!   challenger − champion at the configured confidence; seeded, so reports reproduce;
//! - McNemar's exact test for classifiers: of the rows exactly one model gets right, is the split
//!   more lopsided than a fair coin would make it (two-sided binomial test)?
//!
//! Rows are drawn by eight xoshiro256++ streams stepped together and Lemire's multiply-shift
//! bound (`resample`), and the resamples are split across threads: 10,000 resamples of
//! 100,000 rows is 10⁹ draws. roc_auc is computed from the scores' orders, sorted once, and
//! each resample's row multiplicities (no sort per resample).
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

mod resample;
use resample::{Draws, Ranking, GROUP};

pub use super::predictions::{read_predictions, Predictions};

/// Metrics computable from predictions.
pub const SUPPORTED: &[&str] = &[
    "accuracy",
    "f1",
    "precision",
    "recall",
    "roc_auc",
    "rmse",
    "mae",
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Interval {
    pub metric: String,
    /// challenger − champion on the full test set.
    pub observed: f64,
    pub low: f64,
    pub high: f64,
    pub confidence: f64,
    pub resamples: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct McNemar {
    /// Rows only the challenger got right.
    pub challenger_only: u64,
    /// Rows only the champion got right.
    pub champion_only: u64,
    pub p_value: f64,
}

/// Checks that both sides scored the same rows: same count and the same y_true in order.
pub fn check_paired(challenger: &Predictions, champion: &Predictions) -> Result<()> {
    if challenger.y_true.len() != champion.y_true.len() {
        bail!(
            "the challenger has {} predictions and the champion {}: both must score the same test rows",
            challenger.y_true.len(),
            champion.y_true.len()
        );
    }
    if let Some(i) = challenger
        .y_true
        .iter()
        .zip(&champion.y_true)
        .position(|(a, b)| a != b)
    {
        bail!(
            "y_true differs at row {} ({} vs {}): both predictions.csv must list the same test rows in the same order",
            i + 1,
            challenger.y_true[i],
            champion.y_true[i]
        );
    }
    Ok(())
}

fn is_classification(p: &Predictions) -> bool {
    p.y_true
        .iter()
        .chain(&p.y_pred)
        .all(|v| *v == 0.0 || *v == 1.0)
}

fn class_metric(name: &str, tp: f64, fp: f64, fn_: f64, tn: f64) -> f64 {
    let div = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
    match name {
        "accuracy" => div(tp + tn, tp + fp + fn_ + tn),
        "precision" => div(tp, tp + fp),
        "recall" => div(tp, tp + fn_),
        _ => div(2.0 * tp, 2.0 * tp + fp + fn_),
    }
}

/// Confusion counts [tp, fp, fn, tn] of each side from the 8 cell counts.
fn confusion(cells: &[f64; 8]) -> [[f64; 4]; 2] {
    let mut out = [[0.0; 4]; 2];
    for (code, count) in cells.iter().enumerate() {
        let truth = code >> 2;
        for (side, pred) in [(code >> 1) & 1, code & 1].into_iter().enumerate() {
            let k = match (truth, pred) {
                (1, 1) => 0,
                (0, 1) => 1,
                (1, 0) => 2,
                _ => 3,
            };
            out[side][k] += count;
        }
    }
    out
}

/// Per-row data prepared once, so that a resample is a tally. Rows are addressed by a label:
/// their place in the challenger's score order when roc_auc can be computed (so that its walk
/// reads the counts in order), their own index otherwise.
struct Prepared {
    n: usize,
    /// Classification: per label, y_true*4 + challenger_pred*2 + champion_pred.
    cells: Option<Vec<u8>>,
    /// Regression: per label, the squared and absolute errors of each side.
    errors: Option<Vec<[f64; 4]>>,
    /// roc_auc: the challenger's and the champion's score orders over the labels.
    rankings: Option<[Ranking; 2]>,
}

impl Prepared {
    fn new(chal: &Predictions, champ: &Predictions) -> Prepared {
        let n = chal.y_true.len();
        let classification = is_classification(chal) && is_classification(champ);
        let (rows, rankings) = match (&chal.score, &champ.score) {
            (Some(a), Some(b)) if classification => {
                let positive: Vec<bool> = chal.y_true.iter().map(|v| *v == 1.0).collect();
                let (by_challenger, challenger_flags) = resample::rank_rows(a, &positive);
                let mut label_of = vec![0u32; n];
                for (label, &row) in by_challenger.iter().enumerate() {
                    label_of[row as usize] = label as u32;
                }
                let (by_champion, champion_flags) = resample::rank_rows(b, &positive);
                let champion_order = by_champion.iter().map(|&r| label_of[r as usize]);
                let rankings = [
                    Ranking {
                        order: None,
                        flags: challenger_flags,
                    },
                    Ranking {
                        order: Some(champion_order.collect()),
                        flags: champion_flags,
                    },
                ];
                (Some(by_challenger), Some(rankings))
            }
            _ => (None, None),
        };
        let row = |label: usize| rows.as_ref().map_or(label, |r| r[label] as usize);
        let cells = classification.then(|| {
            (0..n)
                .map(|label| {
                    let i = row(label);
                    ((chal.y_true[i] as u8) << 2)
                        | ((chal.y_pred[i] as u8) << 1)
                        | champ.y_pred[i] as u8
                })
                .collect()
        });
        let errors = (!classification).then(|| {
            (0..n)
                .map(|label| {
                    let i = row(label);
                    let (a, b) = (
                        chal.y_pred[i] - chal.y_true[i],
                        champ.y_pred[i] - champ.y_true[i],
                    );
                    [a * a, b * b, a.abs(), b.abs()]
                })
                .collect()
        });
        Prepared {
            n,
            cells,
            errors,
            rankings,
        }
    }

    fn supports(&self, metric: &str) -> bool {
        match metric {
            "accuracy" | "precision" | "recall" | "f1" => self.cells.is_some(),
            "rmse" | "mae" => self.errors.is_some(),
            "roc_auc" => self.rankings.is_some(),
            _ => false,
        }
    }

    /// (challenger, champion) values of `metric` from one resample's tallies: cell counts
    /// (classification), error sums (regression), both AUCs (roc_auc), `total` rows.
    fn values_from_tallies(
        metric: &str,
        tally: &[f64; 8],
        sums: &[f64; 4],
        total: f64,
        aucs: (f64, f64),
    ) -> (f64, f64) {
        match metric {
            "accuracy" | "precision" | "recall" | "f1" => {
                let c = confusion(tally);
                (
                    class_metric(metric, c[0][0], c[0][1], c[0][2], c[0][3]),
                    class_metric(metric, c[1][0], c[1][1], c[1][2], c[1][3]),
                )
            }
            "rmse" => ((sums[0] / total).sqrt(), (sums[1] / total).sqrt()),
            "mae" => (sums[2] / total, sums[3] / total),
            _ => aucs,
        }
    }

    /// Tallies and AUCs of the labels with weights `w` (one resample, or all ones).
    fn tallies(&self, w: &[u32]) -> ([f64; 8], [f64; 4], (f64, f64)) {
        let mut tally = [0.0f64; 8];
        for (c, &wi) in self.cells.iter().flatten().zip(w) {
            tally[usize::from(*c)] += f64::from(wi);
        }
        let mut sums = [0.0f64; 4];
        for (e, &wi) in self.errors.iter().flatten().zip(w) {
            for k in 0..4 {
                sums[k] += f64::from(wi) * e[k];
            }
        }
        let total: f64 = w.iter().map(|&x| f64::from(x)).sum();
        let auc = |ranking: &Ranking| {
            let (twice, negatives) = resample::walk_wide(w, ranking);
            let positives = total - negatives;
            if positives == 0.0 || negatives == 0.0 {
                f64::NAN
            } else {
                twice * 0.5 / (positives * negatives)
            }
        };
        let aucs = match &self.rankings {
            Some([a, b]) => (auc(a), auc(b)),
            None => (f64::NAN, f64::NAN),
        };
        (tally, sums, aucs)
    }

    /// (challenger, champion) values of `metric` on the full test set.
    fn values(&self, metric: &str) -> (f64, f64) {
        let (tally, sums, aucs) = self.tallies(&vec![1; self.n]);
        Self::values_from_tallies(metric, &tally, &sums, self.n as f64, aucs)
    }
}

/// `metric` of one set of predictions, computed as the bootstrap computes it on the full test
/// set; None when these predictions cannot give it (a classification metric on non-0/1 values,
/// roc_auc without scores or with one class only, an unknown name).
pub fn metric_on(p: &Predictions, metric: &str) -> Option<f64> {
    if p.y_true.is_empty() {
        return None;
    }
    let prep = Prepared::new(p, p);
    if !prep.supports(metric) {
        return None;
    }
    Some(prep.values(metric).0).filter(|v| v.is_finite())
}

/// One resample's tallies: confusion cells, error sums, both AUCs.
type Tallies = ([f64; 8], [f64; 4], (f64, f64));

/// `count` resamples drawn from `draws`, with what the metrics need; roc_auc's multiplicity
/// walks only when `with_auc`.
fn resample_tallies(
    prep: &Prepared,
    draws: &mut Draws,
    count: usize,
    with_auc: bool,
    mut out: impl FnMut(&Tallies),
) {
    let n = prep.n;
    let rankings = prep
        .rankings
        .as_ref()
        .filter(|_| with_auc && n <= resample::MAX_LANE_ROWS);
    match (rankings, &prep.cells, &prep.errors) {
        (Some([first, second]), Some(cells), _) => {
            let mut lanes: [Vec<u8>; GROUP] = std::array::from_fn(|_| vec![0u8; n]);
            let mut rows = vec![[0u8; GROUP]; n];
            let mut wide = vec![0u32; 0];
            let champion_order = second.order.as_deref().unwrap_or(&[]);
            let mut done = 0;
            while done < count {
                let group = (count - done).min(GROUP);
                // Lanes whose counts passed 255: recounted one at a time from where they began.
                let mut recount: Vec<(usize, Draws)> = Vec::new();
                for (l, counts) in lanes.iter_mut().enumerate() {
                    if l < group {
                        let start = draws.clone();
                        if !resample::count_narrow(draws, counts) {
                            recount.push((l, start));
                        }
                    } else {
                        counts.fill(0);
                    }
                }
                let mut tally = [[0u32; GROUP]; 8];
                let s1 =
                    resample::challenger_walk(&lanes, &mut rows, &first.flags, cells, &mut tally);
                let s2 = resample::champion_walk(&rows, champion_order, &second.flags);
                // A lane indexes the tallies, both walks' sums and the recount list.
                #[allow(clippy::needless_range_loop)]
                for l in 0..group {
                    if let Some((_, start)) = recount.iter_mut().find(|(x, _)| *x == l) {
                        wide.resize(n, 0);
                        resample::count_wide(start, &mut wide);
                        out(&prep.tallies(&wide));
                    } else {
                        let cells = std::array::from_fn(|c| f64::from(tally[c][l]));
                        out(&(cells, [0.0; 4], (s1.auc(l, n as f64), s2.auc(l, n as f64))));
                    }
                }
                done += group;
            }
        }
        _ if with_auc && prep.rankings.is_some() => {
            // Too many rows for byte-count walks: one resample at a time.
            let mut wide = vec![0u32; n];
            for _ in 0..count {
                resample::count_wide(draws, &mut wide);
                out(&prep.tallies(&wide));
            }
        }
        (_, Some(cells), _) => {
            for _ in 0..count {
                // Four interleaved tallies, so that consecutive draws of the same cell do not
                // wait on each other's store.
                let mut t4 = [[0u32; 8]; 4];
                draws.resample(n, |block| {
                    let mut quads = block.chunks_exact(4);
                    for q in &mut quads {
                        for (t, &i) in t4.iter_mut().zip(q) {
                            t[usize::from(cells[i as usize])] += 1;
                        }
                    }
                    for &i in quads.remainder() {
                        t4[0][usize::from(cells[i as usize])] += 1;
                    }
                });
                let tally = std::array::from_fn(|c| t4.iter().map(|t| f64::from(t[c])).sum());
                out(&(tally, [0.0; 4], (f64::NAN, f64::NAN)));
            }
        }
        (_, None, Some(errors)) => {
            for _ in 0..count {
                let mut sums = [0.0f64; 4];
                draws.resample(n, |block| {
                    for &i in block {
                        let e = &errors[i as usize];
                        for k in 0..4 {
                            sums[k] += e[k];
                        }
                    }
                });
                out(&([0.0; 8], sums, (f64::NAN, f64::NAN)));
            }
        }
        (_, None, None) => {}
    }
}

/// The resamples are cut into CHUNKS fixed chunks, each with its own random streams derived
/// from the seed; threads take whole chunks. Results depend only on the seed — never on the
/// number of cores or on scheduling.
const CHUNKS: usize = 8;

fn chunk_draws(seed: u64, chunk: usize) -> Draws {
    Draws::new(seed ^ (chunk as u64).wrapping_mul(0xA076_1D64_78BD_642F))
}

/// Paired bootstrap intervals of challenger − champion for each metric that predictions allow.
pub fn bootstrap(
    challenger: &Predictions,
    champion: &Predictions,
    metrics: &[String],
    confidence: f64,
    resamples: u32,
    seed: u64,
) -> Result<Vec<Interval>> {
    check_paired(challenger, champion)?;
    let prep = Prepared::new(challenger, champion);
    let wanted: Vec<&String> = metrics.iter().filter(|m| prep.supports(m)).collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let diffs = resample_diffs(&prep, &wanted, resamples as usize, seed);
    let alpha = (1.0 - confidence) / 2.0;
    let mut out = Vec::new();
    for (k, m) in wanted.iter().enumerate() {
        let (a, b) = prep.values(m);
        let mut d: Vec<f64> = diffs[k].iter().copied().filter(|x| x.is_finite()).collect();
        d.sort_by(f64::total_cmp);
        out.push(Interval {
            metric: (*m).clone(),
            observed: a - b,
            low: quantile(&d, alpha),
            high: quantile(&d, 1.0 - alpha),
            confidence,
            resamples,
        });
    }
    Ok(out)
}

/// diffs[metric][resample]: challenger − champion of each wanted metric on each resample.
fn resample_diffs(
    prep: &Prepared,
    wanted: &[&String],
    resamples: usize,
    seed: u64,
) -> Vec<Vec<f64>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, CHUNKS);
    let per = resamples.div_ceil(CHUNKS);
    let n = prep.n as f64;
    let with_auc = wanted.iter().any(|m| *m == "roc_auc");
    let run_chunk = |c: usize| -> Vec<Vec<f64>> {
        let mut draws = chunk_draws(seed, c);
        let count = ((c + 1) * per).min(resamples).saturating_sub(c * per);
        let mut local: Vec<Vec<f64>> = vec![Vec::with_capacity(count); wanted.len()];
        resample_tallies(prep, &mut draws, count, with_auc, |(tally, sums, aucs)| {
            for (k, m) in wanted.iter().enumerate() {
                let (a, b) = Prepared::values_from_tallies(m, tally, sums, n, *aucs);
                local[k].push(a - b);
            }
        });
        local
    };
    let mut chunks: Vec<Option<Vec<Vec<f64>>>> = vec![None; CHUNKS];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let run_chunk = &run_chunk;
                scope.spawn(move || {
                    (t..CHUNKS)
                        .step_by(threads)
                        .map(|c| (c, run_chunk(c)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            if let Ok(done) = h.join() {
                for (c, local) in done {
                    chunks[c] = Some(local);
                }
            }
        }
    });
    let mut diffs: Vec<Vec<f64>> = vec![Vec::with_capacity(resamples); wanted.len()];
    for (c, local) in chunks.into_iter().enumerate() {
        // A chunk whose thread panicked is computed here (and panics here too).
        let local = local.unwrap_or_else(|| run_chunk(c));
        for (k, v) in local.into_iter().enumerate() {
            diffs[k].extend(v);
        }
    }
    diffs
}

/// Linear-interpolated quantile of sorted data (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// McNemar's exact test on the discordant rows (classifiers only).
pub fn mcnemar(challenger: &Predictions, champion: &Predictions) -> Result<Option<McNemar>> {
    check_paired(challenger, champion)?;
    if !(is_classification(challenger) && is_classification(champion)) {
        return Ok(None);
    }
    let (mut b, mut c) = (0u64, 0u64);
    for i in 0..challenger.y_true.len() {
        let chal_right = challenger.y_pred[i] == challenger.y_true[i];
        let champ_right = champion.y_pred[i] == champion.y_true[i];
        match (chal_right, champ_right) {
            (true, false) => b += 1,
            (false, true) => c += 1,
            _ => {}
        }
    }
    Ok(Some(McNemar {
        challenger_only: b,
        champion_only: c,
        p_value: binomial_two_sided(b.min(c), b + c),
    }))
}

/// P(X ≤ k or X ≥ n−k) for X ~ Binomial(n, ½), computed in log space (n can be large).
pub fn binomial_two_sided(k: u64, n: u64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let ln2 = std::f64::consts::LN_2;
    // log C(n, i) built incrementally; log-sum-exp of the lower tail.
    let mut log_c = 0.0f64;
    let mut terms = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        if i > 0 {
            log_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        terms.push(log_c - n as f64 * ln2);
    }
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tail = max.exp() * terms.iter().map(|t| (t - max).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preds(y: &[f64], p: &[f64], s: Option<&[f64]>) -> Predictions {
        Predictions {
            y_true: y.to_vec(),
            y_pred: p.to_vec(),
            score: s.map(|s| s.to_vec()),
        }
    }

    #[test]
    fn binomial_matches_known_values() {
        // scipy.stats.binomtest(1, 10, 0.5).pvalue == 0.021484375
        assert!((binomial_two_sided(1, 10) - 0.021484375).abs() < 1e-15);
        assert!((binomial_two_sided(5, 10) - 1.0).abs() < 1e-15);
        assert_eq!(binomial_two_sided(0, 0), 1.0);
        // binomtest(0, 20).pvalue == 2 * 0.5**20
        assert!((binomial_two_sided(0, 20) - 2.0 * 0.5f64.powi(20)).abs() < 1e-18);
    }

    #[test]
    fn auc_with_ties() {
        let auc = |y: &[f64], s: &[f64]| metric_on(&preds(y, y, Some(s)), "roc_auc").unwrap();
        // sklearn.metrics.roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.75
        let y = [0.0, 0.0, 1.0, 1.0];
        assert!((auc(&y, &[0.1, 0.4, 0.35, 0.8]) - 0.75).abs() < 1e-12);
        assert!((auc(&y, &[0.5, 0.5, 0.5, 0.5]) - 0.5).abs() < 1e-12);
        // A tie across the classes counts half, and -0.0 ties with 0.0:
        // roc_auc_score([0,1,0,1],[0.0,-0.0,0.2,0.9]) == 0.625
        assert!((auc(&[0.0, 1.0, 0.0, 1.0], &[0.0, -0.0, 0.2, 0.9]) - 0.625).abs() < 1e-12);
        // Multiplicities are rows repeated: the negative at 0.4 twice, the positive at 0.35
        // left out: every pair is won.
        assert_eq!(auc(&[0.0, 0.0, 0.0, 1.0], &[0.1, 0.4, 0.4, 0.8]), 1.0);
    }

    /// Mann–Whitney AUC the direct way: sort, average ranks over ties, rank sum.
    fn direct_auc(scores: &[f64], y: &[f64]) -> f64 {
        let mut idx: Vec<usize> = (0..scores.len()).collect();
        idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        let mut ranks = vec![0.0; scores.len()];
        let mut k = 0;
        while k < idx.len() {
            let mut end = k + 1;
            while end < idx.len() && scores[idx[end]] == scores[idx[k]] {
                end += 1;
            }
            for &i in &idx[k..end] {
                ranks[i] = (k + end + 1) as f64 / 2.0;
            }
            k = end;
        }
        let p = y.iter().filter(|v| **v == 1.0).count() as f64;
        let n = y.len() as f64 - p;
        let rank_sum: f64 = (0..y.len())
            .filter(|&i| y[i] == 1.0)
            .map(|i| ranks[i])
            .sum();
        (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
    }

    /// Predictions with many tied scores, both classes, n rows.
    fn tied_pair(n: usize) -> (Predictions, Predictions) {
        let y: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i % 3 == 0))).collect();
        let s1: Vec<f64> = (0..n)
            .map(|i| ((y[i] * 0.3 + ((i * 7919) % 101) as f64 / 150.0) * 20.0).round() / 20.0)
            .collect();
        let s2: Vec<f64> = (0..n)
            .map(|i| ((y[i] * 0.2 + ((i * 104_729) % 97) as f64 / 120.0) * 50.0).round() / 50.0)
            .collect();
        let p1 = s1
            .iter()
            .map(|s| f64::from(u8::from(*s >= 0.5)))
            .collect::<Vec<_>>();
        let p2 = s2
            .iter()
            .map(|s| f64::from(u8::from(*s >= 0.5)))
            .collect::<Vec<_>>();
        (preds(&y, &p1, Some(&s1)), preds(&y, &p2, Some(&s2)))
    }

    #[test]
    fn each_resample_auc_equals_a_direct_auc_of_the_same_rows() {
        // 37 resamples: the last group of eight lanes is partial. The rows each resample drew
        // are replayed from the same seed, and both AUCs and f1 recomputed from those rows by
        // sorting them.
        let n = 1_013;
        let (a, b) = tied_pair(n);
        let prep = Prepared::new(&a, &b);
        let (auc, f1) = ("roc_auc".to_string(), "f1".to_string());
        let r = 37;
        let diffs = resample_diffs(&prep, &[&auc, &f1], r, 5);
        let positive: Vec<bool> = a.y_true.iter().map(|v| *v == 1.0).collect();
        let row_of_label = resample::rank_rows(a.score.as_ref().unwrap(), &positive).0;
        let per = r.div_ceil(CHUNKS);
        let mut checked = 0;
        for c in 0..CHUNKS {
            let mut draws = chunk_draws(5, c);
            #[allow(clippy::needless_range_loop)] // k indexes both metrics' diffs
            for k in c * per..((c + 1) * per).min(r) {
                let mut rows = Vec::new();
                draws.resample(n, |block| {
                    rows.extend(block.iter().map(|&l| row_of_label[l as usize] as usize))
                });
                let pick = |v: &[f64]| rows.iter().map(|&i| v[i]).collect::<Vec<f64>>();
                let y = pick(&a.y_true);
                let direct = direct_auc(&pick(a.score.as_ref().unwrap()), &y)
                    - direct_auc(&pick(b.score.as_ref().unwrap()), &y);
                assert!(
                    (diffs[0][k] - direct).abs() < 1e-12,
                    "resample {k}: ours {} direct {direct}",
                    diffs[0][k]
                );
                let f1_of = |p: &[f64]| {
                    let tp = (0..n).filter(|&i| y[i] == 1.0 && p[i] == 1.0).count() as f64;
                    let wrong = (0..n).filter(|&i| y[i] != p[i]).count() as f64;
                    2.0 * tp / (2.0 * tp + wrong)
                };
                let f1_direct = f1_of(&pick(&a.y_pred)) - f1_of(&pick(&b.y_pred));
                assert!((diffs[1][k] - f1_direct).abs() < 1e-12, "resample {k} f1");
                checked += 1;
            }
        }
        assert_eq!(checked, r);
    }

    #[test]
    fn the_wide_recount_gives_what_the_byte_counts_give() {
        // A count past 255 is recounted from the resample's first draw with 32-bit counts:
        // the same draws, the same tallies.
        let n = 777;
        let (a, b) = tied_pair(n);
        let prep = Prepared::new(&a, &b);
        let mut draws = chunk_draws(9, 0);
        let mut narrow = vec![0u8; n];
        let mut wide = vec![0u32; n];
        let mut replay = draws.clone();
        assert!(resample::count_narrow(&mut draws, &mut narrow));
        resample::count_wide(&mut replay, &mut wide);
        assert!(narrow.iter().zip(&wide).all(|(x, y)| u32::from(*x) == *y));
        let mut from_lanes = Vec::new();
        resample_tallies(&prep, &mut chunk_draws(9, 0), 1, true, |t| {
            from_lanes.push(*t)
        });
        let (tally, _, aucs) = prep.tallies(&wide);
        assert_eq!(from_lanes[0].0, tally);
        assert!((from_lanes[0].2 .0 - aucs.0).abs() < 1e-15);
        assert!((from_lanes[0].2 .1 - aucs.1).abs() < 1e-15);
    }

    #[test]
    fn bootstrap_is_reproducible_and_brackets_the_observed_difference() {
        let n = 400;
        let y: Vec<f64> = (0..n).map(|i| (i % 2) as f64).collect();
        let better: Vec<f64> = (0..n)
            .map(|i| if i % 10 == 0 { 1.0 - y[i] } else { y[i] })
            .collect();
        let worse: Vec<f64> = (0..n)
            .map(|i| if i % 4 == 0 { 1.0 - y[i] } else { y[i] })
            .collect();
        let a = preds(&y, &better, None);
        let b = preds(&y, &worse, None);
        let m = vec![
            "accuracy".to_string(),
            "f1".to_string(),
            "roc_auc".to_string(),
        ];
        let r1 = bootstrap(&a, &b, &m, 0.95, 500, 7).unwrap();
        let r2 = bootstrap(&a, &b, &m, 0.95, 500, 7).unwrap();
        assert_eq!(r1, r2);
        assert_eq!(r1.len(), 2, "no scores: roc_auc is skipped");
        let acc = &r1[0];
        assert!((acc.observed - 0.15).abs() < 1e-12);
        assert!(acc.low < acc.observed && acc.observed < acc.high);
        assert!(acc.low > 0.0, "a 15-point gain on 400 rows is significant");
        let mc = mcnemar(&a, &b).unwrap().unwrap();
        // Rows 0,20,40..: both wrong; rows 4,8,12,16 (mod 20, not mod 10): only the champion is
        // wrong; rows 10,30,..: only the challenger is wrong.
        assert_eq!((mc.challenger_only, mc.champion_only), (80, 20));
        assert!(mc.p_value < 1e-8);
    }

    #[test]
    fn the_same_rows_are_drawn_whatever_else_is_computed() {
        // The fast tally path (classification metrics only) and the general one (roc_auc
        // needs per-row counts) must draw the same rows: adding a metric never moves another
        // metric's interval. Odd n exercises the unpaired last draw.
        let n = 301;
        let y: Vec<f64> = (0..n).map(|i| (i % 2) as f64).collect();
        let p1: Vec<f64> = (0..n)
            .map(|i| if i % 7 == 0 { 1.0 - y[i] } else { y[i] })
            .collect();
        let p2: Vec<f64> = (0..n)
            .map(|i| if i % 5 == 0 { 1.0 - y[i] } else { y[i] })
            .collect();
        let s1: Vec<f64> = (0..n)
            .map(|i| (p1[i] * 0.8 + (i % 10) as f64 * 0.01).min(1.0))
            .collect();
        let s2: Vec<f64> = (0..n)
            .map(|i| (p2[i] * 0.7 + (i % 13) as f64 * 0.01).min(1.0))
            .collect();
        let a = preds(&y, &p1, Some(&s1));
        let b = preds(&y, &p2, Some(&s2));
        let only = bootstrap(&a, &b, &["f1".to_string()], 0.9, 333, 11).unwrap();
        let with_auc = bootstrap(
            &a,
            &b,
            &["f1".to_string(), "roc_auc".to_string()],
            0.9,
            333,
            11,
        )
        .unwrap();
        assert_eq!(with_auc.len(), 2);
        assert_eq!(only[0], with_auc[0]);
    }

    #[test]
    fn unpaired_predictions_are_rejected() {
        let a = preds(&[0.0, 1.0], &[0.0, 1.0], None);
        let b = preds(&[0.0, 1.0, 1.0], &[0.0, 1.0, 1.0], None);
        assert!(check_paired(&a, &b)
            .unwrap_err()
            .to_string()
            .contains("2 predictions"));
        let c = preds(&[1.0, 1.0], &[0.0, 1.0], None);
        assert!(check_paired(&a, &c)
            .unwrap_err()
            .to_string()
            .contains("row 1"));
    }
}

/// Agreement with the independent numpy/scipy computation of scripts/compare_reference.py.
///
/// McNemar is exact, so it must agree to 1e-12. A bootstrap bound is a Monte Carlo estimate: the
/// standard error of a percentile estimated from R resamples is about
/// sqrt(q(1−q)/R) / f(x_q); with a near-normal bootstrap distribution of standard deviation sd,
/// f(x_q) = φ(z_q)/sd. The test allows 4 combined standard errors (ours and the reference's).
#[cfg(test)]
mod reference {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/compare")
            .join(name)
    }

    fn quantile_se(sd: f64, q: f64, r: f64) -> f64 {
        let z = 1.959963984540054; // for q = 0.025 / 0.975
        let phi = (-z * z / 2.0f64).exp() / (2.0 * std::f64::consts::PI).sqrt();
        (q * (1.0 - q) / r).sqrt() * sd / phi
    }

    #[test]
    fn agrees_with_numpy_and_scipy() {
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap())
                .unwrap();
        let ours_r = 20_000u32;
        for (kind, prefix) in [("classification", "class"), ("regression", "reg")] {
            let chal = read_predictions(&fixture(&format!("{prefix}_challenger.csv"))).unwrap();
            let champ = read_predictions(&fixture(&format!("{prefix}_champion.csv"))).unwrap();
            let metrics: Vec<String> = expected[kind]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            let got = bootstrap(&chal, &champ, &metrics, 0.95, ours_r, 11).unwrap();
            assert_eq!(got.len(), metrics.len());
            for i in got {
                let e = &expected[kind][&i.metric];
                let sd = e["sd"].as_f64().unwrap();
                let ref_r = e["resamples"].as_f64().unwrap();
                assert!(
                    (i.observed - e["observed"].as_f64().unwrap()).abs() < 1e-12,
                    "{} observed",
                    i.metric
                );
                let tol = 4.0
                    * (quantile_se(sd, 0.025, ours_r as f64).powi(2)
                        + quantile_se(sd, 0.025, ref_r).powi(2))
                    .sqrt();
                for (bound, ours) in [("low", i.low), ("high", i.high)] {
                    let theirs = e[bound].as_f64().unwrap();
                    assert!(
                        (ours - theirs).abs() < tol,
                        "{} {bound}: ours {ours} numpy {theirs} tolerance {tol}",
                        i.metric
                    );
                }
            }
        }
        let chal = read_predictions(&fixture("class_challenger.csv")).unwrap();
        let champ = read_predictions(&fixture("class_champion.csv")).unwrap();
        let m = mcnemar(&chal, &champ).unwrap().unwrap();
        let e = &expected["mcnemar"];
        assert_eq!(m.challenger_only, e["challenger_only"].as_u64().unwrap());
        assert_eq!(m.champion_only, e["champion_only"].as_u64().unwrap());
        let p = e["p_value"].as_f64().unwrap();
        assert!(
            (m.p_value - p).abs() <= 1e-12 * p.max(1e-300),
            "McNemar p {} vs scipy {p}",
            m.p_value
        );
    }
}
