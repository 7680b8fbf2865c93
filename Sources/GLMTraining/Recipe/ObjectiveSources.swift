// The batch sources and objective-specific hooks a recipe's `objective:` and `data:` sections select.
import GLMCore
import GLMIO
import GLMModel

enum ObjectiveSources {
    static func packedCausal(_ examples: [TokenizedExample], batchSize: Int, seqLen: Int, shuffle: Bool, seed: UInt64,
                             padID: Int32, truncate: Bool) throws -> BatchSource {
        try PackedCausalSource(examples: examples, batchSize: batchSize, seqLen: seqLen, shuffle: shuffle, seed: seed,
                               padID: padID, truncate: truncate)
    }

    static func objective(_ options: Recipe.BlankInfillingOptions, tokenizer: GLMTokenizer?, config: any CausalLMConfig,
                          seqLen: Int) throws -> BlankInfillingObjective {
        guard let tokenizer else {
            throw GLMError("objective blank_infilling needs a tokenizer with [MASK], [sMASK], [gMASK], <sop> and <eop>")
        }
        var o = BlankInfillingObjective.Options()
        o.maskRatio = options.maskRatio
        o.poissonLambda = options.poissonLambda
        o.sentenceProbability = options.sentenceProbability
        o.documentProbability = options.documentProbability
        return try BlankInfillingObjective(tokens: BlankInfillingTokens(tokenizer: tokenizer), seqLen: seqLen, config: config, options: o)
    }

    static func blankInfilling(_ examples: [TokenizedExample], options: Recipe.BlankInfillingOptions, tokenizer: GLMTokenizer?,
                               config: any CausalLMConfig, batchSize: Int, seqLen: Int, shuffle: Bool, seed: UInt64) throws -> BatchSource {
        BlankInfillingSource(examples: examples, objective: try objective(options, tokenizer: tokenizer, config: config, seqLen: seqLen),
                             batchSize: batchSize, shuffle: shuffle, seed: seed)
    }
}
