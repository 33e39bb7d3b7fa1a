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

use std::f64::consts::{LN_2, PI};

/// A test's statistic and, for hypothesis tests, its p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestOutcome {
    pub statistic: f64,
    pub p_value: Option<f64>,
}

/// Samples at most this large (both of them) get the exact p-value, as in scipy.
pub const KS_MAX_EXACT_N: usize = 10_000;

/// Two-sample, two-sided Kolmogorov–Smirnov test. NaN values are ignored. Sorts copies of
/// both samples (in parallel when they are large).
pub fn ks_2samp(a: &[f64], b: &[f64]) -> TestOutcome {
    let mut a: Vec<f64> = a.iter().copied().filter(|x| !x.is_nan()).collect();
    let mut b: Vec<f64> = b.iter().copied().filter(|x| !x.is_nan()).collect();
    if a.len() + b.len() > 1 << 16 {
        std::thread::scope(|s| {
            s.spawn(|| sort_f64(&mut a));
            sort_f64(&mut b);
        });
    } else {
        sort_f64(&mut a);
        sort_f64(&mut b);
    }
    ks_2samp_sorted(&a, &b)
}

/// [`ks_2samp`] on samples already sorted ascending and free of NaN. An empty sample gives
/// statistic 0 and no p-value (there is nothing to test).
pub fn ks_2samp_sorted(a: &[f64], b: &[f64]) -> TestOutcome {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return TestOutcome {
            statistic: 0.0,
            p_value: None,
        };
    }
    let mut d = ks_statistic(a, b);
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

/// max |F1 − F2| over the pooled values, evaluated after all ties (searchsorted side=right).
fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let (mut max, mut min) = (f64::NEG_INFINITY, f64::INFINITY);
    while i < a.len() || j < b.len() {
        let v = if j >= b.len() || (i < a.len() && a[i] <= b[j]) {
            a[i]
        } else {
            b[j]
        };
        if v.is_nan() {
            break;
        }
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        let diff = i as f64 / n1 - j as f64 / n2;
        max = max.max(diff);
        min = min.min(diff);
    }
    let min_s = (-min).clamp(0.0, 1.0);
    if min_s > max {
        min_s
    } else {
        max
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

const E128: i32 = 128;
const MIN_LOG: f64 = -708.0;

fn ep128() -> f64 {
    2f64.powi(E128)
}
fn em128() -> f64 {
    2f64.powi(-E128)
}

/// x · 2^e without intermediate overflow or underflow.
fn ldexp(mut x: f64, mut e: i64) -> f64 {
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e as i32)
}

/// Survival function of the two-sided one-sample Kolmogorov statistic D_n (scipy's
/// `kstwo.sf(x, n)`), choosing the method as Simard & L'Ecuyer (2011) do.
pub fn kolmogn_sf(n: u64, x: f64) -> f64 {
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben–Gambino: 1/2n <= x <= 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140 {
            let mut p = 1.0;
            for i in 1..=n {
                p *= i as f64 * (1.0 / nf) * (2.0 * t - 1.0);
            }
            p
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return (1.0 - prob).clamp(0.0, 1.0);
    }
    if t >= nf - 1.0 {
        return (2.0 * (1.0 - x).powf(nf)).clamp(0.0, 1.0);
    }
    if x >= 0.5 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754693 {
            return (1.0 - kolmogn_dmtw_cdf(n, x)).clamp(0.0, 1.0);
        }
        if nxsquared <= 4.0 {
            return (1.0 - kolmogn_pomeranz_cdf(n, x)).clamp(0.0, 1.0);
        }
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let cdf = if nxsquared >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        kolmogn_dmtw_cdf(n, x)
    } else {
        kolmogn_pelz_good_cdf(n, x)
    };
    (1.0 - cdf).clamp(0.0, 1.0)
}

/// log(n! / n^n) by Stirling's series with the n·log(n) removed up front.
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    // Stirling coefficients B_2j / (2j) / (2j - 1), j = 8 down to 1.
    const C: [f64; 8] = [
        -3617.0 / 122400.0,
        7.0 / 1092.0,
        -691.0 / 360360.0,
        1.0 / 1188.0,
        -1.0 / 1680.0,
        1.0 / 1260.0,
        -1.0 / 360.0,
        1.0 / 12.0,
    ];
    let rn = 1.0 / n;
    let x = rn / n;
    let poly = C.iter().fold(0.0, |acc, c| acc * x + c);
    n.ln() / 2.0 - n + (2.0 * PI).ln() / 2.0 + rn * poly
}

/// P(D_n <= d) by Durbin's matrix method as Marsaglia, Tsang & Wang (2003) compute it.
fn kolmogn_dmtw_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let nd = nf * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powf(j as f64)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powf(m as f64) - 2.0 * h.powf(m as f64);
    v[m - 1] = (1.0 + tt) * fac;
    let mut hm = Matrix::zeros(m);
    for i in 1..m {
        for r in (i - 1)..m {
            hm.set(r, i, w[r - (i - 1)]);
        }
    }
    for (r, &x) in v.iter().enumerate() {
        hm.set(r, 0, x);
    }
    for c in 0..m {
        hm.set(m - 1, c, v[m - 1 - c]);
    }
    let mut hpwr = Matrix::identity(m);
    let mut nn = n;
    let (mut expnt, mut hexpnt): (i64, i64) = (0, 0);
    while nn > 0 {
        if nn % 2 == 1 {
            hpwr = hpwr.mul(&hm);
            expnt += hexpnt;
        }
        hm = hm.mul(&hm);
        hexpnt *= 2;
        if hm.get(k - 1, k - 1).abs() > ep128() {
            hm.scale(em128());
            hexpnt += E128 as i64;
        }
        nn /= 2;
    }
    let mut p = hpwr.get(k - 1, k - 1);
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < em128() {
            p *= ep128();
            expnt -= E128 as i64;
        }
    }
    if expnt != 0 {
        p = ldexp(p, expnt);
    }
    p.clamp(0.0, 1.0)
}

struct Matrix {
    m: usize,
    a: Vec<f64>,
}

impl Matrix {
    fn zeros(m: usize) -> Self {
        Self {
            m,
            a: vec![0.0; m * m],
        }
    }
    fn identity(m: usize) -> Self {
        let mut x = Self::zeros(m);
        for i in 0..m {
            x.set(i, i, 1.0);
        }
        x
    }
    fn get(&self, r: usize, c: usize) -> f64 {
        self.a[r * self.m + c]
    }
    fn set(&mut self, r: usize, c: usize, v: f64) {
        self.a[r * self.m + c] = v;
    }
    fn scale(&mut self, s: f64) {
        self.a.iter_mut().for_each(|x| *x *= s);
    }
    fn mul(&self, o: &Matrix) -> Matrix {
        let m = self.m;
        let mut out = Matrix::zeros(m);
        for r in 0..m {
            for k in 0..m {
                let x = self.a[r * m + k];
                if x == 0.0 {
                    continue;
                }
                let row = &o.a[k * m..(k + 1) * m];
                let dst = &mut out.a[r * m..(r + 1) * m];
                for (d, y) in dst.iter_mut().zip(row) {
                    *d += x * y;
                }
            }
        }
        out
    }
}

fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let (ip1div2, ip1mod2) = ((i + 1) / 2, (i + 1) % 2);
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// P(D_n <= x) by Pomeranz's recursion (1974), for small n.
fn kolmogn_pomeranz_cdf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let n = n as i64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)) as usize;
    let mut gpower = vec![0.0; npwrs];
    let mut twogpower = vec![0.0; npwrs];
    let mut onem2gpower = vec![0.0; npwrs];
    gpower[0] = 1.0;
    twogpower[0] = 1.0;
    onem2gpower[0] = 1.0;
    let mut expnt: i64 = 0;
    let (g_over_n, two_g_over_n, one_minus_two_g_over_n) =
        (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..npwrs {
        gpower[m] = gpower[m - 1] * g_over_n / m as f64;
        twogpower[m] = twogpower[m - 1] * two_g_over_n / m as f64;
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / m as f64;
    }
    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s): (i64, i64) = (0, 0);
    let mut j1 = pomeranz_j1j2(0, n, ll, ceilf, roundf).0;
    for i in 1..(2 * n + 2) {
        let k1 = j1;
        let j2;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.iter_mut().for_each(|x| *x = 0.0);
        (j1, j2) = pomeranz_j1j2(i, n, ll, ceilf, roundf);
        let pwrs = if i == 1 || i == 2 * n + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            let start = (k1 - v0s).max(0) as usize;
            let a = &v0[start.min(npwrs)..(start + ln2 as usize).min(npwrs)];
            let b = &pwrs[..(ln2 as usize).min(npwrs)];
            let conv = convolve(a, b);
            let conv_start = (j1 - k1) as usize;
            let conv_len = (j2 - j1 + 1).max(0) as usize;
            for (dst, src) in v1
                .iter_mut()
                .zip(conv.iter().skip(conv_start).take(conv_len))
            {
                *dst = *src;
            }
            let max = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < max && max < em128() {
                v1.iter_mut().for_each(|x| *x *= ep128());
                expnt -= E128 as i64;
            }
            v1s = v0s + j1 - k1;
        }
    }
    let mut ans = v1[(n - v1s) as usize];
    for m in 1..=n {
        if ans.abs() > ep128() {
            ans *= em128();
            expnt += E128 as i64;
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans = ldexp(ans, expnt);
    }
    ans.clamp(0.0, 1.0)
}

fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

/// P(D_n <= x) by Pelz & Good's (1976) expansion, for large n.
fn kolmogn_pelz_good_cdf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let (zsquared, zthree, zfour, zsix) = (z * z, z.powf(3.0), z.powf(4.0), z.powf(6.0));
    let (pi2, pi4, pi6) = (PI * PI, PI.powf(4.0), PI.powf(6.0));
    let sqrt2pi = (2.0 * PI).sqrt();
    let qlog = -pi2 / 8.0 / zsquared;
    if qlog < MIN_LOG {
        return 0.0;
    }
    let q = qlog.exp();
    let k1a = -zsquared;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * zsix + 2.0 * zfour;
    let k2b = (2.0 * zfour - 5.0 * zsquared) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * zsquared) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * zsquared) / 64.0;
    let k3c = pi4 * (-60.0 * zsquared + 212.0 * zfour) / 16.0;
    let k3b = pi2 * (135.0 * zfour - 96.0 * zsix) / 4.0;
    let k3a = -30.0 * zsix - 90.0 * z.powf(8.0);
    let mut k = [0.0f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for kk in (1..=maxk).rev() {
        let m = (2 * kk - 1) as f64;
        let (msquared, mfour, msix) = (m * m, m.powf(4.0), m.powf(6.0));
        let qpower = q.powf((8 * kk) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * msquared,
            k2a + k2b * msquared + k2c * mfour,
            k3a + k3b * msquared + k3c * mfour + k3d * msix,
        ];
        for (ki, c) in k.iter_mut().zip(coeffs) {
            *ki = *ki * qpower + c;
        }
    }
    let div = [z, 6.0 * zfour, 72.0 * z.powf(7.0), 6480.0 * z.powf(10.0)];
    for (ki, d) in k.iter_mut().zip(div) {
        *ki = *ki * q * sqrt2pi / d;
    }
    let q = (-pi2 / 2.0 / zsquared).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let (mut k2extra, mut k3extra) = (0.0, 0.0);
    for kk in (1..=maxk).rev() {
        let ksquared = (kk * kk) as f64;
        let qp = q.powf(ksquared);
        let kspi = PI * kk as f64;
        k2extra += ksquared * qp;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qp;
    }
    k[2] += k2extra * (pi2 * sqrt2pi / (-36.0 * zthree));
    k[3] += k3extra * (pi2 * sqrt2pi / (216.0 * zsix));
    for (i, ki) in k.iter_mut().enumerate() {
        *ki /= nf.powf(i as f64 / 2.0);
    }
    k.iter().sum()
}

/// floor(n·x) and its fractional part, computed exactly with a fused multiply-add.
fn mod_nx(n: u64, x: f64) -> (u64, f64) {
    let nf = n as f64;
    let hi = nf * x;
    let lo = nf.mul_add(x, -hi);
    let mut fl = hi.floor();
    let mut alpha = (hi - fl) + lo;
    if alpha < 0.0 {
        fl -= 1.0;
        alpha += 1.0;
    }
    if alpha >= 1.0 {
        fl += 1.0;
        alpha = 0.0;
    }
    (fl as u64, alpha)
}

/// log(k!) − Stirling's leading terms (k·log k − k + ½·log 2πk), for k ≥ 1.
fn stirling_remainder(k: u64) -> f64 {
    let kf = k as f64;
    if k < 30 {
        let lf: f64 = (2..=k).map(|j| (j as f64).ln()).sum();
        lf - (kf * kf.ln() - kf + 0.5 * (2.0 * PI * kf).ln())
    } else {
        let r = 1.0 / kf;
        let r2 = r * r;
        r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 / 1680.0)))
    }
}

/// One-sided Smirnov survival function P(D_n^+ >= x) (scipy.special.smirnov): the
/// Birnbaum–Tingey sum, each term computed in log space so that huge binomial coefficients
/// and tiny powers cancel before they are exponentiated.
pub fn smirnov_sf(n: u64, x: f64) -> f64 {
    if n == 0 || !(0.0..=1.0).contains(&x) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let (nxfl, alpha) = mod_nx(n, x);
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        // x <= 1/n: only the first term of the upper sum.
        let t = ((nf - 1.0) * x.ln_1p()).exp();
        return (1.0 - x * t).clamp(0.0, 1.0);
    }
    const CEPHES_MINLOG: f64 = -7.083_964_185_322_641e2;
    if -2.0 * nf * x * x < CEPHES_MINLOG {
        return 0.0;
    }
    if nxfl >= n - 1 {
        return (nf * (-x).ln_1p()).exp().clamp(0.0, 1.0);
    }
    if n > 1_000_000 {
        // Too many terms: scipy's approximation p ~ exp(-(6nx+1)^2 / 18n).
        let logp = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        return if logp < -LN_2 {
            logp.exp()
        } else {
            1.0 - (-logp.exp_m1())
        };
    }
    let last = n - nxfl - 1;
    let nx = nf * x;
    let ln_x = x.ln();
    let s_n = stirling_remainder(n);
    let mut sum = (nf * (-x).ln_1p()).exp();
    let terms = last + 1;
    for v in 1..=last {
        let vf = v as f64;
        let rest = nf - vf;
        let l = vf * (nx / vf).ln_1p() + rest * (-nx / rest).ln_1p() - (x + vf / nf).ln()
            + ln_x
            + 0.5 * (nf / (2.0 * PI * vf * rest)).ln()
            + s_n
            - stirling_remainder(v)
            - stirling_remainder(n - v);
        let term = l.exp();
        sum += term;
        if term != 0.0 {
            if 4.0 * (terms - v) as f64 * term < f64::EPSILON * sum && v != last {
                break;
            }
        } else if v > n / 2 {
            break;
        }
    }
    sum.clamp(0.0, 1.0)
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

/// Sorts floats ascending (NaN last). LSD radix sort on the order-preserving bit pattern for
/// large inputs — several times faster than a comparison sort on millions of values.
pub fn sort_f64(v: &mut [f64]) {
    if v.len() < 4096 {
        v.sort_unstable_by(f64::total_cmp);
        return;
    }
    let key = |x: f64| -> u64 {
        let b = x.to_bits();
        if b >> 63 == 1 {
            !b
        } else {
            b | (1 << 63)
        }
    };
    let unkey = |k: u64| -> f64 {
        if k >> 63 == 1 {
            f64::from_bits(k & !(1 << 63))
        } else {
            f64::from_bits(!k)
        }
    };
    let mut keys: Vec<u64> = v.iter().map(|&x| key(x)).collect();
    let mut scratch = vec![0u64; keys.len()];
    const BITS: usize = 11;
    const PASSES: usize = 6;
    const BUCKETS: usize = 1 << BITS;
    let mut counts = vec![[0usize; BUCKETS]; PASSES];
    for &k in &keys {
        for (p, c) in counts.iter_mut().enumerate() {
            c[((k >> (p * BITS)) as usize) & (BUCKETS - 1)] += 1;
        }
    }
    for (p, c) in counts.iter_mut().enumerate() {
        if c.contains(&keys.len()) {
            continue; // every key has the same digit here: nothing to do
        }
        let mut offset = 0;
        for x in c.iter_mut() {
            let n = *x;
            *x = offset;
            offset += n;
        }
        for &k in &keys {
            let d = ((k >> (p * BITS)) as usize) & (BUCKETS - 1);
            scratch[c[d]] = k;
            c[d] += 1;
        }
        std::mem::swap(&mut keys, &mut scratch);
    }
    for (x, k) in v.iter_mut().zip(keys) {
        *x = unkey(k);
    }
}

#[cfg(test)]
mod tests;
