# shellcheck shell=bash
# Sourced by scripts/bench (see scripts/bench.d/lib.sh for row, mean_ms, peak_mb, meets).

# 1. mlops validate on a 200-line config (issue 2: under 20 ms, process start included).
#    Peer: check-jsonschema validating the same file against the same schema (schema only).
venv="${MLOPS_CACHE_DIR:-/var/cache/mlops-test}/bench-venv"
[ -x "$venv/bin/check-jsonschema" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q check-jsonschema==0.29.4; }
mkdir -p "$work/validate"
cp -r fixtures/valid/design-example/. "$work/validate/"
python3 - "$work/validate/mlops.yaml" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().splitlines()
out = []
for l in lines:
    out.append(l)
    if l.startswith("  metrics:"):
        out += [f"    m{i}: {{direction: maximize, threshold: 0.{i % 9 + 1}, max_regression: 0.01}}" for i in range(70)]
    if l.startswith("environments:"):
        for i in range(40):
            out += [f"  env{i}:", f"    deploy: {{target: docker, port: {19000 + i}, health: /health}}"]
open(p, "w").write("\n".join(out) + "\n")
PY
lines=$(wc -l < "$work/validate/mlops.yaml")
(cd "$work/validate" && "$mlops" validate >/dev/null)
hyperfine -N -w 5 -r 50 --export-json "$work/v1.json" "$mlops validate --config $work/validate/mlops.yaml" >/dev/null
hyperfine -N -w 2 -r 10 --export-json "$work/v2.json" "$venv/bin/check-jsonschema --schemafile $root/schemas/mlops.schema.json $work/validate/mlops.yaml" >/dev/null
ours=$(mean_ms "$work/v1.json"); peer=$(mean_ms "$work/v2.json")
row "validate, ${lines}-line mlops.yaml (ms)" "< 20 ms" "$ours" "$peer" "$(python3 -c "print(round($ours/$peer,3))")" "$(peak_mb "$mlops" validate --config "$work/validate/mlops.yaml")" "ours < 20"
