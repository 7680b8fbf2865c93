// libFuzzer target: a PEFT adapter_config.json decoded with AdapterConfig.decode, its scale computed, checked
// against the fixture GLM model, and written back as text that must decode to the same config.
import Foundation
import FuzzSupport
import GLMIO
import GLMModel

let model = try! GLMConfig.load(path: "\(Fuzz.repository)/Tests/GLMModelTests/Fixtures/glm/config.json")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Fuzz.bytes(data, size)
    Fuzz.expectGLMError("adapter_config.json") {
        let config = try AdapterConfig.decode(bytes, source: "adapter_config.json")
        _ = config.scale
        _ = config.effectiveAlpha
        _ = config.targetedModules(model)
        try? config.validate(against: model, source: "adapter_config.json")
        do { _ = try AdapterConfig.decode(Data(config.jsonText.utf8), source: "adapter_config.json (written back)") }
        catch { fatalError("an adapter config that reads is written back as text that does not: \(error)") }
    }
    return 0
}

/// The process entry point SwiftPM links this executable with: libFuzzer's driver.
@_cdecl("fuzz_adapter_config_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv)
}
