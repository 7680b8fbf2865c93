#!/usr/bin/env bash
# Runs every side-by-side figure of issue 15 (README "Per CPU kind") on this machine, one after another, and keeps
# each command's whole output in OUT/NN-name.log; OUT/summary.txt gathers the CPU, the load before each command and
# the ratio lines. Needs `make build` and `make venv`; the llama.cpp rounds need llama-cpp-python built from source
# (README "Reference checks") and are skipped with a note when it is missing.
#
#   Scripts/measure_cpu_kind.sh [OUT]          (default OUT: bench-cpu-kind-YYYYmmdd-HHMM)
#
# Figures move with other load on the machine: the summary records the load average and the busiest other
# processes before each command, so a noisy figure can be told from a real one.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-cpu-kind-$(date -u +%Y%m%d-%H%M)}
GT=.build/release/glm-train
PY=.venv/bin/python
[ -x "$GT" ] || { echo "error: $GT is missing; run make build first" >&2; exit 1; }
[ -x "$PY" ] || { echo "error: $PY is missing; run make venv first" >&2; exit 1; }
mkdir -p "$OUT" || { echo "error: cannot create $OUT" >&2; exit 1; }
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

say() { echo "$@" | tee -a "$SUMMARY"; }

load() {
    say "  load average: $(cut -d' ' -f1-3 /proc/loadavg); busiest other processes:"
    ps -eo pcpu=,comm= --sort=-pcpu | grep -v -E " (ps|grep|head|bash|measure_cpu_kin)$" | head -3 | sed 's/^/    /' | tee -a "$SUMMARY"
}

n=0
step() {   # step NAME PATTERN COMMAND...: runs the command, keeps its output, copies the lines matching PATTERN
    local name=$1 pattern=$2; shift 2
    n=$((n + 1))
    local log; log=$(printf '%s/%02d-%s.log' "$OUT" "$n" "$name")
    say ""
    say "== $name: $*"
    load
    local start=$SECONDS
    "$@" > "$log" 2>&1
    local rc=$?
    grep -E "$pattern" "$log" | sed 's/^/  /' | tee -a "$SUMMARY"
    say "  (exit $rc, $((SECONDS - start)) s, output in $log)"
}

say "measured $(date -u '+%Y-%m-%d %H:%M UTC') at commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
say "$(lscpu | grep -E '^(Model name|CPU family|Model|Thread|Core|Socket)' | tr -s ' ')"
for flag in avx512f avx512_bf16 avx512_fp16 amx_bf16; do
    grep -qw "$flag" /proc/cpuinfo && say "cpu flag: $flag" || say "cpu flag: $flag (absent)"
done
step doctor "." "$GT" doctor
ratio='tok/s|RSS|ratio|matrix|attention|LoRA|other'
step lora-bf16-vs-peft-f32 "$ratio" "$GT" bench train --lora --precision bf16 --torch f32 --steps 5
step lora-bf16-vs-peft-f32-again "$ratio" "$GT" bench train --lora --precision bf16 --torch f32 --steps 5
step full-bf16-vs-torch-f32 "$ratio" "$GT" bench train --precision bf16 --torch f32 --steps 5
step lora-bf16-vs-peft-autocast "$ratio" "$GT" bench train --lora --precision bf16 --steps 5
step full-bf16-vs-torch-autocast "$ratio" "$GT" bench train --precision bf16 --steps 5
step glm-edge-1.5b-1024 "$ratio" "$GT" bench shape --shape glm-edge-1.5b --seq 1024 --steps 1 --precision bf16 --torch f32
step generate-vs-hf "tok/s" "$GT" bench generate --repeats 3
if "$PY" -c "import llama_cpp" 2>/dev/null; then
    step decode-vs-llama-cpp "round|median|ratio" "$PY" Scripts/check_llama_cpp.py --bench --rounds 6 --repeats 3
    # The one-row decode kernel is chosen by vendor (AMD: 256-bit, others: 512-bit); both, to check that choice here.
    for width in 256 512; do
        step "decode-row-kernel-$width" "round|median|ratio" env GLMTRAIN_ROW_KERNEL=$width \
            "$PY" Scripts/check_llama_cpp.py --bench --rounds 3 --repeats 3
    done
else
    say ""
    say "== decode vs llama.cpp: skipped (llama-cpp-python is not installed in $PY; see README \"Reference checks\")"
fi
say ""
say "done; the figures go to README \"Per CPU kind\" with this CPU's name and the commands above"
