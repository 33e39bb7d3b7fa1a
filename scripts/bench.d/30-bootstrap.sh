# shellcheck shell=bash
# Sourced by scripts/bench (see scripts/bench.d/lib.sh for row, mean_ms, peak_mb, meets).

# 3. Paired bootstrap, 10,000 resamples x 100,000 predictions (issue 5: under 1 s for the
#    confusion metrics; issue 15: under 1.5 s for roc_auc). Peers: numpy, vectorised, the same
#    resampling (rows drawn with replacement, the same rows for both models), run on fewer
#    resamples and scaled: the full runs take minutes. Ours: best of 3.
boot() { # boot METRICS: best seconds of 3 runs, in ms
  for _ in 1 2 3; do "$root/target/release/examples/bench_bootstrap" 100000 10000 "$1"; done |
    python3 -c "import json,sys; print(round(min(json.loads(l)['seconds'] for l in sys.stdin)*1000,1))"
}
ours=$(boot accuracy,f1,precision,recall)
peer=$("$python" - <<'PY'
import time, numpy as np
n, r = 100_000, 1_000
rng = np.random.default_rng(1)
y = (rng.random(n) < 0.4).astype(np.int8)
p1 = ((y * 0.3 + rng.random(n) * 0.7) >= 0.5).astype(np.int8)
p2 = ((y * 0.2 + rng.random(n) * 0.8) >= 0.5).astype(np.int8)
cell = (y * 4 + p1 * 2 + p2).astype(np.int8)
t = time.perf_counter()
for _ in range(r // 100):
    idx = rng.integers(0, n, (100, n))
    c = cell[idx]
    counts = np.stack([(c == k).sum(1) for k in range(8)], 1)
t = time.perf_counter() - t
print(round(t * 10 * 1000, 1))
PY
)
row "bootstrap 10k x 100k, 4 metrics (ms)" "< 1000 ms" "$ours" "${peer} (x10)" "$(ratio_of "$ours" "$peer")" "$(peak_mb "$root/target/release/examples/bench_bootstrap" 100000 10000)" "ours < 1000"

# roc_auc: numpy computes each resample's AUC for both models from the scores' ranks (one
# argsort per resample and model, ties averaged as Mann-Whitney counts them), on 100
# resamples, scaled x100.
ours=$(boot roc_auc)
peer=$("$python" - <<'PY'
import time, numpy as np
from scipy.stats import rankdata
n, r = 100_000, 100
rng = np.random.default_rng(1)
y = (rng.random(n) < 0.4).astype(np.int8)
s1 = np.minimum(y * 0.3 + rng.random(n) * 0.7, 1.0)
s2 = np.minimum(y * 0.2 + rng.random(n) * 0.8, 1.0)
def auc(s, y):
    ranks = rankdata(s)
    pos = y == 1
    n1, n0 = pos.sum(), (~pos).sum()
    return (ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
t = time.perf_counter()
diffs = []
for _ in range(r):
    idx = rng.integers(0, n, n)
    diffs.append(auc(s1[idx], y[idx]) - auc(s2[idx], y[idx]))
t = time.perf_counter() - t
print(round(t * (10_000 / r) * 1000, 1))
PY
)
row "bootstrap 10k x 100k, roc_auc (ms)" "< 1500 ms" "$ours" "${peer} (x100)" "$(ratio_of "$ours" "$peer" 4)" "$(peak_mb "$root/target/release/examples/bench_bootstrap" 100000 10000 roc_auc)" "ours < 1500"
