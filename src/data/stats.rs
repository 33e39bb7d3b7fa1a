//! Two-sample hypothesis tests whose results match scipy 1.10:
//!
//! - [`ks_2samp`]: two-sided Kolmogorov–Smirnov, `method="auto"` — the exact distribution of
//!   the statistic when both samples have at most 10,000 values (lattice-path counting, Hodges /
//!   Viehmann), otherwise the one-sample Kolmogorov distribution at `n = round(n1·n2/(n1+n2))`
//!   (Simard & L'Ecuyer's choice among Durbin's matrix, Pomeranz, Pelz–Good and Smirnov's sum).
//! - [`chi2_homogeneity`]: `scipy.stats.chi2_contingency` on a 2×k table of category counts
//!   (Yates' correction when there is one degree of freedom).
//!
//! `scripts/stats_reference.py` computes the reference values in `stats/reference.json` with
//! scipy; `stats/tests.rs` asserts agreement to 1e-9 relative. Algorithms follow the published
//! papers the scipy code cites; the one-sided Smirnov tail is summed in log space rather than
//! in double-double arithmetic (same terms, same truncation rule).

mod kolmogorov;
mod ks_buckets;
mod sort;

use std::f64::consts::PI;

pub use kolmogorov::{kolmogn_sf, smirnov_sf};
pub use sort::sort_f64;

/// A test's statistic and, for hypothesis tests, its p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestOutcome {
    pub statistic: f64,
    pub p_value: Option<f64>,
}

/// Samples at most this large (both of them) get the exact p-value, as in scipy.
pub const KS_MAX_EXACT_N: usize = 10_000;

/// Two-sample, two-sided Kolmogorov–Smirnov test. NaN values are ignored. Small samples are
/// sorted and walked once; large ones are counted in buckets on two threads, and only the
/// few stretches that can hold an extreme are sorted (see `stats/ks_buckets.rs`).
pub fn ks_2samp(a: &[f64], b: &[f64]) -> TestOutcome {
    if a.len() + b.len() >= KS_BUCKETED {
        let (n1, n2, walk) = ks_buckets::extremes(a, b);
        return ks_outcome(n1, n2, || walk.map_or(0.0, |w| w.statistic()));
    }
    let (ka, kb) = (sort::sorted_value_keys(a), sort::sorted_value_keys(b));
    // Keys compare as their values do (-0.0 is keyed as +0.0, NaN is gone).
    ks_outcome(ka.len(), kb.len(), || ks_statistic(&ka, &kb))
}

/// From this many values in all, [`ks_2samp`] counts in buckets instead of sorting.
const KS_BUCKETED: usize = 1 << 18;

/// The KS statistic both ways — counted in buckets, and walked over both samples sorted —
/// at any size (`ks_2samp` counts only from `KS_BUCKETED` values up), for the fuzz target
/// that holds them bit-for-bit equal. None when a sample has no value that is not NaN.
#[doc(hidden)]
pub fn ks_statistic_both_ways(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    let (_, _, walk) = ks_buckets::extremes(a, b);
    let (ka, kb) = (sort::sorted_value_keys(a), sort::sorted_value_keys(b));
    Some((walk?.statistic(), ks_statistic(&ka, &kb)))
}

/// [`ks_2samp`] on samples already sorted ascending and free of NaN. An empty sample gives
/// statistic 0 and no p-value (there is nothing to test).
pub fn ks_2samp_sorted(a: &[f64], b: &[f64]) -> TestOutcome {
    ks_outcome(a.len(), b.len(), || ks_statistic(a, b))
}

fn ks_outcome(n1: usize, n2: usize, statistic: impl FnOnce() -> f64) -> TestOutcome {
    if n1 == 0 || n2 == 0 {
        return TestOutcome {
            statistic: 0.0,
            p_value: None,
        };
    }
    let mut d = statistic();
    let mut p = None;
    if n1.max(n2) <= KS_MAX_EXACT_N {
        let g = gcd(n1 as u64, n2 as u64);
        let lcm = (n1 as u64 / g) * n2 as u64;
        let h = (d * lcm as f64).round_ties_even() as u64;
        d = h as f64 / lcm as f64;
        let prob = if h == 0 {
            1.0
        } else if n1 == n2 {
            prob_outside_square(n1 as i64, h as i64)
        } else {
            outer_prob_inside(n1 as i64, n2 as i64, g as i64, h as i64)
        };
        if (0.0..=1.0).contains(&prob) {
            p = Some(prob);
        }
    }
    let p = p.unwrap_or_else(|| {
        let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
        let en = (m * n / (m + n)).round_ties_even();
        kolmogn_sf(en as u64, d)
    });
    TestOutcome {
        statistic: d,
        p_value: Some(p.clamp(0.0, 1.0)),
    }
}

/// max |F1 − F2| over the pooled values, evaluated after all ties (searchsorted side=right),
/// on two non-empty sorted samples. Differences are compared exactly, in units of
/// 1/(n1·n2); the value reported is scipy's float i/n1 − j/n2 at the extreme. Large samples
/// are cut at a value of `a` and the halves walked on two threads.
fn ks_statistic<T: Copy + PartialOrd + Sync>(a: &[T], b: &[T]) -> f64 {
    let (n1, n2) = (a.len(), b.len());
    let walk = |i0: usize, j0: usize, a: &[T], b: &[T]| {
        let mut w = Walk::new(n1, n2, i0, j0);
        w.run(a, b);
        w
    };
    let w = if n1 + n2 > 1 << 20 {
        // Everything below a[n1/2] goes to the first half: no run of ties is cut.
        let v = a[n1 / 2];
        let i0 = a.partition_point(|x| *x < v);
        let j0 = b.partition_point(|y| *y < v);
        let (first, second) = std::thread::scope(|s| {
            let first = s.spawn(|| walk(0, 0, &a[..i0], &b[..j0]));
            let second = walk(i0, j0, &a[i0..], &b[j0..]);
            let first = first
                .join()
                .unwrap_or_else(|_| walk(0, 0, &a[..i0], &b[..j0]));
            (first, second)
        });
        first.merge(second)
    } else {
        walk(0, 0, a, b)
    };
    w.statistic()
}

/// A walk over sorted runs of both samples starting at ranks (i0, j0): the largest and
/// smallest n1·n2·(F1 − F2) seen, each with the largest / smallest float F1 − F2 among the
/// points where it is reached (the exact difference finds the extreme without rounding; the
/// float is the value scipy reports).
struct Walk {
    n1: f64,
    n2: f64,
    up: i128,
    down: i128,
    i: usize,
    j: usize,
    d: i128,
    max: (i128, f64),
    min: (i128, f64),
}

impl Walk {
    fn new(n1: usize, n2: usize, i0: usize, j0: usize) -> Walk {
        let d = i0 as i128 * n2 as i128 - j0 as i128 * n1 as i128;
        Walk {
            n1: n1 as f64,
            n2: n2 as f64,
            up: n2 as i128,
            down: n1 as i128,
            i: i0,
            j: j0,
            d,
            // Both CDFs end at 1, where the difference is exactly 0.
            max: (0, 0.0),
            min: (0, 0.0),
        }
    }

    /// Records the current point as a CDF value.
    #[inline]
    fn point(&mut self) {
        // Rarely taken: new extremes of a random walk are few.
        if self.d >= self.max.0 || self.d <= self.min.0 {
            let f = self.i as f64 / self.n1 - self.j as f64 / self.n2;
            if self.d > self.max.0 {
                self.max = (self.d, f);
            } else if self.d == self.max.0 {
                self.max.1 = self.max.1.max(f);
            }
            if self.d < self.min.0 {
                self.min = (self.d, f);
            } else if self.d == self.min.0 {
                self.min.1 = self.min.1.min(f);
            }
        }
    }

    /// One element per step without data-dependent branches (the samples interleave at
    /// random, so branches would mispredict half the time).
    fn run<T: Copy + PartialOrd>(&mut self, a: &[T], b: &[T]) {
        let (mut i, mut j) = (0usize, 0usize);
        let (i0, j0) = (self.i, self.j);
        let mut last = None;
        while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
            let (take_a, take_b) = (x <= y, y <= x);
            let v = if take_a { x } else { y };
            i += usize::from(take_a);
            j += usize::from(take_b);
            self.d += i128::from(take_a) * self.up - i128::from(take_b) * self.down;
            // Only after the last of a run of equal values is the difference a CDF value.
            let tied = a.get(i) == Some(&v) || b.get(j) == Some(&v);
            if !tied {
                (self.i, self.j) = (i0 + i, j0 + j);
                self.point();
            }
            last = Some(v);
        }
        // One run is used up: the rest of the other moves d one way, so its extremes are the
        // point after the values tied with the last one, and the end.
        if let Some(v) = last {
            while a.get(i) == Some(&v) {
                i += 1;
                self.d += self.up;
            }
            while b.get(j) == Some(&v) {
                j += 1;
                self.d -= self.down;
            }
            (self.i, self.j) = (i0 + i, j0 + j);
            self.point();
        }
        self.d += (a.len() - i) as i128 * self.up - (b.len() - j) as i128 * self.down;
        (self.i, self.j) = (i0 + a.len(), j0 + b.len());
        self.point();
    }

    /// The statistic scipy reports: the float difference at the larger extreme.
    fn statistic(&self) -> f64 {
        let min_s = (-self.min.1).clamp(0.0, 1.0);
        if min_s > self.max.1 {
            min_s
        } else {
            self.max.1
        }
    }

    /// The extremes of this walk and of the one that continues it.
    fn merge(self, next: Walk) -> Walk {
        let pick = |a: (i128, f64), b: (i128, f64), larger: bool| {
            if a.0 == b.0 {
                (a.0, if larger { a.1.max(b.1) } else { a.1.min(b.1) })
            } else if (a.0 > b.0) == larger {
                a
            } else {
                b
            }
        };
        Walk {
            max: pick(self.max, next.max, true),
            min: pick(self.min, next.min, false),
            ..next
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// P(D_{n,n} ≥ h/n): alternating binomial sum evaluated Horner-style to avoid cancellation.
fn prob_outside_square(n: i64, h: i64) -> f64 {
    let mut p = 0.0;
    let mut k = n / h;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// Share of lattice paths from (0,0) to (m,n) that leave the band |x/m − y/n| < h/lcm,
/// computed column by column over a sliding window (Viehmann's recursion for 1 − p).
fn outer_prob_inside(m: i64, n: i64, g: i64, h: i64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (mg, ng) = (m / g, n / g);
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mg as f64).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for x in &mut a[minj as usize..(maxj as usize).min(len_a)] {
        *x = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = ((((ng * i - h) as f64 / mg as f64).floor() as i64) + 1).max(0);
        minj = minj.min(n);
        maxj = (((ng * i + h) as f64 / mg as f64).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            val = (a[(jj + minj - lastminj) as usize] * i as f64 + val * j as f64) / (i + j) as f64;
            a[jj as usize] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let start = (maxj - minj) as usize;
            let end = (start + (lastlen - curlen) as usize).min(len_a);
            for x in &mut a[start.min(len_a)..end] {
                *x = 1.0;
            }
        }
    }
    a[(maxj - minj - 1) as usize]
}

/// Chi-squared test of homogeneity of two samples' category counts (`a[i]`, `b[i]` count
/// category i): `scipy.stats.chi2_contingency` on the 2×k table. Categories neither sample
/// has are dropped; categories only one side has count. Yates' correction applies at one
/// degree of freedom. Fewer than two categories, or an empty side, gives statistic 0, p 1.
pub fn chi2_homogeneity(a: &[u64], b: &[u64]) -> TestOutcome {
    assert_eq!(a.len(), b.len(), "both samples count the same categories");
    let cols: Vec<(u64, u64)> = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x, y))
        .filter(|(x, y)| x + y > 0)
        .collect();
    let ra: u64 = cols.iter().map(|c| c.0).sum();
    let rb: u64 = cols.iter().map(|c| c.1).sum();
    if cols.len() < 2 || ra == 0 || rb == 0 {
        return TestOutcome {
            statistic: 0.0,
            p_value: Some(1.0),
        };
    }
    let total = (ra + rb) as f64;
    let dof = cols.len() - 1;
    let mut statistic = 0.0;
    for (row, rsum) in [(0, ra), (1, rb)] {
        for &(x, y) in &cols {
            let observed = if row == 0 { x } else { y } as f64;
            let expected = (rsum as u128 * (x + y) as u128) as f64 / total;
            let mut o = observed;
            if dof == 1 {
                let diff = expected - o;
                o += diff.abs().min(0.5) * diff.signum() * f64::from(u8::from(diff != 0.0));
            }
            statistic += (o - expected) * (o - expected) / expected;
        }
    }
    TestOutcome {
        statistic,
        p_value: Some(chi2_sf(statistic, dof as f64)),
    }
}

/// Survival function of the chi-squared distribution with `dof` degrees of freedom.
pub fn chi2_sf(x: f64, dof: f64) -> f64 {
    if x.is_nan() || dof <= 0.0 {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    gamma_q(dof / 2.0, x / 2.0)
}

/// Regularised upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    if x < a + 1.0 {
        1.0 - gamma_p_series(a, x)
    } else {
        gamma_q_continued_fraction(a, x)
    }
}

fn gamma_p_series(a: f64, x: f64) -> f64 {
    let mut ap = a;
    let mut del = 1.0 / a;
    let mut sum = del;
    for _ in 0..100_000 {
        ap += 1.0;
        del *= x / ap;
        sum += del;
        if del.abs() < sum.abs() * f64::EPSILON / 4.0 {
            break;
        }
    }
    (sum.ln() + a * x.ln() - x - ln_gamma(a)).exp()
}

fn gamma_q_continued_fraction(a: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..100_000 {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < f64::EPSILON / 4.0 {
            break;
        }
    }
    (h.ln() + a * x.ln() - x - ln_gamma(a)).exp()
}

/// log Γ(a) for a > 0: Stirling's series after shifting the argument to at least 15.
pub fn ln_gamma(a: f64) -> f64 {
    let mut z = a;
    let mut prod = 1.0;
    while z < 15.0 {
        prod *= z;
        z += 1.0;
    }
    let r = 1.0 / z;
    let r2 = r * r;
    let series = r
        * (1.0 / 12.0
            - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 * (1.0 / 1680.0 - r2 / 1188.0))));
    (z - 0.5) * z.ln() - z + 0.5 * (2.0 * PI).ln() + series - prod.ln()
}

#[cfg(test)]
mod tests;
