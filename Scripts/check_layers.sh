#!/usr/bin/env bash
# Checks the layering of DESIGN.md ("Layers"): a target imports only targets below it
# (C shims < GLMCore < GLMModel < GLMIO < GLMTraining < GLMRL < GLMTrainCLI; CHDF5 only in GLMIO, CMPIShim only in
# GLMTraining), and no file in
# Sources/GLMModel touches the file system (the model layer takes tensors and configs, the IO layer reads files).
# Prints one line per violation and exits 1; silent with status 0 when the tree is clean. Run by `make test`.
# Usage: Scripts/check_layers.sh [REPOSITORY_ROOT]   (default: the repository this script is in)
set -u
root="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
order=(GLMCore GLMModel GLMIO GLMTraining GLMRL GLMTrainCLI)
order_text="C shims < GLMCore < GLMModel < GLMIO < GLMTraining < GLMRL < GLMTrainCLI"

rank() {  # the layer of a module: 0 for the C shims, 1... for the Swift targets, empty for anything else
    case "$1" in
        CGLMKernels|COpenBLAS|CHDF5|CMPIShim|CBF16GEMM|CSpawn) echo 0; return ;;
    esac
    local i
    for i in "${!order[@]}"; do
        if [[ "${order[$i]}" == "$1" ]]; then echo $((i + 1)); return; fi
    done
}

status=0
fail() { echo "check_layers: $1"; status=1; }

for target in "${order[@]}"; do
    dir="$root/Sources/$target"
    [[ -d "$dir" ]] || { fail "Sources/$target: missing (expected the targets $order_text)"; continue; }
    mine=$(rank "$target")
    # `import X`, `@testable import X`, `@_exported import X`, `import struct X.Y`, `import X.Sub`.
    while IFS=: read -r file line text; do
        module=$(sed -E 's/^[[:space:]]*(@[A-Za-z_]+(\([^)]*\))?[[:space:]]+)*import[[:space:]]+((typealias|struct|class|enum|protocol|let|var|func)[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*).*/\5/' <<<"$text")
        theirs=$(rank "$module")
        [[ -n "$theirs" ]] || continue
        where="${file#"$root"/}:$line"
        if [[ "$module" == CHDF5 && "$target" != GLMIO ]]; then
            fail "$where: $target imports CHDF5, which only GLMIO may import"
        elif [[ "$module" == CMPIShim && "$target" != GLMTraining ]]; then
            fail "$where: $target imports CMPIShim, which only GLMTraining may import (data parallelism lives there)"
        elif (( theirs >= mine )) && [[ "$module" != "$target" ]]; then
            fail "$where: $target imports $module, which is not below it ($order_text)"
        fi
    done < <(grep -rnE --include='*.swift' '^[[:space:]]*(@[A-Za-z_]+(\([^)]*\))?[[:space:]]+)*import[[:space:]]' "$dir")
done

# The model layer never reads or writes files: Foundation file APIs and POSIX file calls, outside comments.
fs_pattern='FileManager|FileHandle|contentsOfFile|contentsOf:|fileURLWithPath|write\(toFile|(^|[^A-Za-z0-9_.])(fopen|open|openat|creat|opendir|mmap|unlink|rename)\('
while IFS=: read -r file line text; do
    code=$(sed -E 's#//.*$##' <<<"$text")
    grep -qE "$fs_pattern" <<<"$code" || continue
    api=$(grep -oE "$fs_pattern" <<<"$code" | head -1 | sed -E 's/^[^A-Za-z]//')
    fail "${file#"$root"/}:$line: GLMModel touches the file system ($api); file access belongs in GLMIO"
done < <(grep -rnE --include='*.swift' "$fs_pattern" "$root/Sources/GLMModel")

exit $status
