//! The one-sample Kolmogorov distribution (`scipy.special.kolmogn`) and Smirnov's one-sided
//! tail (`scipy.special.smirnov`), which [`super::ks_2samp`] uses for samples too large for the
//! exact two-sample distribution: Durbin's matrix, Pomeranz, Pelz–Good and Smirnov's sum, chosen
//! as Simard & L'Ecuyer do.

use std::f64::consts::{LN_2, PI};

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
