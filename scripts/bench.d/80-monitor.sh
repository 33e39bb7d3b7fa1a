# shellcheck shell=bash
# Sourced by scripts/bench (see scripts/bench.d/lib.sh for row, mean_ms, peak_mb).

# 8. Monitor (issue 19): `mlops monitor` over 1M captured rows x 20 features (8 capture files of
#    the contract's JSON Lines, 4 features shifted) against the accepted training reference, vs
#    evidently's DataDriftPreset on the same rows: its time includes reading the same capture
#    files with pandas and keeping the window's rows of the pinned digest, which is what
#    `mlops monitor` does before its tests. Data under target/ (the disk of the worktree), deleted after.
ev="${MLOPS_CACHE_DIR:-/var/cache/mlops-test}/evidently-venv"
ev_pins=(evidently==0.7.23 "pandas==2.3.3" scipy==1.17.1 numpy==2.4.6)
if [ "$(cat "$ev/.mlops-pins" 2>/dev/null)" != "${ev_pins[*]}" ]; then
  python3 -m venv "$ev" && "$ev/bin/pip" install -q --disable-pip-version-check "${ev_pins[@]}"
  echo "${ev_pins[*]}" >"$ev/.mlops-pins"
fi
mon="$root/target/bench-monitor"
rm -rf "$mon"
mkdir -p "$mon/data" "$mon/capture" "$mon/.mlops/environments"
n_rows=${MLOPS_BENCH_MONITOR_ROWS:-1000000}
digest="sha256:$(printf 'bench-monitor' | sha256sum | cut -d' ' -f1)"
"$ev/bin/python" - "$mon" "$digest" "$n_rows" <<'PY'
import datetime, sys
import numpy as np, pandas as pd
out, digest, n_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
def frame(seed, shift, n):
    rng = np.random.default_rng(seed)
    cols = {f"x{i}": rng.normal(shift if i < 4 else 0, 1, n).round(6) for i in range(16)}
    cols["n_items"] = rng.integers(0, 4, n)
    cols["age"] = rng.integers(18, 90, n)
    cols["plan"] = rng.choice(["basic", "standard", "plus", "premium"], n)
    cols["region"] = rng.choice([f"r{i}" for i in range(12)], n)
    return pd.DataFrame(cols)
train = frame(1, 0.0, 200_000)
train["label"] = (train["x0"] > 0).astype(int)
train.to_csv(f"{out}/data/train.csv", index=False)
train.head(1000).to_csv(f"{out}/data/test.csv", index=False)
live = frame(2, 0.05, n_rows)
rng = np.random.default_rng(3)
score = rng.random(len(live)).round(6)
latency = rng.gamma(2.0, 4.0, len(live)).round(3)
now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
names = list(live.columns)
numeric = [n not in ("plan", "region") for n in names]
columns = [live[n].tolist() for n in names]
per_file = len(live) // 8
for f in range(8):
    with open(f"{out}/capture/capture-20261201T000000Z-{f}.jsonl", "w") as fh:
        lines = []
        for i in range(f * per_file, (f + 1) * per_file):
            inputs = ",".join(
                f'"{n}":{columns[j][i]}' if numeric[j] else f'"{n}":"{columns[j][i]}"'
                for j, n in enumerate(names)
            )
            lines.append(
                f'{{"id":"r{i}","time":"{now}","digest":"{digest}","inputs":{{{inputs}}},'
                f'"prediction":{int(score[i] > 0.5)},"score":{score[i]},"latency_ms":{latency[i]},"status":"ok"}}\n'
            )
        fh.write("".join(lines))
PY
cat >"$mon/mlops.yaml" <<YAML
version: 1
model: bench
data:
  train: {path: data/train.csv}
  test: {path: data/test.csv}
  target: label
train: {image: mlops-test/busybox, command: ['true']}
evaluate: {command: ['true']}
compare: {metrics: {f1: {direction: maximize, threshold: 0.8}}}
environments:
  staging:
    deploy: {target: command, command: ['true'], capture: capture}
    monitor: {window: 7d, min_rows: 500, drift: {test: auto, max_drifted_share: 0.5}}
YAML
cat >"$mon/.mlops/environments/staging.yaml" <<YAML
environment: staging
model: bench
image: 127.0.0.1:5000/acme/bench@$digest
digest: $digest
run_id: bench
git_commit: "0000000"
promoted_at: "2026-12-01T00:00:00Z"
YAML
"$mlops" --quiet --config "$mon/mlops.yaml" data accept --dataset train
monitor=("$mlops" --quiet --config "$mon/mlops.yaml" monitor staging --format json)
# Exit 1 (the shifted features alert) is the expected answer: -i.
hyperfine -N -i -w 1 -r 5 --export-json "$work/m1.json" "${monitor[*]}" >/dev/null
"${monitor[@]}" >"$work/monitor.json" || true
cat >"$work/ev_monitor.py" <<'PY'
import datetime, glob, sys
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
root, digest = sys.argv[1], sys.argv[2]
since = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=7)
parts = []
for path in sorted(glob.glob(f"{root}/capture/capture-*.jsonl")):
    rows = pd.read_json(path, lines=True, dtype=False)
    rows = rows[(rows["digest"] == digest) & (pd.to_datetime(rows["time"], utc=True) >= since)]
    parts.append(pd.DataFrame(rows["inputs"].tolist()))
cur = pd.concat(parts, ignore_index=True)
ref = pd.read_csv(f"{root}/data/train.csv").drop(columns=["label"])
snap = Report([DataDriftPreset()]).run(cur, ref)
print(snap.dict()["metrics"][0]["value"])
PY
peer_cmd=("$ev/bin/python" "$work/ev_monitor.py" "$mon" "$digest")
hyperfine -N -w 0 -r 2 --export-json "$work/m2.json" "${peer_cmd[*]}" >/dev/null
python3 - "$work/monitor.json" "$n_rows" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["rows"] == int(sys.argv[2]), r["rows"]
drifted = {c["name"] for c in r["drift"]["columns"] if c["drifted"]}
assert {"x0", "x1", "x2", "x3"} <= drifted, drifted
PY
ours=$(mean_ms "$work/m1.json"); peer=$(mean_ms "$work/m2.json")
row "monitor 1M captured rows x 20 vs evidently (ms)" "ratio <= 0.02, mem < 300" "$ours" "$peer" "$(python3 -c "print(round($ours/$peer,4))")" "$(peak_mb "${monitor[@]}") / $(peak_py "${peer_cmd[@]}")" "ratio <= 0.02 and mem < 300"
rm -rf "$mon"
