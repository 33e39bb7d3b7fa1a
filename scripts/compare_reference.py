"""Independent reference values for `mlops compare`'s significance tests (numpy + scipy).

Generates paired predictions (a classifier pair with scores and a regression pair) into
fixtures/compare/, then computes with numpy/scipy — not with our code:
  - McNemar's exact test: scipy.stats.binomtest on the discordant pairs (two-sided, p = 0.5);
  - paired percentile-bootstrap intervals of challenger − champion for accuracy, f1, precision,
    recall, roc_auc (sklearn-free: Mann–Whitney with ties), rmse and mae, with 200,000 resamples,
    plus the bootstrap standard deviation, from which the Rust test derives its tolerance (the
    Monte Carlo error of a percentile bound, see tests/it/compare_reference.rs).
Rerun (takes several minutes: the classification bootstrap is a Python loop) with the venv of
scripts/python-env:
    $(scripts/python-env | tail -1) scripts/compare_reference.py
"""
import json
import os

import numpy as np
from scipy.stats import binomtest, rankdata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "compare")
R = 200_000
CONF = 0.95


def write(name, cols):
    keys = list(cols)
    with open(os.path.join(OUT, name), "w") as f:
        f.write(",".join(keys) + "\n")
        for row in zip(*cols.values()):
            f.write(",".join(repr(float(v)) if k == "score" or k == "y_pred" and not float(v).is_integer() else str(int(v)) if float(v).is_integer() else repr(float(v)) for k, v in zip(keys, row)) + "\n")


def auc(y, s, w):
    # Weighted Mann–Whitney with ties counted half.
    order = np.argsort(s, kind="mergesort")
    y, s, w = y[order], s[order], w[order]
    _, start = np.unique(s, return_index=True)
    ends = list(start[1:]) + [len(s)]
    total = 0.0
    neg_below = 0.0
    for a, b in zip(start, ends):
        pos = w[a:b][y[a:b] == 1].sum()
        neg = w[a:b][y[a:b] == 0].sum()
        total += pos * (neg_below + 0.5 * neg)
        neg_below += neg
    return total / (w[y == 1].sum() * w[y == 0].sum())


def class_metrics(y, p, w):
    tp = (w * ((y == 1) & (p == 1))).sum()
    fp = (w * ((y == 0) & (p == 1))).sum()
    fn = (w * ((y == 1) & (p == 0))).sum()
    tn = (w * ((y == 0) & (p == 0))).sum()
    div = lambda a, b: a / b if b else 0.0
    return {
        "accuracy": div(tp + tn, tp + fp + fn + tn),
        "precision": div(tp, tp + fp),
        "recall": div(tp, tp + fn),
        "f1": div(2 * tp, 2 * tp + fp + fn),
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(2026)
    n = 2000
    y = rng.integers(0, 2, n)
    s1 = np.clip(y * 0.35 + rng.normal(0.35, 0.2, n), 0, 1).round(4)
    s2 = np.clip(y * 0.25 + rng.normal(0.4, 0.22, n), 0, 1).round(4)
    p1, p2 = (s1 >= 0.5).astype(int), (s2 >= 0.5).astype(int)
    write("class_challenger.csv", {"y_true": y, "y_pred": p1, "score": s1})
    write("class_champion.csv", {"y_true": y, "y_pred": p2, "score": s2})
    yr = rng.normal(150, 60, 800).round(3)
    r1 = (yr + rng.normal(0, 40, 800)).round(3)
    r2 = (yr + rng.normal(0, 46, 800)).round(3)
    write("reg_challenger.csv", {"y_true": yr, "y_pred": r1})
    write("reg_champion.csv", {"y_true": yr, "y_pred": r2})

    expected = {"resamples": R, "confidence": CONF, "classification": {}, "regression": {}}
    b = int(((p1 == y) & (p2 != y)).sum())
    c = int(((p1 != y) & (p2 == y)).sum())
    expected["mcnemar"] = {"challenger_only": b, "champion_only": c,
                           "p_value": binomtest(min(b, c), b + c, 0.5).pvalue}

    boot = np.random.default_rng(7)
    a = (1 - CONF) / 2
    # classification
    diffs = {m: [] for m in ["accuracy", "f1", "precision", "recall", "roc_auc"]}
    for _ in range(R // 1000):
        idx = boot.integers(0, n, (1000, n))
        for row in idx:
            w = np.bincount(row, minlength=n).astype(float)
            m1, m2 = class_metrics(y, p1, w), class_metrics(y, p2, w)
            for k in m1:
                diffs[k].append(m1[k] - m2[k])
            diffs["roc_auc"].append(auc(y, s1, w) - auc(y, s2, w)) if len(diffs["roc_auc"]) < 20_000 else None
    ones = np.ones(n)
    full1, full2 = class_metrics(y, p1, ones), class_metrics(y, p2, ones)
    full1["roc_auc"], full2["roc_auc"] = auc(y, s1, ones), auc(y, s2, ones)
    for k, d in diffs.items():
        d = np.array(d)
        expected["classification"][k] = {
            "observed": full1[k] - full2[k], "low": float(np.quantile(d, a)),
            "high": float(np.quantile(d, 1 - a)), "sd": float(d.std()), "resamples": len(d)}
    # regression
    nr = len(yr)
    idx = boot.integers(0, nr, (R, nr))
    e1, e2 = r1 - yr, r2 - yr
    w_sq1, w_sq2 = (e1 ** 2)[idx].mean(1), (e2 ** 2)[idx].mean(1)
    w_ab1, w_ab2 = np.abs(e1)[idx].mean(1), np.abs(e2)[idx].mean(1)
    for k, d, obs in [("rmse", np.sqrt(w_sq1) - np.sqrt(w_sq2), np.sqrt((e1 ** 2).mean()) - np.sqrt((e2 ** 2).mean())),
                      ("mae", w_ab1 - w_ab2, np.abs(e1).mean() - np.abs(e2).mean())]:
        expected["regression"][k] = {"observed": float(obs), "low": float(np.quantile(d, a)),
                                     "high": float(np.quantile(d, 1 - a)), "sd": float(d.std()), "resamples": R}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)


if __name__ == "__main__":
    main()
