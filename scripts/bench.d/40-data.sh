# shellcheck shell=bash
# Sourced by scripts/bench (see scripts/bench.d/lib.sh for row, mean_ms, peak_mb, meets).

# 4. Data (issue 4). Peers in their own venv: scipy, pandas and evidently from PyPI.
ev="${MLOPS_CACHE_DIR:-/var/cache/mlops-test}/evidently-venv"
ev_pins=(evidently==0.7.23 "pandas==2.3.3" scipy==1.17.1 numpy==2.4.6)
if [ "$(cat "$ev/.mlops-pins" 2>/dev/null)" != "${ev_pins[*]}" ]; then
  python3 -m venv "$ev" && "$ev/bin/pip" install -q --disable-pip-version-check "${ev_pins[@]}"
  echo "${ev_pins[*]}" >"$ev/.mlops-pins"
fi

# 4a. KS, 10M vs 10M float64, the test alone (sorting included): ours vs scipy.stats.ks_2samp.
"$ev/bin/python" - "$work" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(4)
rng.normal(0, 1, 10_000_000).tofile(f"{sys.argv[1]}/a.f64")
rng.normal(0.001, 1, 10_000_000).tofile(f"{sys.argv[1]}/b.f64")
PY
cat >"$work/ks.py" <<'PY'
import sys, time, json, numpy as np
from scipy.stats import ks_2samp
a = np.fromfile(sys.argv[1]); b = np.fromfile(sys.argv[2])
t = time.perf_counter(); r = ks_2samp(a, b); s = time.perf_counter() - t
print(json.dumps({"statistic": float(r.statistic), "p_value": float(r.pvalue), "seconds": s}))
PY
ours_json=$("$root/target/release/examples/bench_ks" "$work/a.f64" "$work/b.f64")
peer_json=$("$ev/bin/python" "$work/ks.py" "$work/a.f64" "$work/b.f64")
python3 - "$ours_json" "$peer_json" <<'PY'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert abs(o["statistic"] - p["statistic"]) <= 1e-12, (o, p)
assert abs(o["p_value"] - p["p_value"]) <= 1e-9 * max(p["p_value"], 1e-300), (o, p)
PY
ours=$(python3 -c "import json; print(round(json.loads('$ours_json')['seconds']*1000,1))")
peer=$(python3 -c "import json; print(round(json.loads('$peer_json')['seconds']*1000,1))")
row "KS 10M vs 10M float64 vs scipy (ms)" "ratio <= 0.5" "$ours" "$peer" "$(python3 -c "print(round($ours/$peer,3))")" "$(peak_mb "$root/target/release/examples/bench_ks" "$work/a.f64" "$work/b.f64") / $(peak_py "$ev/bin/python" "$work/ks.py" "$work/a.f64" "$work/b.f64")" "ratio <= 0.5"
rm -f "$work"/*.f64

# 4b. data check, 1M rows x 20 columns against an accepted reference, vs evidently's
#     DataDriftPreset on the same two CSV files (its time includes reading both with pandas;
#     ours reads the current CSV and the committed reference, which is what each tool needs).
mkdir -p "$work/drift/data"
"$ev/bin/python" - "$work/drift/data" <<'PY'
import sys, numpy as np, pandas as pd
out = sys.argv[1]
def frame(seed, shift):
    rng = np.random.default_rng(seed)
    n = 1_000_000
    cols = {f"x{i}": rng.normal(shift if i < 4 else 0, 1, n).round(6) for i in range(16)}
    cols["n_items"] = rng.integers(0, 4, n)
    cols["age"] = rng.integers(18, 90, n)
    cols["plan"] = rng.choice(["basic", "standard", "plus", "premium"], n)
    cols["region"] = rng.choice([f"r{i}" for i in range(12)], n)
    return pd.DataFrame(cols)
frame(1, 0.0).to_csv(f"{out}/reference.csv", index=False)
frame(2, 0.05).to_csv(f"{out}/current.csv", index=False)
PY
cat >"$work/drift/mlops.yaml" <<'YAML'
version: 1
model: bench
data:
  train: {path: data/train.csv}
  test: {path: data/test.csv}
  checks: {schema: strict, changed: required, drift: {test: auto, max_drifted_share: 0.5}}
train: {image: mlops-test/busybox, command: ['true']}
evaluate: {command: ['true']}
YAML
head -n 1001 "$work/drift/data/reference.csv" >"$work/drift/data/test.csv"
cp "$work/drift/data/reference.csv" "$work/drift/data/train.csv"
"$mlops" --quiet --config "$work/drift/mlops.yaml" data accept --dataset train
cp "$work/drift/data/current.csv" "$work/drift/data/train.csv"
check=("$mlops" --quiet --config "$work/drift/mlops.yaml" data check --dataset train --format json)
hyperfine -N -i -w 1 -r 5 --export-json "$work/d1.json" "${check[*]}" >/dev/null
cat >"$work/ev_drift.py" <<'PY'
import sys, time, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref = pd.read_csv(sys.argv[1]); cur = pd.read_csv(sys.argv[2])
snap = Report([DataDriftPreset()]).run(cur, ref)
print(snap.dict()["metrics"][0]["value"])
PY
hyperfine -N -w 0 -r 2 --export-json "$work/d2.json" "$ev/bin/python $work/ev_drift.py $work/drift/data/reference.csv $work/drift/data/current.csv" >/dev/null
ours=$(mean_ms "$work/d1.json"); peer=$(mean_ms "$work/d2.json")
row "data check 1M x 20 vs evidently (ms)" "ratio <= 0.04" "$ours" "$peer" "$(python3 -c "print(round($ours/$peer,4))")" "$(peak_mb "${check[@]}") / $(peak_py "$ev/bin/python" "$work/ev_drift.py" "$work/drift/data/reference.csv" "$work/drift/data/current.csv")" "ratio <= 0.04"

# 4c. Profile + digest of a 1 GB CSV (mlops data accept: digest, types, moments, categories,
#     sample, reference written) vs pandas.read_csv of the same file, nothing else.
big="$work/drift/data/big.csv"
cp "$work/drift/data/reference.csv" "$big"
while [ "$(stat -c %s "$big")" -lt 1000000000 ]; do tail -n +2 "$work/drift/data/reference.csv" >>"$big"; done
rm -f "$work/drift/data/current.csv"
sed -i 's#data/train.csv#data/big.csv#' "$work/drift/mlops.yaml"
accept=("$mlops" --quiet --config "$work/drift/mlops.yaml" data accept --dataset train)
hyperfine -N -w 1 -r 3 --export-json "$work/p1.json" "${accept[*]}" >/dev/null
hyperfine -N -w 1 -r 3 --export-json "$work/p2.json" "$ev/bin/python -c \"import pandas; pandas.read_csv('$big')\"" >/dev/null
ours=$(mean_ms "$work/p1.json"); peer=$(mean_ms "$work/p2.json")
gb=$(python3 -c "print(round($(stat -c %s "$big")/1e9, 2))")
row "profile+digest ${gb} GB CSV vs pandas.read_csv (ms)" "ratio <= 1" "$ours" "$peer" "$(python3 -c "print(round($ours/$peer,3))")" "$(peak_mb "${accept[@]}") / $(peak_py "$ev/bin/python" -c "import pandas; pandas.read_csv('$big')")" "ratio <= 1"
rm -rf "$work/drift"
