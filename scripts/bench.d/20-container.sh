# shellcheck shell=bash
# Sourced by scripts/bench (see scripts/bench.d/lib.sh for row, mean_ms, peak_mb, meets).

# 2. Container overhead (issue 3: within 1.2x of docker run --rm): a trivial training command.
mkdir -p "$work/trivial/data"
printf 'x\n1\n' >"$work/trivial/data/train.csv"; cp "$work/trivial/data/train.csv" "$work/trivial/data/test.csv"
cat >"$work/trivial/mlops.yaml" <<'YAML'
version: 1
model: trivial
data: {train: {path: data/train.csv}, test: {path: data/test.csv}}
train: {image: mlops-test/busybox, command: [echo, hello]}
evaluate: {command: [echo, hello]}
compare: {metrics: {f1: {direction: maximize, threshold: 0.0}}}
YAML
hyperfine -N -w 2 -r 15 --export-json "$work/c1.json" "$mlops --quiet --config $work/trivial/mlops.yaml train" >/dev/null
hyperfine -N -w 2 -r 15 --export-json "$work/c2.json" "$DOCKER run --rm --network none mlops-test/busybox echo hello" >/dev/null
ours=$(mean_ms "$work/c1.json"); peer=$(mean_ms "$work/c2.json")
row "train trivial container vs docker run --rm (ms)" "ratio <= 1.2" "$ours" "$peer" "$(python3 -c "print(round($ours/$peer,3))")" "$(peak_mb "$mlops" --quiet --config "$work/trivial/mlops.yaml" train)" "ratio <= 1.2"
