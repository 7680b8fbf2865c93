// Batch sources of the objectives that live in Objectives/ (packing, blank infilling), as the recipe runner uses them.
import GLMCore
import GLMIO
import GLMModel

enum ObjectiveSources {
    static func packedCausal(_ examples: [TokenizedExample], batchSize: Int, seqLen: Int, shuffle: Bool, seed: UInt64,
                             padID: Int32) throws -> BatchSource {
        throw GLMError("data.packing: not wired yet")
    }

    static func blankInfilling(_ examples: [TokenizedExample], options: Recipe.BlankInfillingOptions, tokenizer: GLMTokenizer?,
                               config: GLMConfig, batchSize: Int, seqLen: Int, shuffle: Bool, seed: UInt64,
                               padID: Int32) throws -> BatchSource {
        throw GLMError("objective blank_infilling: not wired yet")
    }

    static func infillingHook(name: String, examples: [TokenizedExample], run: RecipeRun, batches: Int) throws -> EvaluationHook {
        throw GLMError("eval hook infilling: not wired yet")
    }
}
