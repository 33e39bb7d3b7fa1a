# shellcheck shell=bash
# Sourced by scripts/bench (see scripts/bench.d/lib.sh for row, mean_ms, peak_mb, meets).

# 5. Packaging (issue 6): a 512 MiB model of random bytes on the serving base, pushed to the
#    local registry. Peers: `docker build` (a COPY onto the same base, no cache) + `docker push`,
#    and a raw upload of the same blob with curl -T. Each figure is the median of 3 runs, each
#    to a fresh repository so nothing is skipped as already present.
REG=127.0.0.1:${MLOPS_REGISTRY_PORT:-5000}
mkdir -p "$work/pkg/data"
printf 'x\n1\n' >"$work/pkg/data/train.csv"; cp "$work/pkg/data/train.csv" "$work/pkg/data/test.csv"
pkg_yaml() {
cat >"$work/pkg/mlops.yaml" <<YAML
version: 1
model: big
data: {train: {path: data/train.csv}, test: {path: data/test.csv}}
train: {image: mlops-test/busybox, command: [sh, -c, 'head -c 536870912 /dev/urandom > \$MLOPS_MODEL_DIR/weights.bin']}
evaluate: {command: ['true']}
compare: {metrics: {f1: {direction: maximize, threshold: 0.0}}}
package: {repository: $REG/bench/$1, base_image: $REG/acme/serve-sklearn:1, model_path: /model, command: [python3, /app/serve.py], port: 8080}
YAML
}
pkg_yaml seed
"$mlops" --quiet --config "$work/pkg/mlops.yaml" train
run_id=$(cat "$work/pkg/.mlops/runs/latest")
model="$work/pkg/.mlops/runs/$run_id/model"
ours=(); peer=(); raw=()
for i in 1 2 3; do
  tag="m$$-$i"
  pkg_yaml "ours-$tag"
  ours+=("$(ms_of "$mlops" --quiet --config "$work/pkg/mlops.yaml" package)")
  mkdir -p "$work/ctx"; cp "$model/weights.bin" "$work/ctx/weights.bin"
  printf 'FROM %s\nCOPY weights.bin /model/weights.bin\n' "$REG/acme/serve-sklearn:1" >"$work/ctx/Dockerfile"
  peer+=("$(ms_of sh -c "$DOCKER build -q --no-cache -t $REG/bench/peer-$tag:1 $work/ctx && $DOCKER push -q $REG/bench/peer-$tag:1")")
  $DOCKER rmi "$REG/bench/peer-$tag:1" >/dev/null 2>&1 || true
  digest="sha256:$(sha256sum "$model/weights.bin" | cut -d' ' -f1)"
  raw+=("$(ms_of sh -c "loc=\$(curl -fsS -X POST -D - -o /dev/null http://$REG/v2/bench/raw-$tag/blobs/uploads/ | tr -d '\r' | sed -n 's/^[Ll]ocation: //p'); case \$loc in http*) ;; *) loc=http://$REG\$loc;; esac; sep='?'; case \$loc in *\\?*) sep='&';; esac; curl -fsS -T $model/weights.bin -H 'Content-Type: application/octet-stream' \"\$loc\${sep}digest=$digest\"")")
done
o=$(median "${ours[@]}"); pe=$(median "${peer[@]}"); r=$(median "${raw[@]}")
pkg_yaml "ours-m$$-mem"   # peak memory of a full upload, to a fresh repository
mem=$(peak_mb "$mlops" --quiet --config "$work/pkg/mlops.yaml" package)
row "package 512 MiB model vs docker build+push (ms)" "ratio <= 0.25" "$o" "$pe" "$(python3 -c "print(round($o/$pe,3))")" "$mem" "ratio <= 0.25"
row "package 512 MiB model vs curl -T of the blob (ms)" "ratio <= 1.5" "$o" "$r" "$(python3 -c "print(round($o/$r,3))")" "-" "ratio <= 1.5"
again=(); for i in 1 2 3; do again+=("$(ms_of "$mlops" --quiet --config "$work/pkg/mlops.yaml" package)"); done
a=$(median "${again[@]}")
row "re-package unchanged 512 MiB model (ms)" "< 500 ms" "$a" "-" "-" "-" "ours < 500"
rm -rf "$work/pkg" "$work/ctx"
