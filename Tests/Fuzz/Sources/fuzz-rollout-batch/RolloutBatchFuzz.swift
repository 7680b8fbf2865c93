// libFuzzer target: a rollout batch file (RUN/rollouts/batch-000000.json, which the trainer reads from a shared
// directory) read with RLRunDirectory.readBatch and checked as the trainer checks it (vocabulary 2048, 64 positions,
// trainer version 3), then laid out as the trainer's micro-batches.
import Foundation
import FuzzSupport
import GLMRL

let run: RLRunDirectory = {
    try! FileManager.default.createDirectory(atPath: Fuzz.directory + "/run/rollouts", withIntermediateDirectories: true)
    return RLRunDirectory(Fuzz.directory + "/run")
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let run = run  // made first: it makes the rollouts directory the input is written into
    _ = Fuzz.file(data, size, name: "run/rollouts/batch-000000.json")
    Fuzz.expectGLMError("rollout batch") {
        let batch = try run.readBatch(0)
        try batch.validate(source: "batch", vocabularySize: 2048, maxPositions: 64, trainerVersion: 3)
        for slice in batch.microBatches(4) { _ = RolloutBatch.trainingBatch(slice, pad: 0) }
    }
    return 0
}

/// The process entry point SwiftPM links this executable with: libFuzzer's driver.
@_cdecl("fuzz_rollout_batch_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv)
}
