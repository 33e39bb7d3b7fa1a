//! Is the challenger's improvement more than noise? Paired on the same test rows:
//!
//! - a paired bootstrap: resample the rows with replacement (the same rows for both models),
//!   recompute each metric for both, and take percentile bounds of the difference
//!   challenger − champion at the configured confidence; seeded, so reports reproduce;
//! - McNemar's exact test for classifiers: of the rows exactly one model gets right, is the split
//!   more lopsided than a fair coin would make it (two-sided binomial test)?
//!
//! Rows are drawn with a small xoshiro256++ generator and Lemire's multiply-shift bound, and the
//! resamples are split across threads: 10,000 resamples of 100,000 rows is 10⁹ draws.
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

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

/// xoshiro256++, seeded through splitmix64.
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Two draws uniform in 0..n from one output, its high and low halves (Lemire's
    /// multiply-shift; the bias is below 2⁻³² for n < 2³²; xoshiro256++ has no weak low bits).
    #[inline]
    fn two_below(&mut self, n: u32) -> (usize, usize) {
        let x = self.next_u64();
        let hi = ((x >> 32) * n as u64) >> 32;
        let lo = ((x & 0xFFFF_FFFF) * n as u64) >> 32;
        (hi as usize, lo as usize)
    }
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

/// The rows of one side in score order, each as `row << 2 | positive << 1 | last_of_its_tie`,
/// so that a resample's AUC is one walk over these codes and the resample's row counts.
fn rank_codes(scores: &[f64], y: &[f64]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_by(|a, b| scores[*a as usize].total_cmp(&scores[*b as usize]));
    (0..order.len())
        .map(|k| {
            let r = order[k] as usize;
            let last = order
                .get(k + 1)
                .is_none_or(|&next| scores[next as usize] != scores[r]);
            (order[k] << 2) | (u32::from(y[r] == 1.0) << 1) | u32::from(last)
        })
        .collect()
}

/// Weighted AUC (Mann–Whitney, ties counted half) with row multiplicities `w`, from the
/// codes of [`rank_codes`]. Integer sums: exact, and equal to the pairwise count.
fn weighted_auc(codes: &[u32], w: &[u32]) -> f64 {
    let (mut twice_sum, mut neg_below, mut pos_total) = (0u64, 0u64, 0u64);
    let (mut pos_run, mut neg_run) = (0u64, 0u64);
    for &code in codes {
        let c = u64::from(w[(code >> 2) as usize]);
        let positive = u64::from((code >> 1) & 1);
        pos_run += c * positive;
        neg_run += c * (1 - positive);
        if code & 1 == 1 {
            twice_sum += pos_run * (2 * neg_below + neg_run);
            neg_below += neg_run;
            pos_total += pos_run;
            pos_run = 0;
            neg_run = 0;
        }
    }
    if pos_total == 0 || neg_below == 0 {
        f64::NAN
    } else {
        (twice_sum as f64 * 0.5) / (pos_total as f64 * neg_below as f64)
    }
}

/// Per-row data prepared once, so that a resample is a tally.
struct Prepared {
    n: usize,
    /// Classification: per row, y_true*4 + challenger_pred*2 + champion_pred.
    cells: Option<Vec<u8>>,
    /// Regression: per-row squared and absolute errors of each side.
    errors: Option<Vec<[f64; 4]>>,
    /// Each side's rows in score order (see [`rank_codes`]): sorted once, never per resample.
    scores: Option<[Vec<u32>; 2]>,
}

impl Prepared {
    fn new(chal: &Predictions, champ: &Predictions) -> Prepared {
        let n = chal.y_true.len();
        let classification = is_classification(chal) && is_classification(champ);
        let cells = classification.then(|| {
            (0..n)
                .map(|i| {
                    ((chal.y_true[i] as u8) << 2)
                        | ((chal.y_pred[i] as u8) << 1)
                        | champ.y_pred[i] as u8
                })
                .collect()
        });
        let errors = (!classification).then(|| {
            (0..n)
                .map(|i| {
                    let (a, b) = (
                        chal.y_pred[i] - chal.y_true[i],
                        champ.y_pred[i] - champ.y_true[i],
                    );
                    [a * a, b * b, a.abs(), b.abs()]
                })
                .collect()
        });
        let scores = match (&chal.score, &champ.score) {
            (Some(a), Some(b)) if classification => {
                Some([rank_codes(a, &chal.y_true), rank_codes(b, &champ.y_true)])
            }
            _ => None,
        };
        Prepared {
            n,
            cells,
            errors,
            scores,
        }
    }

    fn supports(&self, metric: &str) -> bool {
        match metric {
            "accuracy" | "precision" | "recall" | "f1" => self.cells.is_some(),
            "rmse" | "mae" => self.errors.is_some(),
            "roc_auc" => self.scores.is_some(),
            _ => false,
        }
    }

    /// (challenger, champion) values of `metric` from one resample's tallies: cell counts
    /// (classification), error sums (regression) and row multiplicities (roc_auc).
    fn values_from_tallies(
        &self,
        metric: &str,
        tally: &[f64; 8],
        sums: &[f64; 4],
        total: f64,
        counts: &[u32],
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
            _ => self.values(metric, Some(counts)),
        }
    }

    /// (challenger, champion) values of `metric` with row multiplicities `w` (None = all 1).
    fn values(&self, metric: &str, w: Option<&[u32]>) -> (f64, f64) {
        let weight = |i: usize| w.map_or(1.0, |w| w[i] as f64);
        match metric {
            "accuracy" | "precision" | "recall" | "f1" => {
                let mut tally = [0.0f64; 8];
                for (i, c) in self.cells.iter().flatten().enumerate() {
                    tally[*c as usize] += weight(i);
                }
                let c = confusion(&tally);
                (
                    class_metric(metric, c[0][0], c[0][1], c[0][2], c[0][3]),
                    class_metric(metric, c[1][0], c[1][1], c[1][2], c[1][3]),
                )
            }
            "rmse" | "mae" => {
                let mut sums = [0.0f64; 4];
                let mut total = 0.0;
                for (i, e) in self.errors.iter().flatten().enumerate() {
                    let wi = weight(i);
                    total += wi;
                    for k in 0..4 {
                        sums[k] += wi * e[k];
                    }
                }
                if metric == "rmse" {
                    ((sums[0] / total).sqrt(), (sums[1] / total).sqrt())
                } else {
                    (sums[2] / total, sums[3] / total)
                }
            }
            _ => {
                let ones;
                let w = match w {
                    Some(w) => w,
                    None => {
                        ones = vec![1u32; self.n];
                        &ones
                    }
                };
                match &self.scores {
                    Some([c1, c2]) => (weighted_auc(c1, w), weighted_auc(c2, w)),
                    None => (f64::NAN, f64::NAN),
                }
            }
        }
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
    Some(prep.values(metric, None).0).filter(|v| v.is_finite())
}

/// One resample: `n` draws with replacement from `rng`, tallied into what the metrics need —
/// confusion cells in `tally`, error sums in `sums`, and per-row draw counts in `counts` (for
/// roc_auc; empty when no metric needs them).
#[inline]
fn tally_draws(
    prep: &Prepared,
    rng: &mut Rng,
    tally: &mut [f64; 8],
    sums: &mut [f64; 4],
    counts: &mut [u32],
) {
    let n = prep.n;
    let need_counts = !counts.is_empty();
    match (&prep.cells, &prep.errors, need_counts) {
        (Some(cells), None, false) => {
            // The common case (classification without roc_auc): integer tallies in
            // four interleaved copies, so consecutive draws of the same cell do not
            // wait on each other's store.
            let mut t4 = [[0u32; 8]; 4];
            let mut left = n;
            while left >= 4 {
                let (a, b) = rng.two_below(n as u32);
                let (c, d) = rng.two_below(n as u32);
                t4[0][cells[a] as usize] += 1;
                t4[1][cells[b] as usize] += 1;
                t4[2][cells[c] as usize] += 1;
                t4[3][cells[d] as usize] += 1;
                left -= 4;
            }
            while left > 0 {
                let (a, b) = rng.two_below(n as u32);
                t4[0][cells[a] as usize] += 1;
                if left > 1 {
                    t4[1][cells[b] as usize] += 1;
                }
                left = left.saturating_sub(2);
            }
            for (k, x) in tally.iter_mut().enumerate() {
                *x = t4.iter().map(|t| t[k] as f64).sum();
            }
        }
        (Some(cells), None, true) => {
            // Classification with roc_auc: the same draws, tallied and counted per row.
            counts.fill(0);
            let mut t2 = [[0u32; 8]; 2];
            let mut left = n;
            while left >= 2 {
                let (a, b) = rng.two_below(n as u32);
                t2[0][cells[a] as usize] += 1;
                counts[a] += 1;
                t2[1][cells[b] as usize] += 1;
                counts[b] += 1;
                left -= 2;
            }
            if left == 1 {
                let (a, _) = rng.two_below(n as u32);
                t2[0][cells[a] as usize] += 1;
                counts[a] += 1;
            }
            for (k, x) in tally.iter_mut().enumerate() {
                *x = f64::from(t2[0][k] + t2[1][k]);
            }
        }
        _ => {
            counts.iter_mut().for_each(|c| *c = 0);
            let mut pair = (0, 0);
            for k in 0..n {
                // Draws come in pairs from one 64-bit output, as in the fast path.
                if k % 2 == 0 {
                    pair = rng.two_below(n as u32);
                }
                let i = if k % 2 == 0 { pair.0 } else { pair.1 };
                if let Some(cells) = &prep.cells {
                    tally[cells[i] as usize] += 1.0;
                }
                if let Some(errors) = &prep.errors {
                    let e = &errors[i];
                    sums[0] += e[0];
                    sums[1] += e[1];
                    sums[2] += e[2];
                    sums[3] += e[3];
                }
                if need_counts {
                    counts[i] += 1;
                }
            }
        }
    }
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
    // The resamples are cut into STREAMS fixed chunks, each with its own random stream derived
    // from the seed; threads take whole chunks. Results depend only on the seed — never on
    // the number of cores or on scheduling.
    const STREAMS: usize = 8;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, STREAMS);
    let per = (resamples as usize).div_ceil(STREAMS);
    let n = prep.n;
    let need_counts = wanted.iter().any(|m| *m == "roc_auc");
    let run_chunk = |c: usize| -> Vec<Vec<f64>> {
        let mut rng = Rng::new(seed ^ (c as u64).wrapping_mul(0xA076_1D64_78BD_642F));
        let start = c * per;
        let end = ((c + 1) * per).min(resamples as usize);
        let mut counts = vec![0u32; if need_counts { n } else { 0 }];
        let mut local: Vec<Vec<f64>> = vec![Vec::new(); wanted.len()];
        for _ in start..end {
            // One pass over the draws tallies everything the metrics need.
            let mut tally = [0.0f64; 8];
            let mut sums = [0.0f64; 4];
            tally_draws(&prep, &mut rng, &mut tally, &mut sums, &mut counts);
            for (k, m) in wanted.iter().enumerate() {
                let (a, b) = prep.values_from_tallies(m, &tally, &sums, n as f64, &counts);
                local[k].push(a - b);
            }
        }
        local
    };
    // diffs[metric][resample], chunks in order.
    let mut chunks: Vec<Option<Vec<Vec<f64>>>> = vec![None; STREAMS];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let run_chunk = &run_chunk;
                scope.spawn(move || {
                    (t..STREAMS)
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
    let mut diffs: Vec<Vec<f64>> = vec![Vec::with_capacity(resamples as usize); wanted.len()];
    for local in chunks.into_iter().flatten() {
        for (k, v) in local.into_iter().enumerate() {
            diffs[k].extend(v);
        }
    }
    let alpha = (1.0 - confidence) / 2.0;
    let mut out = Vec::new();
    for (k, m) in wanted.iter().enumerate() {
        let (a, b) = prep.values(m, None);
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
        // sklearn.metrics.roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.75
        let y = [0.0, 0.0, 1.0, 1.0];
        let s = [0.1f64, 0.4, 0.35, 0.8];
        assert!((weighted_auc(&rank_codes(&s, &y), &[1, 1, 1, 1]) - 0.75).abs() < 1e-12);
        let s = [0.5f64, 0.5, 0.5, 0.5];
        assert!((weighted_auc(&rank_codes(&s, &y), &[1, 1, 1, 1]) - 0.5).abs() < 1e-12);
        // Multiplicities: the second negative (0.4) twice, the first positive (0.35) dropped:
        // pairs (0.8 vs 0.1, 0.4, 0.4) all won, so 1.0; with 0.35 kept once instead of 0.8:
        // 0.35 beats 0.1 only, 1 of 3.
        let s = [0.1f64, 0.4, 0.35, 0.8];
        assert_eq!(weighted_auc(&rank_codes(&s, &y), &[1, 2, 0, 1]), 1.0);
        assert!((weighted_auc(&rank_codes(&s, &y), &[1, 2, 1, 0]) - 1.0 / 3.0).abs() < 1e-15);
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
