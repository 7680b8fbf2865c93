// libFuzzer target: a safetensors file (header and data), opened with SafetensorsFile and every tensor read.
import FuzzSupport
import GLMIO

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = Fuzz.file(data, size, name: "model.safetensors")
    Fuzz.expectGLMError("safetensors") {
        let file = try SafetensorsFile(path: path)
        for name in file.names {
            _ = try file.tensor(name)
            _ = try file.tensor(name, keepBF16: true)
        }
    }
    return 0
}

/// The process entry point SwiftPM links this executable with: libFuzzer's driver.
@_cdecl("fuzz_safetensors_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv)
}
