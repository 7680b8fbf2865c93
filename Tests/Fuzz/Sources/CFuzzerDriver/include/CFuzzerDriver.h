// libFuzzer's driver entry point, called from each fuzz target's main (see Sources/FuzzSupport/Fuzz.swift).
#include <stddef.h>
#include <stdint.h>

/// Runs libFuzzer on the target's LLVMFuzzerTestOneInput with the command line `argc`/`argv`.
int glmfuzz_run_driver(int argc, char **argv);

/// libFuzzer's own mutator, for targets that define LLVMFuzzerCustomMutator (mutate, then repair).
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t maxSize);
