# shellcheck shell=bash
# Sourced by scripts/bench (see scripts/bench.d/lib.sh for row, mean_ms, peak_mb, meets).

# 7. Tracking (issue 16): mirroring one finished run into MLflow — params, tags, metrics of
#    both models, the two datasets (digest, schema, profile), five evidence artifacts, the
#    status — with `mlops track` (a whole process, start-up included) against MLflow's own
#    Python client logging the same content (datasets through mlflow.data.from_pandas) in the
#    same script, timed after `import mlflow`. Both write to the server scripts/services starts
#    (127.0.0.1:5050), each round into a fresh experiment; the figure is the median of 5.
MLFLOW_URI=${MLOPS_TEST_MLFLOW_URI:-http://127.0.0.1:${MLOPS_MLFLOW_PORT:-5050}}
MLFLOW_PY=${MLOPS_TEST_MLFLOW_PYTHON:-${MLOPS_CACHE_DIR:-/var/cache/mlops-test}/mlflow-venv/bin/python}
trk="$work/tracking"
cp -r "$root/fixtures/churn" "$trk"
printf 'tracking: {type: mlflow, uri: "%s", experiment: bench-seed-%s}\n' "$MLFLOW_URI" "$$" >>"$trk/mlops.yaml"
(cd "$trk" && git init -q -b main && git add -A && git -c user.name=bench -c user.email=bench@mlops.invalid commit -qm bench)
"$mlops" --quiet --config "$trk/mlops.yaml" train >/dev/null
"$mlops" --quiet --config "$trk/mlops.yaml" evaluate >/dev/null
"$mlops" --quiet --config "$trk/mlops.yaml" compare >/dev/null || true
result=$("$MLFLOW_PY" - "$mlops" "$trk" "$MLFLOW_URI" "$$" <<'PY'
import json, os, statistics, subprocess, sys, time, warnings
warnings.filterwarnings("ignore")
mlops, project, uri, tag = sys.argv[1:5]
os.environ["MLFLOW_TRACKING_URI"] = uri
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

client = MlflowClient(uri)
run_id = open(os.path.join(project, ".mlops/runs/latest")).read().strip()
run_dir = os.path.join(project, ".mlops/runs", run_id)
record = json.load(open(os.path.join(run_dir, "run.json")))

def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = float(v)
    return out

def peer(experiment):
    """MLflow's client logging what `mlops track` logs."""
    start = time.perf_counter()
    exp = client.create_experiment(experiment)
    run = client.create_run(exp, run_name=run_id, tags={
        "mlops.run_id": run_id, "mlflow.source.git.commit": record["git"]["commit"],
        "mlflow.source.name": "mlops.yaml", "mlops.model": record["model"]})
    rid = run.info.run_id
    now = int(time.time() * 1000)
    metrics = []
    for side, prefix in (("challenger", ""), ("champion", "champion.")):
        path = os.path.join(run_dir, "eval", side, "metrics.json")
        if os.path.exists(path):
            metrics += [Metric(prefix + k, v, now, 0) for k, v in flat(json.load(open(path))).items()]
    train_metrics = os.path.join(run_dir, "train", "metrics.json")
    if os.path.exists(train_metrics):
        metrics += [Metric("train." + k, v, now, 0) for k, v in flat(json.load(open(train_metrics))).items()]
    params = [Param(k, v if isinstance(v, str) else json.dumps(v)) for k, v in record["params"].items()]
    tags = [RunTag(f"mlops.data.{n}.digest", d["digest"]) for n, d in record["data"].items()]
    client.log_batch(rid, metrics=metrics, params=params, tags=tags)
    with mlflow.start_run(run_id=rid):
        for name, d in record["data"].items():
            df = pd.read_csv(os.path.join(project, d["path"]))
            ds = mlflow.data.from_pandas(df, source=d["path"], name=f"{record['model']}-{name}")
            mlflow.log_input(ds, context="training" if name == "train" else "evaluation")
    compare = json.load(open(os.path.join(run_dir, "compare.json")))
    client.set_tag(rid, "mlops.verdict", compare["verdict"])
    client.set_tag(rid, "mlflow.note.content", open(os.path.join(run_dir, "report.md")).read())
    for rel, name in (("run.json", None), ("compare.json", None), ("report.md", None),
                      ("eval/challenger/metrics.json", None), ("eval/challenger/predictions.csv", None)):
        path = os.path.join(run_dir, rel)
        if os.path.exists(path):
            client.log_artifact(rid, path)
    client.set_terminated(rid, "FINISHED")
    return (time.perf_counter() - start) * 1000

def ours(experiment):
    yaml = os.path.join(project, "mlops.yaml")
    text = open(yaml).read().splitlines()
    text = [l for l in text if not l.startswith("tracking:")]
    text.append(f'tracking: {{type: mlflow, uri: "{uri}", experiment: {experiment}}}')
    open(yaml, "w").write("\n".join(text) + "\n")
    start = time.perf_counter()
    subprocess.run([mlops, "--quiet", "--config", yaml, "track"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000

o, p = [], []
for i in range(5):
    o.append(ours(f"bench-ours-{tag}-{i}"))
    p.append(peer(f"bench-peer-{tag}-{i}"))
# The last line: MLflow prints "View run ..." lines of its own on stdout.
print(json.dumps({"ours": round(statistics.median(o), 1), "peer": round(statistics.median(p), 1)}))
PY
)
result=$(printf '%s\n' "$result" | tail -n 1)
o=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['ours'])" "$result")
pe=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['peer'])" "$result")
mem="$(peak_mb "$mlops" --quiet --config "$trk/mlops.yaml" track) / $(peak_mb "$MLFLOW_PY" -c 'import mlflow, pandas')"
row "track one run into MLflow vs its Python client (ms)" "ratio <= 1" "$o" "$pe" "$(ratio_of "$o" "$pe")" "$mem" "ratio <= 1"
