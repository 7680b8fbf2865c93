// libFuzzer's driver entry point, called from each fuzz target's main (see Sources/FuzzSupport/Fuzz.swift).
#include <stddef.h>
#include <stdint.h>

/// Runs libFuzzer on the target's LLVMFuzzerTestOneInput with the command line `argc`/`argv`.
int glmfuzz_run_driver(int argc, char **argv);
