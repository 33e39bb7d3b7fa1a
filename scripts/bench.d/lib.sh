# shellcheck shell=bash
# Helpers shared by the benchmark sections (sourced by scripts/bench).
#
#   row FIGURE TARGET OURS PEER RATIO MEM [CHECK]
# adds one line to the table. CHECK is a Python expression over the numbers `ours`, `peer`,
# `ratio` and `mem` (the first figure of MEM, in MiB) that is true when the target holds, e.g.
# 'ratio <= 1.15 and mem < 100'; the row then says ok or MISS, and `scripts/bench --check`
# exits 1 when any row says MISS. Without CHECK the figure is only reported.

row() {
  local verdict=-
  if [ -n "${7:-}" ]; then
    verdict=$(python3 - "$3" "$4" "$5" "$6" "$7" <<'PY'
import re, sys
def num(s):
    m = re.search(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", s)
    return float(m.group(0)) if m else float("nan")
ours, peer, ratio, mem = (num(a) for a in sys.argv[1:5])
try:
    print("ok" if eval(sys.argv[5], {}, dict(ours=ours, peer=peer, ratio=ratio, mem=mem)) else "MISS")
except Exception as e:
    print("MISS")
PY
)
  fi
  printf '%-52s | %-26s | %12s | %14s | %8s | %21s | %s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$verdict" >>"$rows_file"
}
mean_ms() { python3 -c "import json,sys; print(round(json.load(open('$1'))['results'][0]['mean']*1000, 2))"; }
peak_mb() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n 1 | awk '{printf "%.1f MiB", $1/1024}'; }
peak_py() { peak_mb "$@"; }
ratio_of() { python3 -c "print(round($1/$2, ${3:-3}))"; }
ms_of() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
