# shellcheck shell=bash
# Sourced by scripts/bench (see scripts/bench.d/lib.sh for row, mean_ms, peak_mb, meets).

# 4. Data (issues 4 and 15). Peers in their own venv, pinned: scipy, pandas, polars, evidently.
#    Peer times are taken inside Python (interpreter start and imports left out: only the
#    peer's own work counts), the best of a few runs after a warm-up; ours are whole
#    processes (hyperfine), start and result writing included. Same files, warm page cache.
ev="${MLOPS_CACHE_DIR:-/var/cache/mlops-test}/evidently-venv"
ev_pins=(evidently==0.7.23 "pandas==2.3.3" scipy==1.17.1 numpy==2.4.6 polars==2.1.0)
if [ "$(cat "$ev/.mlops-pins" 2>/dev/null)" != "${ev_pins[*]}" ]; then
  python3 -m venv "$ev" && "$ev/bin/pip" install -q --disable-pip-version-check "${ev_pins[@]}"
  echo "${ev_pins[*]}" >"$ev/.mlops-pins"
fi
# py_ms RUNS SETUP STATEMENT: milliseconds of STATEMENT, best of RUNS after one warm-up.
py_ms() {
  "$ev/bin/python" - "$@" <<'PY'
import sys, time
runs, setup, stmt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
env = {}
exec(setup, env)
exec(stmt, env)
best = float("inf")
for _ in range(runs):
    t = time.perf_counter(); exec(stmt, env); best = min(best, time.perf_counter() - t)
print(round(best * 1000, 1))
PY
}

# MLOPS_BENCH_DATA_ONLY=csv,parquet (any of ks, drift, csv, parquet) runs only those rows,
# e.g. while iterating on one of them; unset, the whole section runs.
data_rows() { [ -z "${MLOPS_BENCH_DATA_ONLY:-}" ] || [[ ",$MLOPS_BENCH_DATA_ONLY," == *",$1,"* ]]; }

# 4a. KS, 10M vs 10M float64, the test alone (sorting included): ours vs scipy.stats.ks_2samp.
if data_rows ks; then
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
ks_2samp(a[:1000], b[:1000])
t = time.perf_counter(); r = ks_2samp(a, b); s = time.perf_counter() - t
print(json.dumps({"statistic": float(r.statistic), "p_value": float(r.pvalue), "seconds": s}))
PY
best_of() { # best_of N CMD...: the JSON line with the fewest seconds
  for _ in $(seq "$1"); do "${@:2}"; done | python3 -c "import json,sys; print(json.dumps(min((json.loads(l) for l in sys.stdin), key=lambda o: o['seconds'])))"
}
ours_json=$(best_of 3 "$root/target/release/examples/bench_ks" "$work/a.f64" "$work/b.f64")
peer_json=$(best_of 2 "$ev/bin/python" "$work/ks.py" "$work/a.f64" "$work/b.f64")
python3 - "$ours_json" "$peer_json" <<'PY'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert abs(o["statistic"] - p["statistic"]) <= 1e-12, (o, p)
assert abs(o["p_value"] - p["p_value"]) <= 1e-9 * max(p["p_value"], 1e-300), (o, p)
PY
ours=$(python3 -c "import json; print(round(json.loads('$ours_json')['seconds']*1000,1))")
peer=$(python3 -c "import json; print(round(json.loads('$peer_json')['seconds']*1000,1))")
row "KS 10M vs 10M float64 vs scipy ks_2samp (ms)" "<= 0.15x scipy" "$ours" "$peer" "$(ratio_of "$ours" "$peer")" "$(peak_mb "$root/target/release/examples/bench_ks" "$work/a.f64" "$work/b.f64") / $(peak_py "$ev/bin/python" "$work/ks.py" "$work/a.f64" "$work/b.f64")" "ratio <= 0.15"
rm -f "$work"/*.f64
fi

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
compare: {metrics: {f1: {direction: maximize, threshold: 0.8}}}
YAML
head -n 1001 "$work/drift/data/reference.csv" >"$work/drift/data/test.csv"
cp "$work/drift/data/reference.csv" "$work/drift/data/train.csv"
"$mlops" --quiet --config "$work/drift/mlops.yaml" data accept --dataset train
cp "$work/drift/data/current.csv" "$work/drift/data/train.csv"
if data_rows drift; then
check=("$mlops" --quiet --config "$work/drift/mlops.yaml" data check --dataset train --format json)
hyperfine -N -i -w 1 -r 5 --export-json "$work/d1.json" "${check[*]}" >/dev/null
cat >"$work/ev_drift.py" <<'PY'
import sys, time, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref = pd.read_csv(sys.argv[1]); cur = pd.read_csv(sys.argv[2])
snap = Report([DataDriftPreset()]).run(cur, ref)
print(snap.dict()["metrics"][0]["value"], file=sys.stderr)
PY
peer=$(py_ms 1 "import sys; sys.argv = ['', '$work/drift/data/reference.csv', '$work/drift/data/current.csv']; src = open('$work/ev_drift.py').read()" "exec(src, {'__name__': 'bench'})")
ours=$(mean_ms "$work/d1.json")
row "data check 1M x 20 vs evidently DataDriftPreset (ms)" ">= 100x faster" "$ours" "$peer" "$(ratio_of "$ours" "$peer" 4)" "$(peak_mb "${check[@]}") / $(peak_py "$ev/bin/python" "$work/ev_drift.py" "$work/drift/data/reference.csv" "$work/drift/data/current.csv")" "ratio <= 0.01"
fi

# 4c. Digest + profile of a 1.16 GB CSV (mlops data accept: digest, types, moments, categories,
#     sample, reference written) vs polars.read_csv (eager) and pandas.read_csv of the same
#     file, each doing nothing else.
big="$work/drift/data/big.csv"
cp "$work/drift/data/reference.csv" "$big"
while [ "$(stat -c %s "$big")" -lt 1000000000 ]; do tail -n +2 "$work/drift/data/reference.csv" >>"$big"; done
rm -f "$work/drift/data/current.csv" "$work/drift/data/train.csv"
sed -i 's#data/train.csv#data/big.csv#' "$work/drift/mlops.yaml"
accept=("$mlops" --quiet --config "$work/drift/mlops.yaml" data accept --dataset train)
if data_rows csv; then
hyperfine -N -w 1 -r 3 --export-json "$work/p1.json" "${accept[*]}" >/dev/null
ours=$(mean_ms "$work/p1.json")
mem=$(peak_mb "${accept[@]}")
polars_ms=$(py_ms 3 "import polars" "polars.read_csv('$big')")
pandas_ms=$(py_ms 1 "import pandas" "pandas.read_csv('$big')")
gb=$(python3 -c "print(round($(stat -c %s "$big")/1e9, 2))")
row "digest+profile ${gb} GB CSV vs polars.read_csv (ms)" "<= 1x polars, < 200 MiB" "$ours" "$polars_ms" "$(ratio_of "$ours" "$polars_ms")" "$mem / $(peak_py "$ev/bin/python" -c "import polars; polars.read_csv('$big')")" "ratio <= 1 and mem < 200"
row "digest+profile ${gb} GB CSV vs pandas.read_csv (ms)" ">= 4x faster than pandas" "$ours" "$pandas_ms" "$(ratio_of "$ours" "$pandas_ms")" "$mem" "ratio <= 0.25"
fi

# 4d. The same rows as Parquet (written by polars: zstd, its default row groups) vs
#     polars.read_parquet.
"$ev/bin/python" -c "import polars; polars.read_csv('$big').write_parquet('$work/drift/data/big.parquet')"
rm -f "$big"
sed -i 's#data/big.csv#data/big.parquet#' "$work/drift/mlops.yaml"
if data_rows parquet; then
hyperfine -N -w 1 -r 3 --export-json "$work/q1.json" "${accept[*]}" >/dev/null
ours=$(mean_ms "$work/q1.json")
peer=$(py_ms 3 "import polars" "polars.read_parquet('$work/drift/data/big.parquet')")
row "digest+profile same rows as Parquet vs polars (ms)" "<= 1.5x polars.read_parquet" "$ours" "$peer" "$(ratio_of "$ours" "$peer")" "$(peak_mb "${accept[@]}") / $(peak_py "$ev/bin/python" -c "import polars; polars.read_parquet('$work/drift/data/big.parquet')")" "ratio <= 1.5"
fi
rm -rf "$work/drift"
