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
