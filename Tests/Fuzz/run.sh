#!/usr/bin/env bash
# Runs the libFuzzer targets of Tests/Fuzz (built by `make fuzz-build`): first every committed regression input
# (Regressions/<target>/, each must now be handled without a crash), then coverage-guided fuzzing for SECONDS per
# target from the committed seeds (Seeds/<target>/) into a corpus under CORPUS. Exits non-zero when any target
# crashes, hangs (-timeout) or runs out of memory, and prints the input that did it.
#
#   Tests/Fuzz/run.sh BIN_DIR SECONDS [TARGET...]     (environment: FUZZ_CORPUS, FUZZ_JOBS, FUZZ_FLAGS)
set -u
cd "$(dirname "$0")"
bin=$1 seconds=$2; shift 2
corpus=${FUZZ_CORPUS:-/tmp/glmtrain-fuzz}
jobs=${FUZZ_JOBS:-2}
# Each target with the input size it fuzzes up to (its seeds are smaller).
declare -A max_len=([safetensors]=65536 [gguf]=65536 [checkpoint]=16384 [tokenizer]=16384 [tiktoken]=8192 [config]=4096
                    [adapter-config]=4096 [jsonl]=4096 [recipe]=4096 [rollout-batch]=8192)
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(safetensors gguf checkpoint tokenizer tiktoken config adapter-config jsonl recipe rollout-batch)
# Swift's backtracer would hold a crashing process for seconds; libFuzzer reports the crash itself.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:handle_abort=1:symbolize=1}
mkdir -p "$corpus"

run_target() {
    local t=$1 exe="$bin/fuzz-$t" dir="$corpus/$t" log="$corpus/$t.log" status=0
    mkdir -p "$dir" "$corpus/artifacts/$t"
    rm -f "$log"
    local common=(-rss_limit_mb=2048 -timeout=10 -max_len="${max_len[$t]}" -artifact_prefix="$corpus/artifacts/$t/"
                  -detect_leaks=0 ${FUZZ_FLAGS:-})
    case $t in config|adapter-config|tokenizer|jsonl|rollout-batch) common+=(-dict=Dictionaries/json.dict) ;; recipe) common+=(-dict=Dictionaries/yaml.dict) ;; esac
    local regressions=(Regressions/"$t"/*)
    if [ -e "${regressions[0]}" ]; then
        "$exe" "${common[@]}" "${regressions[@]}" >>"$log" 2>&1 || status=$?
        [ $status -eq 0 ] || echo "fuzz-$t: a regression input fails again: $(grep '^Running: ' "$log" | tail -1 | cut -c10-)"
    fi
    if [ $status -eq 0 ]; then
        "$exe" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 "$dir" "Seeds/$t" >>"$log" 2>&1 || status=$?
    fi
    if [ $status -eq 0 ]; then
        echo "fuzz-$t: ${seconds}s, no findings ($(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1) runs, corpus $(ls "$dir" | wc -l) inputs)"
        return 0
    fi
    echo "fuzz-$t: FAILED (exit $status); log: $log"
    grep -E '(==[0-9]+==|SUMMARY|Fatal error|Swift runtime failure|in [$]s.*(GLM|Sources/))' "$log" | grep -v "libFuzzer: deadly signal" \
        | grep -vE "FuzzSupport|fuzz_[a-z_]+0A0|LLVMFuzzerTestOneInput" | head -8 | sed 's/^/  /'
    grep -oE "(Test unit written to|artifact_prefix.*Test unit written to) [^ ]+" "$log" | sed 's/.*written to /  crashing input: /'
    echo "  reproduce: $exe $corpus/artifacts/$t/<file>; keep it as Tests/Fuzz/Regressions/$t/<name> once fixed"
    return 1
}

failed=0 running=0
declare -a pids=() names=()
for t in "${targets[@]}"; do
    [ -x "$bin/fuzz-$t" ] || { echo "no $bin/fuzz-$t (run make fuzz-build)"; exit 2; }
    run_target "$t" & pids+=($!); names+=("$t")
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then wait "${pids[0]}" || failed=$((failed + 1)); pids=("${pids[@]:1}"); running=$((running - 1)); fi
done
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
if [ $failed -gt 0 ]; then echo "fuzz: $failed of ${#targets[@]} targets failed"; exit 1; fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no findings"
