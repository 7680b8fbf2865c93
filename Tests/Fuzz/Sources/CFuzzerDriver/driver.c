// SwiftPM links an executable target with `main` defined as `<module>_main` (so that tests can link the
// module), which hides libFuzzer's own `main`; each target's `<module>_main` calls this instead.
#include "CFuzzerDriver.h"

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int glmfuzz_run_driver(int argc, char **argv) { return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput); }
