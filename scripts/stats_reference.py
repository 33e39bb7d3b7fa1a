#!/usr/bin/env python3
"""Reference values for src/data/stats.rs, computed with scipy.

Rerun with the project's Python environment (scipy 1.10.1 pinned by scripts/python-env):

    $(scripts/python-env | tail -n 1) scripts/stats_reference.py > src/data/stats/reference.json

Samples are generated from a 64-bit LCG with integer arithmetic only, so the Rust tests
regenerate exactly the same values without storing them (see `lcg_sample` in
src/data/stats/tests.rs).
"""
import json
import sys

import numpy as np
import scipy
from scipy import special, stats

MASK = (1 << 64) - 1


def lcg_sample(seed, n, granularity_bits, shift):
    """n values: sum of three 31-bit draws, coarsened by granularity_bits, plus shift."""
    state = seed & MASK
    out = []
    for _ in range(n):
        total = 0
        for _ in range(3):
            state = (state * 6364136223846793005 + 1442695040888963407) & MASK
            total += state >> 33
        out.append(float((total >> granularity_bits) + shift))
    return np.array(out)


def spread(granularity_bits):
    # standard deviation of the sum of three uniform 31-bit draws, in granules
    return 0.5 * 2.0 ** (31 - granularity_bits)


KS_CASES = [
    # name, seed_a, n_a, seed_b, n_b, granularity_bits, shift in standard deviations
    ("exact_equal_small", 1, 25, 2, 25, 0, 0.8),
    ("exact_unequal_small", 3, 40, 4, 73, 0, 0.5),
    ("exact_ties", 5, 200, 6, 150, 29, 0.3),
    ("exact_heavy_ties", 7, 500, 8, 800, 31, 0.0),
    ("exact_medium", 9, 3000, 10, 2000, 0, 0.1),
    ("exact_equal_10000", 11, 10000, 12, 10000, 0, 0.04),
    ("exact_same_distribution", 13, 500, 14, 700, 0, 0.0),
    ("exact_one_value", 15, 1, 16, 9, 0, 0.0),
    ("asymp_moderate", 17, 20000, 18, 15000, 0, 0.02),
    ("asymp_significant", 19, 20000, 20, 15000, 0, 0.1),
    ("asymp_same_distribution_100k", 21, 100000, 22, 100000, 0, 0.0),
    ("asymp_drift_100k", 23, 100000, 24, 100000, 0, 0.03),
    ("asymp_very_unequal", 25, 30, 26, 20000, 0, 0.5),
    ("asymp_unequal_small_side", 27, 120, 28, 11000, 0, 0.2),
    ("asymp_unequal_tiny_shift", 29, 137, 30, 10001, 0, 0.05),
    ("asymp_identical", 31, 15000, 31, 15000, 0, 0.0),
    ("asymp_disjoint", 33, 20000, 34, 20000, 0, 3.0),
    ("asymp_ties", 35, 12000, 36, 30000, 31, 0.0),
]

# kstwo.sf(x, n) over a grid that reaches every branch of the method choice.
KSTWO_GRID = []
for n in [1, 2, 5, 30, 100, 140, 141, 1000, 8571, 50000, 100001, 2000000]:
    for x in [0.3 / n, 0.75 / n, 1.0 / n, 1.5 / n, 0.5 / np.sqrt(n), 0.8 / np.sqrt(n),
              1.2 / np.sqrt(n), 1.6 / np.sqrt(n), 2.5 / np.sqrt(n), 6.0 / np.sqrt(n),
              25.0 / np.sqrt(n), 0.3 / n ** (2 / 3), 0.6, 1.0 - 1.5 / n]:
        if 0.0 < x < 1.0:
            KSTWO_GRID.append((n, float(x)))

SMIRNOV_GRID = [(n, float(x)) for n in [2, 7, 50, 1000, 40000, 2000000]
                for x in [0.001, 0.01, 0.05, 0.1, 0.3, 0.5, 0.9, 0.999]]

CHI2_CASES = [
    ("three_categories", [10, 20, 30], [15, 25, 20]),
    ("two_categories_yates", [30, 10], [20, 25]),
    ("yates_small_difference", [10, 10], [10, 11]),
    ("empty_category_dropped", [5, 0, 7, 9], [6, 0, 1, 12]),
    ("unseen_category", [50, 40, 0], [45, 38, 12]),
    ("identical", [100, 200, 300], [100, 200, 300]),
    ("large_many_categories", [1000 + 37 * i for i in range(40)], [1200 + 29 * i + (i % 7) * 50 for i in range(40)]),
    ("strong_difference", [5000, 10, 4000], [10, 5000, 4000]),
]

CHI2_SF_GRID = [(x, k) for k in [1, 2, 3, 10, 49, 200] for x in [0.01, 0.5, 1.0, 3.84, 10.0, 50.0, 300.0, 2000.0]]


def main():
    out = {
        "generator": "scripts/stats_reference.py",
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "ks_2samp": [],
        "kstwo_sf": [],
        "smirnov": [],
        "chi2_contingency": [],
        "chi2_sf": [],
    }
    for name, sa, na, sb, nb, g, shift_sd in KS_CASES:
        a = lcg_sample(sa, na, g, 0)
        shift = int(round(shift_sd * spread(g)))
        b = lcg_sample(sb, nb, g, shift)
        r = stats.ks_2samp(a, b, alternative="two-sided", method="auto")
        out["ks_2samp"].append({
            "name": name, "seed_a": sa, "n_a": na, "seed_b": sb, "n_b": nb,
            "granularity_bits": g, "shift_b": shift,
            "method": "exact" if max(na, nb) <= 10000 else "asymp",
            "statistic": float(r.statistic), "p_value": float(r.pvalue),
        })
    for n, x in KSTWO_GRID:
        out["kstwo_sf"].append({"n": n, "x": x, "sf": float(stats.kstwo.sf(x, n))})
    for n, x in SMIRNOV_GRID:
        out["smirnov"].append({"n": n, "x": x, "sf": float(special.smirnov(n, x))})
    for name, a, b in CHI2_CASES:
        table = np.array([a, b])
        keep = table.sum(axis=0) > 0
        stat, p, dof, _ = stats.chi2_contingency(table[:, keep])
        out["chi2_contingency"].append({"name": name, "a": a, "b": b, "statistic": float(stat),
                                        "p_value": float(p), "dof": int(dof)})
    for x, k in CHI2_SF_GRID:
        out["chi2_sf"].append({"x": x, "dof": k, "sf": float(stats.chi2.sf(x, k))})
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
