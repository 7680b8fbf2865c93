// libFuzzer target: an HDF5 training checkpoint read and verified with TrainingCheckpoint.read(from:).
// Most mutations of a checkpoint break one of libhdf5's own metadata checksums (it writes 1.8-format files) and
// stop there. With GLMFUZZ_HDF5_REPAIR=1 (`make fuzz-hdf5`) the custom mutator repairs those checksums after
// mutating (9 times in 10), so inputs reach libhdf5's parsers of superblock and object headers: that finds faults
// of libhdf5 itself (Tests/Fuzz/Known/), which GLMTrain cannot fix, so the default runs leave it off.
import CFuzzerDriver
import Foundation
import FuzzSupport
import GLMIO

let repairChecksums = ProcessInfo.processInfo.environment["GLMFUZZ_HDF5_REPAIR"] == "1"

/// The repair leaves an intact checkpoint as it is (checked once, on a seed).
let repairIsExact: Bool = {
    var bytes = [UInt8](try! Data(contentsOf: URL(fileURLWithPath: "\(Fuzz.repository)/Tests/Fuzz/Seeds/checkpoint/lora-adamw.h5")))
    let original = bytes
    let fixed = bytes.withUnsafeMutableBufferPointer { HDF5Checksums.repair($0) }
    precondition(fixed >= 2 && bytes == original, "HDF5Checksums.repair changes an intact file (\(fixed) checksums)")
    return true
}()

@_cdecl("LLVMFuzzerCustomMutator")
public func mutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: CUnsignedInt) -> Int {
    precondition(repairIsExact)
    let n = LLVMFuzzerMutate(data, size, maxSize)
    if repairChecksums && seed % 10 != 0 { HDF5Checksums.repair(UnsafeMutableBufferPointer(start: data, count: n)) }
    return n
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = Fuzz.file(data, size, name: "step-00000001.h5")
    Fuzz.expectGLMError("checkpoint") { _ = try TrainingCheckpoint.read(from: path) }
    return 0
}

/// The process entry point SwiftPM links this executable with: libFuzzer's driver.
@_cdecl("fuzz_checkpoint_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv)
}
