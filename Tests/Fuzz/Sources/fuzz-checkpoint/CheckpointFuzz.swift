// libFuzzer target: an HDF5 training checkpoint read and verified with TrainingCheckpoint.read(from:).
import FuzzSupport
import GLMIO

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
