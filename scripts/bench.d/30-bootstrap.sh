# shellcheck shell=bash
# Sourced by scripts/bench (see scripts/bench.d/lib.sh for row, mean_ms, peak_mb, meets).

# 3. Paired bootstrap, 10,000 resamples x 100,000 predictions (issue 5: under 1 s).
#    Peer: numpy, vectorised, same resampling of accuracy/f1/precision/recall (run on 1,000
#    resamples and scaled x10: the full run takes minutes).
out=$("$root/target/release/examples/bench_bootstrap" 100000 10000 accuracy,f1,precision,recall)
ours=$(python3 -c "import json; print(round(json.loads('$out')['seconds']*1000,1))")
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
row "bootstrap 10k x 100k, 4 metrics (ms)" "< 1000 ms" "$ours" "${peer} (x10)" "$(python3 -c "print(round($ours/$peer,3))")" "$(peak_mb "$root/target/release/examples/bench_bootstrap" 100000 10000)" "ours < 1000"
out=$("$root/target/release/examples/bench_bootstrap" 100000 10000 roc_auc)
ours=$(python3 -c "import json; print(round(json.loads('$out')['seconds']*1000,1))")
row "bootstrap 10k x 100k, roc_auc (ms)" "(reported)" "$ours" "-" "-" "$(peak_mb "$root/target/release/examples/bench_bootstrap" 100000 10000 roc_auc)"
