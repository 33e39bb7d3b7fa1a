# shellcheck shell=bash
# Sourced by scripts/bench (see scripts/bench.d/lib.sh for row, peak_mb, ms_of).

# 5b. Pushing a multi-GB model (issue 15): a model of random bytes (4 GiB, or less when the disk
#     would keep under 10 GB free: the row names the size) packaged on the serving base and
#     pushed in resumable chunks to the local registry, against `curl -T` of the same bytes;
#     the same through a proxy that cuts the connection once at ~50%; re-packaging unchanged.
#     Afterwards the bench's repositories and blobs are removed from the registry's storage.
REG=127.0.0.1:${MLOPS_REGISTRY_PORT:-5000}
REG_DATA=${MLOPS_REGISTRY_DATA:-/var/lib/mlops-registry}
gib=${MLOPS_BENCH_PUSH_GIB:-4}
free_gb=$(df -BG --output=avail "$work" | tail -n 1 | tr -dc 0-9)
# The model and the registry's copies (the layer, curl's blob, an upload in flight): up to 4
# times its size (the model layer is streamed into the upload, never written to disk).
while [ "$gib" -gt 1 ] && [ $((free_gb - 4 * gib)) -lt 10 ]; do gib=$((gib / 2)); done
bytes=$((gib << 30))
chunk_mib=${MLOPS_REGISTRY_CHUNK_MIB:-64}
echo "bench push: a $gib GiB model, $free_gb GB free, chunks of $chunk_mib MiB" >&2
push="$work/push"
mkdir -p "$push/data"
printf 'x\n1\n' >"$push/data/train.csv"; cp "$push/data/train.csv" "$push/data/test.csv"
push_yaml() { # REGISTRY REPOSITORY
cat >"$push/mlops.yaml" <<YAML
version: 1
model: big
data: {train: {path: data/train.csv}, test: {path: data/test.csv}}
train: {image: mlops-test/busybox, command: [sh, -c, 'head -c $bytes /dev/urandom > \$MLOPS_MODEL_DIR/weights.bin'], resources: {timeout: 30m}}
evaluate: {command: ['true']}
compare: {metrics: {f1: {direction: maximize, threshold: 0.0}}}
package: {repository: $1/bench/$2, base_image: $1/acme/serve-sklearn:1, model_path: /model, command: [python3, /app/serve.py], port: 8080}
YAML
}
push_yaml "$REG" "push-seed-$$"
"$mlops" --quiet --config "$push/mlops.yaml" train
run_id=$(cat "$push/.mlops/runs/latest")
weights="$push/.mlops/runs/$run_id/model/weights.bin"
weights_digest="sha256:$("$python" -c "import hashlib,sys; h=hashlib.sha256(); f=open(sys.argv[1],'rb'); [h.update(b) for b in iter(lambda: f.read(1<<22), b'')]; print(h.hexdigest())" "$weights")"

# Three runs a side, alternating, each into a new repository with its blob first removed from
# the registry's storage (every run uploads everything) and after a `sync` (nothing left to
# write back from the run before). The row takes each side's fastest run: on this VM the same
# upload takes 15 to 32 s from one run to the next, with how much of the guest's memory the
# host has backed (a first touch of a page costs 3-14 us here): noise that only adds time.
rm_blob() { local hex=${1#sha256:}; [ ${#hex} -eq 64 ] && rm -rf "$REG_DATA/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex"; }
raw_runs=(); ours_runs=(); mem_runs=(); layer_digest=
for i in 1 2 3; do
  rm_blob "$weights_digest"; sync
  # Peer: the same bytes as one blob, POST + curl -T of the file.
  raw_runs+=("$(ms_of sh -c "loc=\$(curl -fsS -X POST -D - -o /dev/null http://$REG/v2/bench/push-raw-$$-$i/blobs/uploads/ | tr -d '\r' | sed -n 's/^[Ll]ocation: //p'); case \$loc in http*) ;; *) loc=http://$REG\$loc;; esac; sep='?'; case \$loc in *\\?*) sep='&';; esac; curl -fsS -T $weights -H 'Content-Type: application/octet-stream' \"\$loc\${sep}digest=$weights_digest\"")")
  # Ours: package + push, timed and its peak memory measured in the same run.
  [ -z "$layer_digest" ] || rm_blob "$layer_digest"
  push_yaml "$REG" "push-ours-$$-$i"; sync
  t0=$(date +%s%N)
  mem_runs+=("$(peak_mb "$mlops" --quiet --config "$push/mlops.yaml" package | cut -d' ' -f1)")
  ours_runs+=("$(( ($(date +%s%N) - t0) / 1000000 ))")
  layer_digest=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['model_layer']['digest'])" "$push/.mlops/runs/$run_id/package.json")
done
echo "bench push: curl -T ${raw_runs[*]} ms, ours ${ours_runs[*]} ms (peak ${mem_runs[*]} MiB)" >&2
raw_ms=$(printf '%s\n' "${raw_runs[@]}" | sort -n | head -n 1)
ours_ms=$(printf '%s\n' "${ours_runs[@]}" | sort -n | head -n 1)
mem="$(printf '%s\n' "${mem_runs[@]}" | sort -n | tail -n 1) MiB"
layer_size=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['model_layer']['size'])" "$push/.mlops/runs/$run_id/package.json")
row "package + push a $gib GiB model vs curl -T (ms)" "ratio <= 1.15, < 100 MiB" "$ours_ms" "$raw_ms" "$(ratio_of "$ours_ms" "$raw_ms")" "$mem" "ratio <= 1.15 and mem < 100"

# Re-packaging, nothing changed: no blob sent.
t0=$(date +%s%N)
"$mlops" --quiet --config "$push/mlops.yaml" package --format json >"$push/again.json"
again_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
sent=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['uploaded_bytes'])" "$push/again.json")
row "re-package, $gib GiB model unchanged (ms; peer: bytes sent)" "< 300 ms, nothing sent" "$again_ms" "$sent" "-" "-" "ours < 300 and peer == 0"

# Through a proxy that cuts the connection once, when half the model has gone through it.
cat >"$push/cutproxy.py" <<'PY'
import os, socket, sys, threading
upstream, cut_at, report = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def save():  # under the lock; atomically, as the bench may read it at any time
    with open(report + ".tmp", "w") as f:
        f.write("%d %d\n" % (state["up"], int(state["cut"])))
    os.replace(report + ".tmp", report)
host, port = upstream.rsplit(":", 1)
state = {"up": 0, "cut": False}
lock = threading.Lock()
def pump(src, dst, count):
    try:
        while True:
            data = src.recv(1 << 20)
            if not data:
                break
            if count:
                with lock:
                    before = state["up"]
                    state["up"] += len(data)
                    cut = not state["cut"] and before + len(data) > cut_at
                    if cut:
                        state["cut"] = True
                        keep = cut_at - before
                        state["up"] = cut_at
                        save()
                if cut:
                    dst.sendall(data[:keep])
                    break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with lock:
            save()
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
print(listener.getsockname()[1], flush=True)
while True:
    client, _ = listener.accept()
    up = socket.create_connection((host, int(port)))
    threading.Thread(target=pump, args=(client, up, True), daemon=True).start()
    threading.Thread(target=pump, args=(up, client, False), daemon=True).start()
PY
"$python" "$push/cutproxy.py" "$REG" $((layer_size / 2)) "$push/cut.txt" >"$push/proxy.port" &
proxy_pid=$!
for _ in $(seq 1 50); do [ -s "$push/proxy.port" ] && break; sleep 0.1; done
proxy="127.0.0.1:$(cat "$push/proxy.port")"
push_yaml "$proxy" "push-cut-$$"
if MLOPS_REGISTRY_BACKOFF_MS=50 "$mlops" --quiet --config "$push/mlops.yaml" package --format json >"$push/cut.json"; then
  relayed=$(cut -d' ' -f1 "$push/cut.txt"); was_cut=$(cut -d' ' -f2 "$push/cut.txt")
  again_mib=$("$python" -c "print(round(($relayed - $layer_size) / 1048576, 1))")
  chunks=$("$python" -c "print(round(($relayed - $layer_size) / ($chunk_mib * 1048576), 2))")
  row "the same, cut once at ~50% (MiB sent again; peer: chunks)" "completes, <= 2 chunks again" "$again_mib" "$chunks" "-" "cut: $was_cut" "ours >= 0 and peer <= 2"
else
  row "the same, cut once at ~50% (MiB sent again; peer: chunks)" "completes, <= 2 chunks again" "failed" "-" "-" "-" "False"
fi
kill "$proxy_pid" 2>/dev/null || true

# Remove what the bench put in the registry: its repositories and its (random, unshared) blobs.
for d in "$layer_digest" "$weights_digest"; do
  hex=${d#sha256:}
  [ ${#hex} -eq 64 ] && rm -rf "$REG_DATA/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex"
done
rm -rf "$REG_DATA"/docker/registry/v2/repositories/bench/push-*-$$ "$REG_DATA"/docker/registry/v2/repositories/bench/push-*-$$-*
rm -rf "$push"
