//! Agreement with scipy to 1e-9 relative, on the cases `scripts/stats_reference.py` computes.

use serde_json::Value;

use super::*;

const REFERENCE: &str = include_str!("reference.json");

fn reference() -> Value {
    serde_json::from_str(REFERENCE).expect("reference.json parses")
}

/// The generator of `scripts/stats_reference.py`, bit for bit.
fn lcg_sample(seed: u64, n: usize, granularity_bits: u32, shift: i64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            let mut total: u64 = 0;
            for _ in 0..3 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                total += state >> 33;
            }
            ((total >> granularity_bits) as i64 + shift) as f64
        })
        .collect()
}

#[track_caller]
fn assert_close(ours: f64, theirs: f64, what: &str) {
    let ok = if theirs == 0.0 {
        ours.abs() < 1e-300
    } else {
        ((ours - theirs) / theirs).abs() <= 1e-9
    };
    assert!(ok, "{what}: ours {ours:e}, scipy {theirs:e}");
}

#[test]
fn ks_2samp_matches_scipy() {
    for case in reference()["ks_2samp"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let a = lcg_sample(
            case["seed_a"].as_u64().unwrap(),
            case["n_a"].as_u64().unwrap() as usize,
            case["granularity_bits"].as_u64().unwrap() as u32,
            0,
        );
        let b = lcg_sample(
            case["seed_b"].as_u64().unwrap(),
            case["n_b"].as_u64().unwrap() as usize,
            case["granularity_bits"].as_u64().unwrap() as u32,
            case["shift_b"].as_i64().unwrap(),
        );
        let o = ks_2samp(&a, &b);
        assert_close(
            o.statistic,
            case["statistic"].as_f64().unwrap(),
            &format!("{name} statistic"),
        );
        assert_close(
            o.p_value.unwrap(),
            case["p_value"].as_f64().unwrap(),
            &format!("{name} p-value"),
        );
    }
}

#[test]
fn kolmogorov_distribution_matches_scipy_on_every_branch() {
    for case in reference()["kstwo_sf"].as_array().unwrap() {
        let (n, x) = (case["n"].as_u64().unwrap(), case["x"].as_f64().unwrap());
        assert_close(
            kolmogn_sf(n, x),
            case["sf"].as_f64().unwrap(),
            &format!("kstwo.sf({x}, {n})"),
        );
    }
}

#[test]
fn smirnov_matches_scipy() {
    for case in reference()["smirnov"].as_array().unwrap() {
        let (n, x) = (case["n"].as_u64().unwrap(), case["x"].as_f64().unwrap());
        assert_close(
            smirnov_sf(n, x),
            case["sf"].as_f64().unwrap(),
            &format!("smirnov({n}, {x})"),
        );
    }
}

#[test]
fn chi2_contingency_matches_scipy() {
    for case in reference()["chi2_contingency"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let counts = |k: &str| -> Vec<u64> {
            case[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect()
        };
        let o = chi2_homogeneity(&counts("a"), &counts("b"));
        assert_close(
            o.statistic,
            case["statistic"].as_f64().unwrap(),
            &format!("{name} statistic"),
        );
        assert_close(
            o.p_value.unwrap(),
            case["p_value"].as_f64().unwrap(),
            &format!("{name} p-value"),
        );
    }
}

#[test]
fn chi2_sf_matches_scipy() {
    for case in reference()["chi2_sf"].as_array().unwrap() {
        let (x, k) = (case["x"].as_f64().unwrap(), case["dof"].as_f64().unwrap());
        assert_close(
            chi2_sf(x, k),
            case["sf"].as_f64().unwrap(),
            &format!("chi2.sf({x}, {k})"),
        );
    }
}

#[test]
fn fewer_than_two_categories_or_an_empty_side_is_no_evidence() {
    assert_eq!(chi2_homogeneity(&[5], &[7]).p_value, Some(1.0));
    assert_eq!(chi2_homogeneity(&[0, 0], &[3, 4]).p_value, Some(1.0));
}

#[test]
fn empty_sample_has_no_p_value_and_nan_is_ignored() {
    assert_eq!(ks_2samp(&[], &[1.0]).p_value, None);
    let with_nan = ks_2samp(&[1.0, f64::NAN, 2.0], &[1.0, 2.0]);
    assert_eq!(with_nan.statistic, 0.0);
    assert_eq!(with_nan.p_value, Some(1.0));
}

#[test]
fn radix_sort_orders_like_a_comparison_sort() {
    let mut v: Vec<f64> = lcg_sample(99, 50_000, 0, -3_000_000_000)
        .into_iter()
        .enumerate()
        .map(|(i, x)| if i % 97 == 0 { -0.0 } else { x / 7.0 })
        .chain([f64::INFINITY, f64::NEG_INFINITY, 0.0, f64::MIN_POSITIVE])
        .collect();
    let mut expected = v.clone();
    expected.sort_by(f64::total_cmp);
    sort_f64(&mut v);
    assert_eq!(
        v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        expected.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
}

/// max |F1 − F2| the long way: every distinct pooled value, counts by binary search.
fn direct_statistic(a: &[f64], b: &[f64]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let mut pooled: Vec<f64> = a.iter().chain(&b).copied().collect();
    pooled.sort_by(f64::total_cmp);
    pooled.dedup();
    pooled
        .iter()
        .map(|v| {
            let i = a.partition_point(|x| x <= v) as f64 / a.len() as f64;
            let j = b.partition_point(|y| y <= v) as f64 / b.len() as f64;
            (i - j).abs()
        })
        .fold(0.0, f64::max)
}

#[test]
fn ks_statistic_agrees_with_a_direct_count_on_ties_and_on_both_threads() {
    // Sizes on both sides of the two-thread walk (2^20 values in all); coarse granularity
    // gives long runs of ties, some of them straddling the cut; a shift makes one sample run
    // out first.
    let cases = [
        (700, 300, 24, 0),
        (5_000, 9_000, 30, 1),
        (600_000, 500_001, 28, 0),
        (600_000, 700_000, 0, 50_000_000),
        (1_100_000, 3, 20, 2_000),
        (3, 1_100_000, 31, -1),
    ];
    for (k, (n1, n2, bits, shift)) in cases.into_iter().enumerate() {
        let a = lcg_sample(k as u64 + 1, n1, bits, 0);
        let b = lcg_sample(k as u64 + 100, n2, bits, shift);
        let (mut sa, mut sb) = (a.clone(), b.clone());
        sort_f64(&mut sa);
        sort_f64(&mut sb);
        // Before the exact branch rounds it to h/lcm, as scipy does.
        let ours = ks_statistic(&sa, &sb);
        let rounded = ks_2samp(&a, &b).statistic;
        assert!(
            (rounded - ours).abs() <= 1e-15,
            "case {k}: {rounded} vs {ours}"
        );
        let direct = direct_statistic(&a, &b);
        // Bit for bit: the float reported is i/n1 − j/n2 at the extreme, as scipy computes it.
        assert_eq!(ours, direct, "case {k}");
        assert_eq!(bucketed(&a, &b), direct, "case {k}, counted in buckets");
    }
}

/// The statistic as the bucketed path finds it, at any size.
fn bucketed(a: &[f64], b: &[f64]) -> f64 {
    let (_, _, walk) = ks_buckets::extremes(a, b);
    walk.map_or(0.0, |w| w.statistic())
}

#[test]
fn bucketed_statistic_agrees_on_ties_clusters_and_lopsided_samples() {
    let lcg = |seed, n, bits, shift| lcg_sample(seed, n, bits, shift);
    let cases: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
        // A few hundred distinct values: every bin a run of ties.
        ("heavy ties", lcg(1, 300_000, 24, 0), lcg(2, 200_000, 24, 3)),
        // Identical samples: every difference 0.
        ("identical", lcg(3, 300_000, 10, 0), lcg(3, 300_000, 10, 0)),
        ("lopsided", lcg(4, 400_000, 0, 0), lcg(5, 7, 0, 0)),
        (
            "a cluster and outliers",
            lcg(6, 300_000, 0, 0)
                .iter()
                .map(|x| 1.0 + x * 1e-20)
                .chain([f64::MAX, f64::NEG_INFINITY])
                .collect(),
            lcg(7, 300_000, 0, 0)
                .iter()
                .map(|x| 1.0 + x * 1e-20)
                .collect(),
        ),
        (
            "NaN, zeros of both signs and infinities",
            lcg(8, 300_000, 8, 0)
                .iter()
                .enumerate()
                .map(|(i, x)| match i % 7 {
                    0 => f64::NAN,
                    1 => -0.0,
                    2 => f64::INFINITY,
                    _ => x - 1e9,
                })
                .collect(),
            lcg(9, 250_000, 8, 0)
                .iter()
                .enumerate()
                .map(|(i, x)| match i % 5 {
                    0 => 0.0,
                    1 => f64::NEG_INFINITY,
                    _ => x - 1e9,
                })
                .collect(),
        ),
        (
            "one value each side",
            vec![2.0; 200_000],
            vec![1.0; 100_000],
        ),
    ];
    for (name, a, b) in cases {
        let clean = |v: &[f64]| {
            v.iter()
                .copied()
                .filter(|x| !x.is_nan())
                .collect::<Vec<_>>()
        };
        let direct = direct_statistic(&clean(&a), &clean(&b));
        assert_eq!(bucketed(&a, &b), direct, "{name}");
        assert_eq!(
            ks_2samp(&a, &b).statistic,
            direct,
            "{name}, through ks_2samp"
        );
    }
}

#[test]
fn minus_zero_ties_with_zero() {
    let a: Vec<f64> = (0..9_000)
        .map(|i| if i % 2 == 0 { -0.0 } else { 1.0 })
        .collect();
    let b: Vec<f64> = (0..9_000)
        .map(|i| if i % 2 == 0 { 0.0 } else { 1.0 })
        .collect();
    assert_eq!(ks_2samp(&a, &b).statistic, 0.0);
}

#[test]
fn bucketed_sort_orders_awkward_distributions() {
    // Past the size at which the histogram pass is taken, and below it.
    for n in [300_000, 20_000] {
        awkward_distributions_sort(n);
    }
}

fn awkward_distributions_sort(n: usize) {
    let lcg = lcg_sample(7, n, 0, 0);
    let awkward: Vec<(&str, Vec<f64>)> = vec![
        ("all equal", vec![3.5; n]),
        (
            "two values far apart",
            (0..n)
                .map(|i| if i % 3 == 0 { -1e300 } else { 1e-300 })
                .collect(),
        ),
        (
            "a cluster and one outlier",
            lcg.iter()
                .map(|x| 1.0 + x * 1e-20)
                .chain([f64::MAX])
                .collect(),
        ),
        (
            "subnormals, zeros and infinities",
            lcg.iter()
                .enumerate()
                .map(|(i, x)| match i % 5 {
                    0 => f64::from_bits(*x as u64 % 1000),
                    1 => -0.0,
                    2 => f64::NEG_INFINITY,
                    3 => -x,
                    _ => *x,
                })
                .collect(),
        ),
        (
            "one huge bin",
            lcg.iter()
                .map(|x| (x % 1000.0) + 1e6)
                .chain([0.0, 1e9])
                .collect(),
        ),
    ];
    for (name, mut v) in awkward {
        let mut expected = v.clone();
        expected.sort_by(f64::total_cmp);
        sort_f64(&mut v);
        assert!(
            v.iter()
                .map(|x| x.to_bits())
                .eq(expected.iter().map(|x| x.to_bits())),
            "{name}, {n} values"
        );
    }
}
