// libFuzzer target: a model config.json decoded (and validated) with GLMConfig.decode; a valid one is also
// turned into its weight shapes, its rotary settings and back into config.json text.
import FuzzSupport
import GLMModel
import GLMIO

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Fuzz.bytes(data, size)
    Fuzz.expectGLMError("config.json") {
        let config = try GLMConfig.decode(bytes, source: "config.json")
        _ = GLMWeights.expectedShapes(config)
        _ = config.rotary
        do { _ = try GLMConfig.decode(config.jsonData(), source: "config.json (written back)") }
        catch { fatalError("a config that reads is written back as text that does not: \(error)") }
    }
    return 0
}

/// The process entry point SwiftPM links this executable with: libFuzzer's driver.
@_cdecl("fuzz_config_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv)
}
