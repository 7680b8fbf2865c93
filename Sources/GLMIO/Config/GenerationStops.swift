// The tokens generation stops on, as transformers' generate() chooses them: a model directory's
// generation_config.json `eos_token_id` when that file exists (absent or null there: no end-of-sequence stop, as
// in transformers), else config.json's `eos_token_id`.
import Foundation
import GLMCore
import GLMModel

public enum GenerationStops {
    /// The stop tokens for the model in `directory` (whose config is `config`); ids outside the vocabulary, which
    /// generation cannot produce, are left out.
    public static func forModel(directory: String?, config: any CausalLMConfig) throws -> Set<Int32> {
        let inVocabulary = { (ids: [Int]) in Set(ids.filter { $0 >= 0 && $0 < config.vocabSize }.map { Int32($0) }) }
        guard let directory else { return inVocabulary(config.eosTokenIds) }
        let file = "\(directory)/\(ModelDirectory.generationConfigFile)"
        guard FileManager.default.fileExists(atPath: file) else { return inVocabulary(config.eosTokenIds) }
        let data = try FileInput.read(file, limit: FileLimits.maxConfigBytes)
        let reader = try ConfigReader(parsing: JSONValue.parse(data, source: file), source: file)
        return inVocabulary(try reader.ints("eos_token_id") ?? [])
    }
}
