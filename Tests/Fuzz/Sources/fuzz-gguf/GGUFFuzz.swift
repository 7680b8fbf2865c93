// libFuzzer target: a GGUF file read with GGUFFile (metadata, every tensor), then as a LoRA adapter of the
// fixture GLM, GLM-4 and glm4_moe (moe-a: stacked routed-expert tensors) models.
import FuzzSupport
import GLMIO
import GLMModel

let models: [any CausalLMConfig] = ["glm", "glm4", "moe-a"].map {
    try! ModelDirectory.loadConfiguration("\(Fuzz.repository)/Tests/GLMModelTests/Fixtures/\($0)")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = Fuzz.file(data, size, name: "adapter.gguf")
    Fuzz.expectGLMError("gguf") {
        let file = try GGUFFile(path: path)
        for (_, value) in file.metadata { _ = value.description }
        for t in file.tensors where t.type != nil { _ = try file.tensor(t.name) }
    }
    for model in models {
        Fuzz.expectGLMError("gguf lora") { _ = try GGUFLoRA.read(path: path, model: model) }
    }
    return 0
}

/// The process entry point SwiftPM links this executable with: libFuzzer's driver.
@_cdecl("fuzz_gguf_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv)
}
