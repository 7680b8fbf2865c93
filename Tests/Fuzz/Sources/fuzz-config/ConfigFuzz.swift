// libFuzzer target: a model config.json decoded (and validated) by the architecture its model_type names
// (ModelRegistry: glm, glm4, chatglm, glm4_moe); a valid one is also turned into its weight shapes and back into
// config.json text that must read again. The same bytes are also read as the model directory's other JSON files:
// generation_config.json (the generation stops), model.safetensors.index.json (the shard map) and
// tokenizer_config.json (added tokens).
import Foundation
import FuzzSupport
import GLMModel
import GLMIO

let baseConfig = try! GLMConfig.decode(Data(contentsOf: URL(fileURLWithPath: "\(Fuzz.repository)/Checkpoints/glm-tiny/config.json")))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Fuzz.bytes(data, size)
    Fuzz.expectGLMError("config.json") {
        let config = try ModelRegistry.decodeConfig(bytes, source: "config.json")
        if let glm = config as? GLMConfig {
            _ = GLMWeights.expectedShapes(glm)
            _ = glm.rotary
        }
        _ = config.adaptableLinears
        let architecture = try ModelRegistry.architecture(of: config)
        do {
            let text = try architecture.encodeConfig(config, dtype: "bfloat16")
            _ = try ModelRegistry.decodeConfig(text, source: "config.json (written back)")
        } catch { fatalError("a config that reads is written back as text that does not: \(error)") }
    }
    let directory = Fuzz.modelDirectory
    Fuzz.expectGLMError("generation_config.json") {
        _ = Fuzz.file(data, size, name: "model/\(ModelDirectory.generationConfigFile)")
        _ = try GenerationStops.forModel(directory: directory, config: baseConfig)
    }
    Fuzz.expectGLMError("model.safetensors.index.json") {
        _ = Fuzz.file(data, size, name: "model/\(ModelDirectory.indexFile)")
        _ = try ModelDirectory.loadWeights(directory)
    }
    Fuzz.expectGLMError("tokenizer_config.json") {
        _ = try GLMTokenizer.addedTokens(tokenizerConfig: Fuzz.file(data, size, name: "model/tokenizer_config.json"))
    }
    return 0
}

/// The process entry point SwiftPM links this executable with: libFuzzer's driver.
@_cdecl("fuzz_config_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv)
}
